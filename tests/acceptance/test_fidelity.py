"""Real functions run unchanged against a real `lrun serve`, driven by boto3: a saved edit is
what the next invocation runs, and every invocation carries an X-Ray trace header (the caller's,
or one made for it)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from tests.acceptance.conftest import ServerFactory
from tests.acceptance.test_serve import lambda_client

SAVE_TO_INVOKE_S = 0.2  # the old one-second polling missed edits this fresh
TRACE = re.compile(r"^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$")
APP = """import os

VERSION = {version}


def handler(event, context):
    return {{"version": VERSION, "trace": os.environ.get("_X_AMZN_TRACE_ID")}}
"""


def project(root: Path) -> Path:
    code = root / "code"
    code.mkdir(parents=True)
    (code / "app.py").write_text(APP.format(version=0))
    (root / "lrun.yaml").write_text(
        "functions:\n  edited: {runtime: python3.13, handler: app.handler, code: ./code}\n"
    )
    return root


def invoke(client: Any, **options: Any) -> dict[str, Any]:
    response = client.invoke(FunctionName="edited", Payload=b"{}", **options)
    assert "FunctionError" not in response, response["Payload"].read()
    body: dict[str, Any] = json.loads(response["Payload"].read())
    return body


def test_a_saved_edit_is_what_the_next_invocation_runs(
    serve_lrun: ServerFactory, tmp_path: Path
) -> None:
    root = project(tmp_path / "project")
    server = serve_lrun(root)
    client = lambda_client(server.url)
    assert invoke(client)["version"] == 0
    for version in (1, 2, 3):
        (root / "code" / "app.py").write_text(APP.format(version=version))
        time.sleep(SAVE_TO_INVOKE_S)
        assert invoke(client)["version"] == version, server.output()
    server.finish()


def test_each_invocation_has_a_trace_header_and_a_callers_is_passed_through(
    serve_lrun: ServerFactory, tmp_path: Path
) -> None:
    server = serve_lrun(project(tmp_path / "project"))
    client = lambda_client(server.url)
    made = {invoke(client)["trace"] for _ in range(2)}
    assert len(made) == 2 and all(TRACE.match(t or "") for t in made), made
    given = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"

    def add_trace(request: Any, **kwargs: Any) -> None:
        request.headers["X-Amzn-Trace-Id"] = given

    client.meta.events.register("before-send.lambda.Invoke", add_trace)
    assert invoke(client)["trace"] == given
    server.finish()
