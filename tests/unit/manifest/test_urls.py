"""Unit tests for a function's ``url:`` in the manifest (orchestrator.manifest.urls)."""

from __future__ import annotations

from pathlib import Path

import yaml

from orchestrator.manifest import load
from orchestrator.manifest.apis import CorsSpec
from orchestrator.manifest.urls import UrlSpec
from tests.unit.manifest.test_functions import one_problem, problems, write_function


def test_a_url_with_every_setting(tmp_path: Path) -> None:
    cors = {"allow_origins": ["*"], "allow_methods": ["GET"], "max_age": 30}
    path = write_function(
        tmp_path,
        url={"auth": "AWS_IAM", "cors": cors, "invoke_mode": "RESPONSE_STREAM", "port": 9123},
    )
    loaded = load(path)
    assert loaded.urls == {
        "hello": UrlSpec("AWS_IAM", CorsSpec(("*",), ("GET",), (), (), 30), "RESPONSE_STREAM", 9123)
    }


def test_a_url_is_buffered_by_default_and_not_part_of_the_functions_spec(tmp_path: Path) -> None:
    plain = load(write_function(tmp_path)).function("hello")
    loaded = load(write_function(tmp_path, url={"auth": "NONE"}))
    assert loaded.urls["hello"] == UrlSpec("NONE")
    # Adding a URL does not replace the function's environments.
    assert loaded.function("hello").config_digest() == plain.config_digest()


def test_url_mistakes_name_the_key_and_the_fix(tmp_path: Path) -> None:
    missing = one_problem(write_function(tmp_path, url={"invoke_mode": "BUFFERED"}))
    assert (missing.line, missing.where) == (7, "functions.hello.url")
    assert missing.message.startswith("auth is missing; set auth: NONE")
    wrong = one_problem(write_function(tmp_path, url={"auth": "none"}))
    assert wrong.where == "functions.hello.url.auth"
    assert "auth must be one of: NONE, AWS_IAM" in wrong.message
    mode = one_problem(write_function(tmp_path, url={"auth": "NONE", "invoke_mode": "STREAM"}))
    assert "invoke_mode must be one of: BUFFERED, RESPONSE_STREAM" in mode.message
    scalar = one_problem(write_function(tmp_path, url=True))
    assert scalar.message == "true is not a function URL's settings; write e.g. url: {auth: NONE}"
    unknown = one_problem(write_function(tmp_path, url={"auth": "NONE", "qualifer": "live"}))
    assert unknown.where == "functions.hello.url.qualifer"


def test_two_urls_or_a_url_and_an_api_may_not_share_a_port(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    fn = {"runtime": "python3.13", "handler": "app.h", "code": "./code"}
    document = {
        "functions": {
            "a": {**fn, "url": {"auth": "NONE", "port": 9100}},
            "b": {**fn, "url": {"auth": "NONE", "port": 9100}},
            "c": {**fn, "url": {"auth": "NONE", "port": 9200}},
        },
        "apis": {"shop": {"type": "http", "port": 9200}},
    }
    path = tmp_path / "lrun.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    found = problems(path)
    assert [(p.where, p.message.split(";")[0]) for p in found] == [
        ("functions.b.url.port", "port 9100 is taken by the function URL at functions.a"),
        ("functions.c.url.port", "port 9200 is taken by API 'shop'"),
    ]
