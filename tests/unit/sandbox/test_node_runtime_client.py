"""The Node.js runtime client (runtimes/nodejs/runtime/index.mjs) and the templates, without
Docker: each runs as a host process against an in-process mock of the Lambda Runtime API."""

from __future__ import annotations

import importlib.util
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
INDEX = REPO / "runtimes" / "nodejs" / "runtime" / "index.mjs"
TEMPLATES = REPO / "templates"
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="`node` is not on PATH")

ISO_TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


@dataclass
class Post:
    kind: str  # "response", "error" or "init_error"
    request_id: str | None
    headers: dict[str, str]  # lower-cased names
    body: bytes
    at: float  # time.monotonic() when received

    def json(self):
        return json.loads(self.body)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a runtime killed mid long-poll resets its connection: expected here


class RuntimeAPI:
    """A mock Lambda Runtime API on 127.0.0.1: hands out queued events on /next (long poll)
    and records every response, invocation error and init error posted to it."""

    PREFIX = "/2018-06-01/runtime"

    def __init__(self) -> None:
        self._events: queue.Queue[tuple[bytes, dict[str, str]]] = queue.Queue()
        self._posts: queue.Queue[Post] = queue.Queue()
        self._stop = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like the real API
            disable_nagle_algorithm = True  # headers and body go out in separate writes

            def log_message(self, format, *args):  # quiet
                pass

            def _reply(self, status, body=b"", headers=None):
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != f"{api.PREFIX}/invocation/next":
                    return self._reply(404, b'{"errorType":"NotFound"}')
                while not api._stop.is_set():
                    try:
                        body, headers = api._events.get(timeout=0.05)
                    except queue.Empty:
                        continue
                    return self._reply(200, body, headers)
                self.close_connection = True
                return self._reply(500, b'{"errorType":"ShuttingDown"}')

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                m = re.fullmatch(
                    rf"{api.PREFIX}/(?:invocation/([^/]+)/(response|error)|init/error)", self.path
                )
                if not m:
                    return self._reply(404, b'{"errorType":"NotFound"}')
                headers = {k.lower(): v for k, v in self.headers.items()}
                api._posts.put(Post(m[2] or "init_error", m[1], headers, body, time.monotonic()))
                return self._reply(202, b'{"status":"OK"}', {"Content-Type": "application/json"})

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def push(
        self,
        event,
        *,
        deadline_in_ms: int = 3000,
        headers=None,
        id_header: str = "Lambda-Runtime-Aws-Request-Id",
    ) -> str:
        """Queue an invocation; return its request id."""
        request_id = str(uuid.uuid4())
        all_headers = {
            "Content-Type": "application/json",
            id_header: request_id,
            "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + deadline_in_ms),
            "Lambda-Runtime-Invoked-Function-Arn": (
                "arn:aws:lambda:us-east-1:000000000000:function:demo"
            ),
            "Lambda-Runtime-Trace-Id": f"Root=1-00000000-{request_id.replace('-', '')[:24]}",
            **(headers or {}),
        }
        self._events.put((json.dumps(event).encode(), all_headers))
        return request_id

    def next_post(self, timeout: float = 5.0) -> Post:
        try:
            return self._posts.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(
                f"nothing was posted to the Runtime API within {timeout}s"
            ) from None

    def invoke(self, event, timeout: float = 5.0, **kwargs) -> tuple[str, Post]:
        request_id = self.push(event, **kwargs)
        post = self.next_post(timeout)
        assert post.request_id == request_id
        return request_id, post

    def close(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def api() -> Iterator[RuntimeAPI]:
    server = RuntimeAPI()
    try:
        yield server
    finally:
        server.close()


class Proc:
    """A runtime process under test, with its output collected once it is stopped."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            # Bytes, not text: text mode would turn the '\r' inside log records into '\n'.
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: stop() also ends curl children
        )
        self.stdout = ""
        self.stderr = ""

    def wait_exit(self, timeout: float = 5.0) -> int:
        try:
            out, err = self.popen.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"the runtime did not exit within {timeout}s") from None
        self.stdout, self.stderr = out.decode(), err.decode()
        return self.popen.returncode

    def stop(self) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        out, err = self.popen.communicate(timeout=5)
        self.stdout += (out or b"").decode()
        self.stderr += (err or b"").decode()

    def log_lines(self) -> list[str]:
        # Not splitlines(): that would also split at the '\r' inside a log record.
        return self.stdout.split("\n")[:-1] if self.stdout else []


@pytest.fixture
def start(api: RuntimeAPI) -> Iterator:
    """start(task_root, handler, *, argv=None, **env) runs a runtime process against `api`."""
    procs: list[Proc] = []

    def _start(task_root: Path, handler: str | None, argv=None, **extra_env) -> Proc:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "LAMBDA_TASK_ROOT": str(task_root),
            "LAMBDA_RUNTIME_DIR": str(INDEX.parent),
            "AWS_LAMBDA_FUNCTION_NAME": "demo",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/demo",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2024/01/01/[$LATEST]0123456789abcdef",
            "AWS_REGION": "us-east-1",
            "AWS_EXECUTION_ENV": "AWS_Lambda_nodejs20.x",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            **extra_env,
        }
        if handler is not None:
            env["_HANDLER"] = handler
        proc = Proc(argv or [NODE, str(INDEX)], task_root, env)
        procs.append(proc)
        return proc

    try:
        yield _start
    finally:
        for proc in procs:
            proc.stop()


def write_files(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


# --------------------------------------------------------------------------- node client


@needs_node
def test_async_handler_result_context_and_log_format(api, start, tmp_path):
    write_files(
        tmp_path,
        {
            "app.mjs": """
console.log('loading');
export const handler = async (event, context) => {
  console.log('got %s', event.name, {n: 1});
  console.info('info');
  console.warn('careful');
  console.error('bad');
  console.debug('dbg');
  console.log('two\\nlines');
  return {
    hello: event.name,
    awsRequestId: context.awsRequestId,
    functionName: context.functionName,
    functionVersion: context.functionVersion,
    memoryLimitInMB: context.memoryLimitInMB,
    logGroupName: context.logGroupName,
    logStreamName: context.logStreamName,
    invokedFunctionArn: context.invokedFunctionArn,
    clientContext: context.clientContext,
    identity: context.identity,
    waits: context.callbackWaitsForEmptyEventLoop,
    trace: process.env._X_AMZN_TRACE_ID,
  };
};
"""
        },
    )
    proc = start(tmp_path, "app.handler")
    headers = {
        "Lambda-Runtime-Client-Context": json.dumps({"custom": {"k": "v"}}),
        "Lambda-Runtime-Cognito-Identity": json.dumps({"cognitoIdentityId": "id-1"}),
    }
    request_id, post = api.invoke({"name": "lrun"}, headers=headers)
    assert post.kind == "response"
    assert post.json() == {
        "hello": "lrun",
        "awsRequestId": request_id,
        "functionName": "demo",
        "functionVersion": "$LATEST",
        "memoryLimitInMB": "256",
        "logGroupName": "/aws/lambda/demo",
        "logStreamName": "2024/01/01/[$LATEST]0123456789abcdef",
        "invokedFunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:demo",
        "clientContext": {"custom": {"k": "v"}},
        "identity": {"cognitoIdentityId": "id-1"},
        "waits": True,
        "trace": f"Root=1-00000000-{request_id.replace('-', '')[:24]}",
    }
    proc.stop()
    lines = proc.log_lines()
    assert re.fullmatch(rf"{ISO_TS}\tundefined\tINFO\tloading", lines[0])
    rid = re.escape(request_id)
    expected = [
        rf"{ISO_TS}\t{rid}\tINFO\tgot lrun {{ n: 1 }}",
        rf"{ISO_TS}\t{rid}\tINFO\tinfo",
        rf"{ISO_TS}\t{rid}\tWARN\tcareful",
        rf"{ISO_TS}\t{rid}\tERROR\tbad",
        rf"{ISO_TS}\t{rid}\tDEBUG\tdbg",
        rf"{ISO_TS}\t{rid}\tINFO\ttwo\rlines",  # one record per line, as the RIC writes it
    ]
    assert len(lines) == 1 + len(expected), lines
    for pattern, line in zip(expected, lines[1:], strict=True):
        assert re.fullmatch(pattern, line), (pattern, line)


@needs_node
def test_json_log_format_and_level_are_the_rics(api, start, tmp_path):
    """AWS_LAMBDA_LOG_FORMAT=JSON: one record per console call as the RIC's formatJsonMessage
    writes it; AWS_LAMBDA_LOG_LEVEL drops the levels below it; a handler's error is logged as
    the error alone (the RIC's jsonErrorLogger)."""
    write_files(
        tmp_path,
        {
            "app.mjs": """
console.log('loading');
export const handler = async (event) => {
  console.debug('dropped');
  console.info('kept %s', 'here', {n: 1});
  console.warn({a: 'b'});
  if (event.fail) throw new RangeError('out of range');
  return 'ok';
};
"""
        },
    )
    proc = start(tmp_path, "app.handler", AWS_LAMBDA_LOG_FORMAT="JSON", AWS_LAMBDA_LOG_LEVEL="INFO")
    request_id, post = api.invoke({})
    assert post.kind == "response"
    failed_id, failed = api.invoke({"fail": True})
    assert failed.kind == "error"
    proc.stop()
    records = [json.loads(line) for line in proc.log_lines()]
    assert [list(r) for r in records[:3]] == [
        ["timestamp", "level", "message"],  # no requestId before the first invocation
        ["timestamp", "level", "requestId", "message"],
        ["timestamp", "level", "requestId", "message"],
    ]
    assert all(re.fullmatch(ISO_TS, r["timestamp"]) for r in records)
    assert [(r["level"], r["message"]) for r in records[:3]] == [
        ("INFO", "loading"),
        ("INFO", "kept here { n: 1 }"),
        ("WARN", {"a": "b"}),  # one argument: the value itself
    ]
    assert records[1]["requestId"] == request_id
    error = records[-1]
    assert error["level"] == "ERROR" and error["requestId"] == failed_id
    assert error["message"]["errorType"] == "RangeError"
    assert error["message"]["errorMessage"] == "out of range"
    assert error["message"]["stackTrace"][0] == "RangeError: out of range"
    assert "dropped" not in proc.stdout


@needs_node
def test_callback_handler_result_and_empty_event_loop_wait(api, start, tmp_path):
    write_files(
        tmp_path,
        {
            # CommonJS .js with no package.json: loaded with require().
            "app.js": """
exports.handler = function (event, context, callback) {
  context.callbackWaitsForEmptyEventLoop = event.wait;
  setTimeout(() => callback(null, {doubled: event.n * 2}), 10);
  setTimeout(() => {}, event.pendingMs);  // keeps the event loop busy after the callback
};
"""
        },
    )
    start(tmp_path, "app.handler")
    pushed = time.monotonic()
    _, post = api.invoke({"n": 21, "wait": True, "pendingMs": 300})
    assert post.kind == "response"
    assert post.json() == {"doubled": 42}
    # callbackWaitsForEmptyEventLoop (default true): answered once the 300 ms timer ran.
    assert post.at - pushed >= 0.29

    pushed = time.monotonic()
    _, post = api.invoke({"n": 5, "wait": False, "pendingMs": 3000})
    assert post.json() == {"doubled": 10}
    assert post.at - pushed < 2.0  # did not wait for the 3 s timer


@needs_node
def test_handler_errors_are_posted_with_type_message_trace_and_header(api, start, tmp_path):
    write_files(
        tmp_path,
        {
            "app.js": """
class Validation extends Error {
  constructor(message) { super(message); this.name = 'Validation'; }
}
exports.handler = (event, context, callback) => {
  switch (event.kind) {
    case 'throw': throw new Validation('name is required');
    case 'reject': return Promise.reject(new TypeError('not a number'));
    case 'callback': return callback('plain string');
    case 'fail': return context.fail();
  }
};
"""
        },
    )
    proc = start(tmp_path, "app.handler")

    request_id, post = api.invoke({"kind": "throw"})
    assert post.kind == "error"
    body = post.json()
    assert body["errorType"] == "Validation"
    assert body["errorMessage"] == "name is required"
    assert body["trace"][0] == "Validation: name is required"
    assert any("app.js" in frame for frame in body["trace"][1:])
    assert post.headers["lambda-runtime-function-error-type"] == "Validation"

    _, post = api.invoke({"kind": "reject"})
    assert post.kind == "error"
    assert post.json()["errorType"] == "TypeError"
    assert post.json()["errorMessage"] == "not a number"
    assert post.headers["lambda-runtime-function-error-type"] == "TypeError"

    # Non-Error values are reported as the RIC does: their typeof and toString().
    _, post = api.invoke({"kind": "callback"})
    assert post.json() == {"errorType": "string", "errorMessage": "plain string", "trace": []}
    assert post.headers["lambda-runtime-function-error-type"] == "string"
    _, post = api.invoke({"kind": "fail"})
    assert post.json() == {"errorType": "string", "errorMessage": "handled", "trace": []}

    # The process survives handled errors and logs each as "Invoke Error".
    assert proc.popen.poll() is None
    proc.stop()
    invoke_errors = [line for line in proc.log_lines() if "\tERROR\tInvoke Error \t{" in line]
    assert len(invoke_errors) == 4
    assert invoke_errors[0].split("\t")[1] == request_id
    logged = json.loads(invoke_errors[0].split("\t", 4)[4])
    assert logged["errorType"] == "Validation"
    assert logged["errorMessage"] == "name is required"
    assert logged["stack"][0] == "Validation: name is required"


INIT_ERROR_CASES = {
    "missing-module": (
        "nothere.handler",
        "Runtime.ImportModuleError",
        re.compile(r"Error: Cannot find module 'nothere'\nRequire stack:\n- .*/index\.mjs"),
    ),
    "missing-handler": (
        "app.nope",
        "Runtime.HandlerNotFound",
        "app.nope is undefined or not exported",
    ),
    "not-a-function": ("app.value", "Runtime.HandlerNotFound", "app.value is not a function"),
    "malformed": ("app", "Runtime.MalformedHandlerName", "Bad handler"),
    "syntax-error": (
        "broken.handler",
        "Runtime.UserCodeSyntaxError",
        re.compile(r"SyntaxError: .+"),
    ),
    "throws-at-import": ("throws.handler", "RangeError", "config missing"),
}


@needs_node
@pytest.mark.parametrize("case", INIT_ERROR_CASES)
def test_init_errors_are_posted_and_the_runtime_exits(api, start, tmp_path, case):
    handler, error_type, message = INIT_ERROR_CASES[case]
    write_files(
        tmp_path,
        {
            "app.js": "exports.handler = async () => 1; exports.value = 42;\n",
            "broken.js": "exports.handler = async () => {\n",
            "throws.mjs": "throw new RangeError('config missing');\n",
        },
    )
    proc = start(tmp_path, handler)
    post = api.next_post()
    assert post.kind == "init_error"
    body = post.json()
    assert body["errorType"] == error_type
    if isinstance(message, re.Pattern):
        assert message.fullmatch(body["errorMessage"]), body["errorMessage"]
    else:
        assert body["errorMessage"] == message
    assert isinstance(body["trace"], list) and body["trace"]
    assert post.headers["lambda-runtime-function-error-type"] == error_type
    assert proc.wait_exit() == 129  # as AWS's RIC: "Runtime exited with error: exit status 129"
    line = next(x for x in proc.log_lines() if "Uncaught Exception" in x)
    assert re.fullmatch(rf"{ISO_TS}\tundefined\tERROR\tUncaught Exception \t\{{.*\}}", line)
    assert json.loads(line.split("\t", 4)[4])["errorType"] == error_type


@needs_node
@pytest.mark.parametrize(
    ("file", "source", "error_type"),
    [
        (
            "app.js",
            "const { S3Client } = require('@aws-sdk/client-s3');\nexports.handler = async () => 1;",
            "Runtime.ImportModuleError",
        ),
        (
            "app.mjs",
            "import { S3Client } from '@aws-sdk/client-s3';\nexport const handler = async () => 1;",
            "Error",  # as AWS's client: an ES module's import error passes through as it is
        ),
    ],
)
def test_a_missing_aws_sdk_is_explained_in_the_log(api, start, tmp_path, file, source, error_type):
    """AWS's runtimes include SDK v3; lrun's cannot, so the log says how to supply it."""
    write_files(tmp_path, {file: source + "\n"})
    proc = start(tmp_path, "app.handler")
    post = api.next_post()
    assert post.kind == "init_error"
    assert post.json()["errorType"] == error_type
    assert "@aws-sdk/client-s3" in post.json()["errorMessage"]
    assert proc.wait_exit() == 129
    hint = next(line for line in proc.log_lines() if line.startswith("lrun: "))
    assert "@aws-sdk/client-s3 is not installed" in hint
    assert "nodejs/node_modules/@aws-sdk/client-s3" in hint and "layers:" in hint


@needs_node
@pytest.mark.parametrize("runtime", ["nodejs20.x", "nodejs22.x", "nodejs24.x"])
def test_callback_handlers_are_refused_from_nodejs24(api, start, tmp_path, runtime):
    """AWS's client for Node.js 24 and later refuses handlers taking a callback, at init."""
    write_files(
        tmp_path,
        {"app.js": "exports.handler = (event, context, callback) => callback(null, 7);\n"},
    )
    proc = start(tmp_path, "app.handler", AWS_EXECUTION_ENV=f"AWS_Lambda_{runtime}")
    if runtime != "nodejs24.x":
        _, post = api.invoke({})
        assert post.kind == "response" and post.json() == 7
        proc.stop()
        return
    post = api.next_post()
    assert post.kind == "init_error"
    assert post.json()["errorType"] == "Runtime.CallbackHandlerDeprecated"
    assert post.json()["errorMessage"].startswith(
        "ERROR: AWS Lambda has removed support for callback-based function handlers starting "
        "with Node.js 24."
    )
    assert proc.wait_exit() == 129


@needs_node
def test_other_missing_modules_get_no_sdk_hint(api, start, tmp_path):
    write_files(tmp_path, {"app.js": "require('left-pad');\nexports.handler = async () => 1;\n"})
    proc = start(tmp_path, "app.handler")
    assert api.next_post().json()["errorType"] == "Runtime.ImportModuleError"
    assert proc.wait_exit() == 129
    assert not [line for line in proc.log_lines() if line.startswith("lrun: ")]


@needs_node
def test_remaining_time_follows_the_deadline(api, start, tmp_path):
    write_files(
        tmp_path,
        {"app.mjs": "export const handler = async (e, ctx) => ctx.getRemainingTimeInMillis();\n"},
    )
    start(tmp_path, "app.handler")
    _, post = api.invoke({}, deadline_in_ms=5000)
    assert 4000 < post.json() <= 5000
    _, post = api.invoke({}, deadline_in_ms=60_000)
    assert 59_000 < post.json() <= 60_000


@needs_node
def test_invocations_reuse_one_process_and_its_module_state(api, start, tmp_path):
    write_files(
        tmp_path,
        {
            # Handler path with directories and a nested function: "src/lib/counter.api.count".
            "src/lib/counter.cjs": """
let count = 0;
module.exports.api = { count: async () => ({ count: ++count, pid: process.pid }) };
"""
        },
    )
    proc = start(tmp_path, "src/lib/counter.api.count")
    _, first = api.invoke({})
    _, second = api.invoke({})
    assert first.json() == {"count": 1, "pid": proc.popen.pid}
    assert second.json() == {"count": 2, "pid": proc.popen.pid}


@needs_node
@pytest.mark.parametrize(
    "files, handler",
    [
        (
            {
                "package.json": '{"type": "module"}',
                "app.js": "export const handler = async () => 'loaded';",
            },
            "app.handler",
        ),
        ({"app.mjs": "export const handler = async () => 'loaded';"}, "app.handler"),
        ({"app.cjs": "module.exports.handler = async () => 'loaded';"}, "app.handler"),
        ({"node_modules/app/index.js": "exports.handler = async () => 'loaded';"}, "app.handler"),
    ],
    ids=["js-type-module", "mjs", "cjs", "node-resolution"],
)
def test_module_kinds_are_loaded(api, start, tmp_path, files, handler):
    write_files(tmp_path, files)
    start(tmp_path, handler)
    _, post = api.invoke({})
    assert post.kind == "response" and post.json() == "loaded"


@needs_node
def test_plain_handler_that_never_calls_back_answers_null(api, start, tmp_path):
    write_files(tmp_path, {"app.js": "exports.handler = (event) => ({ ignored: true });\n"})
    start(tmp_path, "app.handler")
    _, post = api.invoke({})
    assert post.kind == "response" and post.body == b"null"


@needs_node
def test_async_handler_that_never_settles_is_a_nodejs_exit_error(api, start, tmp_path):
    write_files(
        tmp_path, {"app.mjs": "export const handler = async () => new Promise(() => {});\n"}
    )
    proc = start(tmp_path, "app.handler")
    _, post = api.invoke({})
    assert post.kind == "error"
    assert post.json()["errorType"] == "Runtime.NodeJsExit"
    assert post.headers["lambda-runtime-function-error-type"] == "Runtime.NodeJsExit"
    _, post = api.invoke({})  # the process lives on
    assert post.json()["errorType"] == "Runtime.NodeJsExit"
    assert proc.popen.poll() is None


@needs_node
@pytest.mark.parametrize(
    "code, error_type, message, exit_code",
    [
        (
            "Promise.reject(new Error('late')); await new Promise((r) => setTimeout(r, 2000));",
            "Runtime.UnhandledPromiseRejection",
            "Error: late",
            128,
        ),
        (
            "setTimeout(() => { throw new Error('kaboom'); }, 0);"
            " await new Promise((r) => setTimeout(r, 2000));",
            "Error",
            "kaboom",
            129,
        ),
    ],
    ids=["unhandled-rejection", "uncaught-exception"],
)
def test_crashes_during_an_invocation_are_reported_then_exit(
    api, start, tmp_path, code, error_type, message, exit_code
):
    write_files(tmp_path, {"app.mjs": f"export const handler = async () => {{ {code} }};\n"})
    proc = start(tmp_path, "app.handler")
    _, post = api.invoke({})
    assert post.kind == "error"
    assert post.json()["errorType"] == error_type
    assert post.json()["errorMessage"] == message
    assert post.headers["lambda-runtime-function-error-type"] == error_type
    assert proc.wait_exit() == exit_code


@needs_node
def test_runtime_exits_when_the_runtime_api_is_gone(start, tmp_path):
    write_files(tmp_path, {"app.mjs": "export const handler = async () => 1;\n"})
    proc = start(tmp_path, "app.handler", AWS_LAMBDA_RUNTIME_API="127.0.0.1:1")
    assert proc.wait_exit() == 1
    assert "the Runtime API failed" in proc.stderr


# ------------------------------------------------------------------------------ templates


def manifest(name: str) -> dict:
    return yaml.safe_load((TEMPLATES / name / "lrun.yaml").read_text())["functions"]["hello"]


@needs_node
def test_nodejs_template_runs_on_the_node_client(api, start):
    fn = manifest("nodejs")
    assert fn["runtime"] == "nodejs20.x"
    proc = start((TEMPLATES / "nodejs" / fn["code"]).resolve(), fn["handler"])
    request_id, post = api.invoke({"name": "lrun"})
    assert post.json() == {"message": "Hello, lrun!"}
    _, post = api.invoke({})
    assert post.json() == {"message": "Hello, world!"}
    proc.stop()
    assert re.fullmatch(
        rf'{ISO_TS}\t{request_id}\tINFO\thello invoked with {{"name":"lrun"}}',
        proc.log_lines()[0],
    )


def test_python_template_handler():
    fn = manifest("python")
    assert fn["runtime"] in ("python3.11", "python3.13")
    module_name, func_name = fn["handler"].split(".")
    path = TEMPLATES / "python" / fn["code"] / f"{module_name}.py"
    spec = importlib.util.spec_from_file_location("lrun_template_app", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler = getattr(module, func_name)
    assert handler({"name": "lrun"}, None) == {"message": "Hello, lrun!"}
    assert handler({}, None) == {"message": "Hello, world!"}


@pytest.mark.parametrize(
    "name", sorted(p.name for p in TEMPLATES.iterdir() if (p / "lrun.yaml").is_file())
)
def test_templates_are_complete(name):
    fn = manifest(name)
    assert {"runtime", "code", "memory", "timeout"} <= fn.keys()
    assert (TEMPLATES / name / fn["code"]).is_dir()
    assert (TEMPLATES / name / "README.md").is_file()
    assert "lrun invoke hello" in (TEMPLATES / name / "README.md").read_text()


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_provided_template_bootstrap_serves_invocations(api, start, tmp_path):
    fn = manifest("provided")
    assert fn["runtime"] == "provided"
    bootstrap = (TEMPLATES / "provided" / fn["code"] / "bootstrap").resolve()
    assert os.access(bootstrap, os.X_OK), "bootstrap must be executable"
    assert bootstrap.read_text().startswith("#!/bin/bash\n")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    # Run it with bash from a read-only-style cwd; it needs no file at all.
    proc = start(bootstrap.parent, None, argv=["bash", str(bootstrap)], TMPDIR=str(scratch))
    first_id, post = api.invoke({"name": "lrun ü"})
    assert post.kind == "response"
    assert post.json() == {"message": "Hello from a shell bootstrap!", "event": {"name": "lrun ü"}}
    # Header names are case-insensitive: the request id is found in any case.
    _, post = api.invoke([1, 2], id_header="lambda-runtime-aws-request-id")
    assert post.json() == {"message": "Hello from a shell bootstrap!", "event": [1, 2]}
    assert proc.popen.poll() is None
    assert not list(scratch.iterdir()), "it writes no file"
    proc.stop()
    assert f"bootstrap: handling request {first_id}" in proc.log_lines()
