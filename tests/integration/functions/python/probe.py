"""Handlers the integration tests run inside real environments, each probing one behaviour."""

import json
import os
import resource
import time
import urllib.error
import urllib.request

INIT_PID = os.getpid()
COUNTER = {"invocations": 0}


def introspect(event, context):
    """What the sandbox looks like from inside."""
    with open("/proc/self/status") as f:
        status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    writable = {}
    for path in ("/", "/var/task", "/tmp"):
        try:
            with open(os.path.join(path, "probe-write"), "w") as f:
                f.write("x")
            writable[path] = True
        except OSError:
            writable[path] = False
    tmp = os.statvfs("/tmp")
    print("introspect ran")
    return {
        "uid": os.getuid(),
        "gid": os.getgid(),
        "cap_eff": status["CapEff"].strip(),
        "no_new_privs": status.get("NoNewPrivs", "").strip(),
        "writable": writable,
        "tmp_bytes": tmp.f_blocks * tmp.f_frsize,
        "nofile": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "remaining_ms": context.get_remaining_time_in_millis(),
        "request_id": context.aws_request_id,
        "function_arn": context.invoked_function_arn,
    }


def count(event, context):
    """Global state survives between invocations of one warm environment."""
    COUNTER["invocations"] += 1
    return {"pid": INIT_PID, "invocations": COUNTER["invocations"]}


def fail(event, context):
    raise ValueError("boom: " + json.dumps(event))


def sleep(event, context):
    print(f"deadline {time.time() * 1000 + context.get_remaining_time_in_millis():.0f}")
    time.sleep(event.get("s", 1))
    return {"slept": event.get("s", 1)}


def hog(event, context):
    """Allocate memory until the cgroup's OOM killer ends the runtime."""
    blocks = []
    while True:
        blocks.append(bytearray(16 * 1024 * 1024))


def leave(event, context):
    os._exit(event.get("code", 3))


def steal(event, context):
    """Try to take or answer another environment's invocation through the Runtime API."""
    base = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime"
    answer = urllib.request.Request(
        f"{base}/invocation/{event['victim']}/response", data=b'"stolen"', method="POST"
    )
    try:
        with urllib.request.urlopen(answer, timeout=5) as response:
            answer_status = response.status
    except urllib.error.HTTPError as exc:
        answer_status = exc.code
    error = urllib.request.Request(
        f"{base}/invocation/{event['victim']}/error", data=b"{}", method="POST"
    )
    try:
        with urllib.request.urlopen(error, timeout=5) as response:
            error_status = response.status
    except urllib.error.HTTPError as exc:
        error_status = exc.code
    # A second /next from this environment must not hand out the victim's event either.
    try:
        with urllib.request.urlopen(f"{base}/invocation/next", timeout=1) as response:
            fetched = response.headers.get("Lambda-Runtime-Aws-Request-Id")
    except Exception:  # blocked until the timeout, as it must be, or refused
        fetched = None
    return {"answer_status": answer_status, "error_status": error_status, "fetched": fetched}


def knock(event, context):
    """Call another environment's Runtime API listener (its port found, as by a port scan) under
    this environment's own host name: /next and an answer to the victim's invocation."""
    own_name = os.environ["AWS_LAMBDA_RUNTIME_API"].rpartition(":")[0]
    base = f"http://{own_name}:{event['port']}/2018-06-01/runtime"
    statuses = {}
    for what, request in (
        ("next", urllib.request.Request(f"{base}/invocation/next")),
        (
            "answer",
            urllib.request.Request(
                f"{base}/invocation/{event['victim']}/response", data=b'"stolen"', method="POST"
            ),
        ),
    ):
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                statuses[what] = response.status
        except urllib.error.HTTPError as exc:
            statuses[what] = exc.code
    return statuses
