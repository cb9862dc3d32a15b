"""Unit tests for orchestrator.manifest: parsing, validation messages, lookups and digests."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import yaml

from orchestrator import manifest
from orchestrator.aws import function_arn
from orchestrator.errors import ManifestError, Problem, ResourceNotFound
from orchestrator.manifest import FunctionSpec, Manifest, find, load

RESERVED_PREFIX = (
    "Lambda was unable to configure your environment variables because the environment variables "
    "you have provided contains reserved keys that are currently not supported for modification. "
    "Reserved keys used in this request: "
)
SIZE_PREFIX = (
    "Lambda was unable to configure your environment variables because the environment variables "
    "you have provided exceeded the 4KB limit. String measured: "
)
MEMORY_RULE = "memory must be an integer number of MB from 128 to 10240"
TIMEOUT_RULE = "timeout must be an integer number of seconds from 1 to 900"
RUNTIMES_TEXT = (
    "python3.11, python3.13, python3.14, nodejs20.x, nodejs22.x, nodejs24.x, ruby3.3, provided, "
    "java21"
)
EPHEMERAL_RULE = "ephemeral_storage must be an integer number of MB from 512 to 10240"


def write(tmp_path: Path, text: str) -> Path:
    """Write lrun.yaml (dedented) next to a ./hello code directory."""
    (tmp_path / "hello").mkdir(exist_ok=True)
    path = tmp_path / "lrun.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def write_function(tmp_path: Path, **settings: Any) -> Path:
    """A manifest with one function `hello` (python3.13, app.handler, ./hello) plus `settings`.

    Lines: 1 functions, 2 hello, 3 runtime, 4 handler, 5 code, 6+ the settings in order.
    A setting given as None is removed.
    """
    body: dict[str, Any] = {"runtime": "python3.13", "handler": "app.handler", "code": "./hello"}
    body.update(settings)
    body = {key: value for key, value in body.items() if value is not None}
    (tmp_path / "hello").mkdir(exist_ok=True)
    path = tmp_path / "lrun.yaml"
    path.write_text(yaml.safe_dump({"functions": {"hello": body}}, sort_keys=False))
    return path


def problems(path: Path) -> list[Problem]:
    with pytest.raises(ManifestError) as info:
        load(path)
    return list(info.value.problems)


def one_problem(path: Path) -> Problem:
    found = problems(path)
    assert len(found) == 1, found
    return found[0]


# --- valid manifests ------------------------------------------------------------------------


def test_full_manifest_round_trip(tmp_path: Path) -> None:
    (tmp_path / "src" / "api").mkdir(parents=True)
    path = write(
        tmp_path,
        """
        functions:
          api:
            runtime: nodejs20.x
            handler: index.handler
            code: ./src/api
            memory: 1024
            timeout: 30
            ephemeral_storage: 2048
            environment:
              TABLE: users
              RETRIES: 3
              RATIO: 0.5
            reserved_concurrency: 10
            provisioned_concurrency: 2
            network: private
            description: The public API
          hello:
            runtime: python3.13
            handler: app.handler
            code: hello
        """,
    )
    loaded = load(path)
    assert loaded.path == path
    assert list(loaded.functions) == ["api", "hello"]
    api = loaded.function("api")
    assert api == FunctionSpec(
        name="api",
        runtime="nodejs20.x",
        handler="index.handler",
        image=None,
        command=None,
        entrypoint=None,
        code=(tmp_path / "src" / "api").resolve(),
        memory=1024,
        timeout=30,
        ephemeral_storage=2048,
        environment={"TABLE": "users", "RETRIES": "3", "RATIO": "0.5"},
        reserved_concurrency=10,
        provisioned_concurrency=2,
        network="private",
        description="The public API",
    )
    assert isinstance(api.environment, MappingProxyType)
    assert isinstance(loaded.functions, MappingProxyType)
    with pytest.raises(TypeError):
        api.environment["TABLE"] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        loaded.functions["x"] = api  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        api.memory = 1  # type: ignore[misc]


def test_defaults(tmp_path: Path) -> None:
    spec = load(write_function(tmp_path)).function("hello")
    assert spec.code == (tmp_path / "hello").resolve()
    assert spec.code.is_absolute()
    assert (spec.memory, spec.timeout, spec.ephemeral_storage) == (128, 3, 512)
    assert dict(spec.environment) == {}
    assert spec.reserved_concurrency is None
    assert spec.provisioned_concurrency == 0
    assert spec.network == "public"
    assert spec.description == ""
    assert (spec.image, spec.command, spec.entrypoint) == (None, None, None)


def test_code_is_relative_to_manifest_not_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    path = write_function(project)
    monkeypatch.chdir(tmp_path)
    loaded = load(Path("project/lrun.yaml"))
    assert loaded.path == path
    assert loaded.function("hello").code == (project / "hello").resolve()


def test_constants() -> None:
    assert manifest.MEMORY_RANGE == (128, 10240)
    assert manifest.TIMEOUT_RANGE == (1, 900)
    assert manifest.EPHEMERAL_RANGE == (512, 10240)
    assert manifest.DEFAULT_MANIFEST == "lrun.yaml"
    assert "AWS_REGION" in manifest.RESERVED_ENV_NAMES
    assert len(manifest.RESERVED_ENV_NAMES) == 18
    assert function_arn("hello") == "arn:aws:lambda:us-east-1:000000000000:function:hello"
    assert function_arn("hello", "$LATEST").endswith(":function:hello:$LATEST")


def test_image_function(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        functions:
          img:
            image: my-image:tag
            command: [app.handler]
            entrypoint: [/lambda-entrypoint.sh, --flag]
            memory: 512
          img2:
            image: other:latest
            code: ./hello
        """,
    )
    loaded = load(path)
    img = loaded.function("img")
    assert (img.runtime, img.handler, img.code) == (None, None, None)
    assert img.image == "my-image:tag"
    assert img.command == ("app.handler",)
    assert img.entrypoint == ("/lambda-entrypoint.sh", "--flag")
    assert img.memory == 512
    img2 = loaded.function("img2")
    assert img2.code == (tmp_path / "hello").resolve()
    assert img2.command is None


def test_provided_runtime_needs_no_handler(tmp_path: Path) -> None:
    spec = load(write_function(tmp_path, runtime="provided", handler=None)).function("hello")
    assert spec.runtime == "provided"
    assert spec.handler is None


def test_yaml_anchors_and_merge_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        functions:
          a: &base
            runtime: python3.11
            handler: app.handler
            code: ./hello
            memory: 256
          b:
            <<: *base
            memory: 512
        """,
    )
    loaded = load(path)
    assert loaded.function("a").memory == 256
    assert loaded.function("b").memory == 512
    assert loaded.function("b").runtime == "python3.11"


# --- integer fields --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("memory", 128, None),
        ("memory", 10240, None),
        ("memory", 127, MEMORY_RULE),
        ("memory", 10241, MEMORY_RULE),
        ("timeout", 1, None),
        ("timeout", 900, None),
        ("timeout", 0, TIMEOUT_RULE),
        ("timeout", 901, TIMEOUT_RULE),
        ("ephemeral_storage", 512, None),
        ("ephemeral_storage", 10240, None),
        ("ephemeral_storage", 511, EPHEMERAL_RULE),
        ("ephemeral_storage", 10241, EPHEMERAL_RULE),
    ],
)
def test_range_boundaries(tmp_path: Path, field: str, value: int, rule: str | None) -> None:
    path = write_function(tmp_path, **{field: value})
    if rule is None:
        assert getattr(load(path).function("hello"), field) == value
        return
    assert one_problem(path) == Problem(
        str(path), 6, f"functions.hello.{field}", f"{value} is out of range; {rule}"
    )


def test_memory_message_matches_documented_style(tmp_path: Path) -> None:
    path = write_function(tmp_path, memory=64)
    assert str(one_problem(path)) == (
        f"{path}:6: functions.hello.memory: 64 is out of range; "
        "memory must be an integer number of MB from 128 to 10240"
    )


@pytest.mark.parametrize(
    ("value", "shown"), [(True, "true"), (False, "false"), (256.0, "256.0"), ("256", "'256'")]
)
def test_non_integers_rejected(tmp_path: Path, value: object, shown: str) -> None:
    problem = one_problem(write_function(tmp_path, memory=value))
    assert problem.message == f"{shown} is not an integer; {MEMORY_RULE}"


def test_bool_rejected_for_concurrency(tmp_path: Path) -> None:
    problem = one_problem(write_function(tmp_path, reserved_concurrency=True))
    assert problem.message == (
        "true is not an integer; reserved_concurrency must be an integer of at least 0"
    )


def test_concurrency(tmp_path: Path) -> None:
    spec = load(write_function(tmp_path, reserved_concurrency=0)).function("hello")
    assert spec.reserved_concurrency == 0
    spec = load(write_function(tmp_path, provisioned_concurrency=5)).function("hello")
    assert (spec.reserved_concurrency, spec.provisioned_concurrency) == (None, 5)
    path = write_function(tmp_path, reserved_concurrency=-1)
    assert one_problem(path).message == (
        "-1 is out of range; reserved_concurrency must be an integer of at least 0"
    )
    path = write_function(tmp_path, reserved_concurrency=2, provisioned_concurrency=3)
    assert one_problem(path) == Problem(
        str(path),
        7,
        "functions.hello.provisioned_concurrency",
        "3 is more than reserved_concurrency 2; "
        "provisioned_concurrency must be at most reserved_concurrency",
    )


# --- keys, runtimes, handler, image, code -----------------------------------------------------


def test_unknown_key_did_you_mean(tmp_path: Path) -> None:
    path = write_function(tmp_path, memroy=256)
    assert one_problem(path) == Problem(
        str(path), 6, "functions.hello.memroy", "unknown key 'memroy'; did you mean 'memory'?"
    )


def test_unknown_key_without_suggestion_lists_allowed(tmp_path: Path) -> None:
    problem = one_problem(write_function(tmp_path, zzz=1))
    assert problem.message == (
        "unknown key 'zzz'; allowed keys: async, code, command, description, entrypoint, "
        "environment, ephemeral_storage, events, handler, http, image, layers, logging, memory, "
        "network, "
        "provisioned_concurrency, reserved_concurrency, runtime, tags, timeout, url, websocket"
    )


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, "functoins:\n  hello: {runtime: python3.13}\n")
    found = problems(path)
    assert [(p.line, p.where, p.message) for p in found] == [
        (
            None,
            "functions",
            "is missing; define at least one function, e.g. functions: {hello: "
            "{runtime: python3.13, handler: app.handler, code: ./hello}}",
        ),
        (1, "functoins", "unknown key 'functoins'; did you mean 'functions'?"),
    ]


def test_unknown_runtime_did_you_mean(tmp_path: Path) -> None:
    path = write_function(tmp_path, runtime="pyton3.13")
    assert one_problem(path) == Problem(
        str(path),
        3,
        "functions.hello.runtime",
        "unknown runtime 'pyton3.13'; did you mean 'python3.13'? "
        f"runtime must be one of: {RUNTIMES_TEXT}",
    )
    message = one_problem(write_function(tmp_path, runtime="python3.12")).message
    assert message.startswith("unknown runtime 'python3.12'; did you mean 'python3.1")
    message = one_problem(write_function(tmp_path, runtime="dotnet8")).message
    assert message == (f"unknown runtime 'dotnet8'; runtime must be one of: {RUNTIMES_TEXT}")


def test_missing_handler(tmp_path: Path) -> None:
    path = write_function(tmp_path, handler=None)
    assert one_problem(path) == Problem(
        str(path),
        2,
        "functions.hello",
        "handler is required for runtime 'python3.13'; "
        "add handler: MODULE.FUNCTION, e.g. handler: app.handler",
    )


def test_missing_java_handler_names_its_form(tmp_path: Path) -> None:
    path = write_function(tmp_path, runtime="java21", handler=None)
    assert one_problem(path).message == (
        "handler is required for runtime 'java21'; "
        "add handler: CLASS::METHOD, e.g. handler: example.Hello::handleRequest"
    )


@pytest.mark.parametrize("handler", ["", "app handler", "x" * 129, 5])
def test_invalid_handler(tmp_path: Path, handler: object) -> None:
    problem = one_problem(write_function(tmp_path, handler=handler))
    assert problem.where == "functions.hello.handler"
    assert problem.message.endswith(
        "is not a valid handler; use 1 to 128 characters without whitespace, e.g. app.handler"
    )


def test_runtime_and_image_both_given(tmp_path: Path) -> None:
    path = write_function(tmp_path, image="my-image:tag")  # the handler is not reported too
    assert one_problem(path) == Problem(
        str(path),
        6,
        "functions.hello.image",
        "runtime and image are both set; "
        "remove image to run code on a runtime, or remove runtime to run the image",
    )


def test_neither_runtime_nor_image(tmp_path: Path) -> None:
    path = write_function(tmp_path, runtime=None, handler=None)
    assert one_problem(path) == Problem(
        str(path),
        2,
        "functions.hello",
        f"neither runtime nor image is set; set runtime (one of {RUNTIMES_TEXT}) "
        "or image (a local image)",
    )


def test_image_only_settings(tmp_path: Path) -> None:
    path = write_function(tmp_path, command=["app.handler"])
    assert one_problem(path).message == (
        "command is only for image functions; remove it, or use image instead of runtime"
    )
    path = write_function(tmp_path, runtime=None, code=None, image="img", handler="app.handler")
    assert one_problem(path).message == (
        "handler is not allowed for image functions; "
        "use command: [app.handler] to override the image's CMD"
    )
    path = write_function(tmp_path, runtime=None, handler=None, image="img", command="app.h")
    assert one_problem(path).message == (
        "'app.h' is not a non-empty list of strings; "
        "write it as a list, e.g. command: [app.handler]"
    )


def test_code_problems(tmp_path: Path) -> None:
    path = write_function(tmp_path, code="./nope")
    assert one_problem(path) == Problem(
        str(path),
        5,
        "functions.hello.code",
        f"'./nope' does not exist ({(tmp_path / 'nope').resolve()}); code must be a directory "
        f"holding the function's files, relative to {tmp_path}",
    )
    (tmp_path / "file.py").write_text("")
    problem = one_problem(write_function(tmp_path, code="file.py"))
    assert problem.message.startswith("'file.py' is not a directory (")
    path = write_function(tmp_path, code=None)
    assert one_problem(path) == Problem(
        str(path),
        2,
        "functions.hello",
        "code is required for runtime functions; add code: the directory holding the "
        f"function's files, relative to {tmp_path}",
    )


def test_function_name_network_description(tmp_path: Path) -> None:
    path = write(tmp_path, "functions:\n  bad.name: {runtime: provided, code: hello}\n")
    assert one_problem(path) == Problem(
        str(path),
        2,
        "functions.bad.name",
        "function name 'bad.name' is invalid; use 1 to 64 letters, digits, hyphens or underscores",
    )
    problem = one_problem(write_function(tmp_path, network="pubic"))
    assert problem.message == (
        "unknown network 'pubic'; did you mean 'public'? network must be one of: public, private"
    )
    problem = one_problem(write_function(tmp_path, description="x" * 257))
    assert problem.message.endswith(
        "is not a valid description; description must be a string of at most 256 characters"
    )


# --- environment ------------------------------------------------------------------------------


def test_reserved_environment_names(tmp_path: Path) -> None:
    path = write_function(tmp_path, environment={"OK": "1", "AWS_REGION": "eu-west-1"})
    where = "functions.hello.environment.AWS_REGION"
    assert one_problem(path) == Problem(str(path), 8, where, RESERVED_PREFIX + "AWS_REGION")
    path = write_function(tmp_path, environment={"_HANDLER": "x", "LAMBDA_TASK_ROOT": "/x"})
    found = [(p.line, p.message) for p in problems(path)]
    assert found == [(7, RESERVED_PREFIX + "_HANDLER"), (8, RESERVED_PREFIX + "LAMBDA_TASK_ROOT")]


def test_environment_4kb_limit(tmp_path: Path) -> None:
    fits = {"BIG": "x" * (4096 - len('{"BIG":""}'))}
    assert load(write_function(tmp_path, environment=fits)).function("hello").environment == fits
    path = write_function(tmp_path, environment={"BIG": "x" * 4096})
    problem = one_problem(path)
    assert problem.where == "functions.hello.environment"
    assert problem.line == 6
    assert problem.message == SIZE_PREFIX + '{"BIG":"' + "x" * 72 + "..."


@pytest.mark.parametrize("name", ["1BAD", "X", "BAD-NAME", "with space"])
def test_bad_environment_name(tmp_path: Path, name: str) -> None:
    problem = one_problem(write_function(tmp_path, environment={name: "v"}))
    assert problem.where == f"functions.hello.environment.{name}"
    assert problem.message == (
        f"invalid variable name {name!r}; "
        "start with a letter, then 1 or more letters, digits or underscores"
    )


@pytest.mark.parametrize(
    ("value", "line", "message"),
    [
        (True, 7, "true is not a string; quote it, e.g. DEBUG: 'true'"),
        (None, 7, "null is not a string; quote it, e.g. DEBUG: ''"),
        ([1, 2], 8, "[1, 2] is not a string; quote it, e.g. DEBUG: '[1, 2]'"),  # block style
        ({"a": 1}, 8, "{'a': 1} is not a string; quote it, e.g. DEBUG: '{'a': 1}'"),
    ],
)
def test_bad_environment_value(tmp_path: Path, value: object, line: int, message: str) -> None:
    path = write_function(tmp_path, environment={"DEBUG": value})
    where = "functions.hello.environment.DEBUG"
    assert one_problem(path) == Problem(str(path), line, where, message)


def test_environment_not_a_mapping(tmp_path: Path) -> None:
    problem = one_problem(write_function(tmp_path, environment=["A=1"]))
    assert problem.message == (
        "['A=1'] is not a mapping; "
        "environment must map variable names to values, e.g. environment: {KEY: value}"
    )


# --- many problems, file-level problems ----------------------------------------------------------


def test_all_problems_reported_with_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        functions:
          hello:
            runtime: pyton3.13
            handler: app.handler
            code: ./hello
            memory: 64
            timout: 3
          world:
            runtime: python3.13
            code: ./missing
            environment:
              AWS_REGION: us-east-1
              DEBUG: true
        """,
    )
    with pytest.raises(ManifestError) as info:
        load(path)
    found = [(p.line, p.where) for p in info.value.problems]
    assert found == [
        (3, "functions.hello.runtime"),
        (6, "functions.hello.memory"),
        (7, "functions.hello.timout"),
        (8, "functions.world"),
        (10, "functions.world.code"),
        (12, "functions.world.environment.AWS_REGION"),
        (13, "functions.world.environment.DEBUG"),
    ]
    text = str(info.value)
    assert (
        f"{path}:7: functions.hello.timout: unknown key 'timout'; did you mean 'timeout'?" in text
    )
    assert "handler is required for runtime 'python3.13'" in text
    assert len(text.splitlines()) == 7


def test_duplicate_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        functions:
          hello:
            runtime: python3.13
            handler: app.handler
            code: ./hello
            memory: 256
            memory: 512
        """,
    )
    assert one_problem(path) == Problem(
        str(path), 7, "functions.hello.memory", "duplicate key 'memory'; keep only one (see line 6)"
    )


def test_yaml_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path, "functions:\n  hello:\n    runtime: python3.13\n   bad: [\n")
    problem = one_problem(path)
    assert problem.where == "(yaml)"
    assert problem.line == 4
    assert problem.message.startswith("invalid YAML: ")
    assert problem.message.endswith(
        "fix the syntax (indentation, ':' after each key, matching quotes, no tags)"
    )


def test_yaml_unknown_tag(tmp_path: Path) -> None:
    path = write(tmp_path, "functions:\n  hello:\n    runtime: !Ref Runtime\n")
    problem = one_problem(path)
    assert (problem.line, problem.where) == (3, "(yaml)")
    assert "could not determine a constructor for the tag '!Ref'" in problem.message


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "lrun.yaml"
    path.write_text(text)
    assert one_problem(path) == Problem(
        str(path),
        None,
        "(file)",
        "the manifest is empty; define at least one function, e.g. functions: {hello: "
        "{runtime: python3.13, handler: app.handler, code: ./hello}}",
    )


def test_top_level_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- hello\n- world\n")
    assert one_problem(path) == Problem(
        str(path),
        1,
        "(top level)",
        "['hello', 'world'] is not a mapping; "
        "the manifest must be a mapping with a 'functions' key",
    )


@pytest.mark.parametrize("value", ["{}", "", "[a]"])
def test_functions_empty_or_not_a_mapping(tmp_path: Path, value: str) -> None:
    problem = one_problem(write(tmp_path, f"functions: {value}\n"))
    assert (problem.line, problem.where) == (1, "functions")
    assert "has no functions; define at least one function, e.g. functions:" in problem.message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "lrun.yaml"
    message = f"no lrun.yaml found in {tmp_path}; run 'lrun init' to create one or pass -f PATH"
    assert one_problem(path) == Problem(str(path), None, "(file)", message)
    with pytest.raises(ManifestError) as info:
        find(None, tmp_path)
    assert str(info.value) == f"{path}: (file): {message}"
    assert info.value.exit_code == 2


def test_find(tmp_path: Path) -> None:
    path = write_function(tmp_path)
    assert find(None, tmp_path) == path
    assert find(Path("lrun.yaml"), tmp_path) == path
    assert find(tmp_path, Path("/")) == path
    other = tmp_path / "other.yaml"
    other.write_text("functions: {}\n")
    assert find(Path("other.yaml"), tmp_path) == other
    with pytest.raises(ManifestError, match="no missing.yaml found in"):
        find(Path("missing.yaml"), tmp_path)


# --- lookup and digest ------------------------------------------------------------------------


def two_functions(tmp_path: Path) -> Manifest:
    path = write(
        tmp_path,
        """
        functions:
          hello: {runtime: python3.13, handler: app.handler, code: hello}
          world: {runtime: provided, code: hello}
        """,
    )
    return load(path)


def test_function_lookup_unknown_name(tmp_path: Path) -> None:
    loaded = two_functions(tmp_path)
    with pytest.raises(ResourceNotFound) as info:
        loaded.function("helo")
    assert info.value.message == (
        "Function not found: arn:aws:lambda:us-east-1:000000000000:function:helo:$LATEST. "
        f"Functions in {loaded.path}: hello, world (did you mean 'hello'?)"
    )
    assert info.value.status == 404
    with pytest.raises(ResourceNotFound) as info:
        loaded.function("zzz")
    assert info.value.message.endswith(f"Functions in {loaded.path}: hello, world")


def test_config_digest(tmp_path: Path) -> None:
    first = two_functions(tmp_path).function("hello")
    again = two_functions(tmp_path).function("hello")
    assert first.config_digest() == again.config_digest()
    assert len(first.config_digest()) == 16
    int(first.config_digest(), 16)
    assert first == again and hash(first) == hash(again)
    assert first.config_digest() != two_functions(tmp_path).function("world").config_digest()
    changes: list[dict[str, Any]] = [
        {"memory": 256},
        {"environment": MappingProxyType({"A": "1"})},
        {"code": tmp_path},
        {"command": ("x",)},
        {"reserved_concurrency": 0},
        {"description": "d"},
    ]
    for change in changes:
        changed = dataclasses.replace(first, **change)
        assert changed.config_digest() != first.config_digest(), change


# --- tags -----------------------------------------------------------------------------------


def test_tags_are_read_beside_the_spec_and_do_not_change_it(tmp_path: Path) -> None:
    plain = load(write_function(tmp_path)).functions["hello"]
    loaded = load(write_function(tmp_path, tags={"team": "core", "cost": 42}))
    assert loaded.tags == {"hello": {"team": "core", "cost": "42"}}
    # Tags are not how the function runs: its environments are not replaced for them.
    assert loaded.functions["hello"].config_digest() == plain.config_digest()
    assert load(write_function(tmp_path)).tags == {}


@pytest.mark.parametrize(
    ("tags", "found"),
    [
        ("team", "'team' is not a mapping; tags must map keys to values"),
        ({"aws:owner": "me"}, "invalid tag key 'aws:owner'"),
        ({"k" * 129: "v"}, "invalid tag key"),
        ({"team": None}, "null is not a string; quote it"),
        ({"team": "x" * 257}, "tag value is too long; use at most 256 characters"),
        ({f"k{i}": "v" for i in range(51)}, "51 tags; a function has at most 50"),
    ],
)
def test_bad_tags_are_named(tmp_path: Path, tags: object, found: str) -> None:
    problem = one_problem(write_function(tmp_path, tags=tags))
    assert problem.where.startswith("functions.hello.tags")
    assert found in problem.message
