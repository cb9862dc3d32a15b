"""Handlers that attack lrun itself from inside a function (issue 8): each tries to make lrun
spend memory or file descriptors without bound, or to break its environment's state."""

import json
import os
import socket
import urllib.error
import urllib.request

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
BASE = "/2018-06-01/runtime"
HELD = []  # connections kept open after the invocation ends
COUNTER = {"invocations": 0}
MB = 1024 * 1024


def _connect():
    host, port = API.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def stream_response(event, context):
    """Stream event["mb"] MB to /response as one chunked body that never ends on its own."""
    sock = _connect()
    path = f"{BASE}/invocation/{context.aws_request_id}/response"
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: {API}\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    )
    chunk = b"%x\r\n" % MB + b"x" * MB + b"\r\n"
    sent = 0
    try:
        for _ in range(event.get("mb", 512)):
            sock.sendall(chunk)
            sent += 1
    except OSError as exc:
        print(f"lrun stopped reading after {sent} MB: {exc}")
    else:
        print(f"lrun took all {sent} MB")
    sock.close()
    return {"sent_mb": sent}


def flood_stdout(event, context):
    """Write event["mb"] MB to standard output as fast as possible."""
    line = (b"y" * 1023 + b"\n") * 1024
    for _ in range(event.get("mb", 500)):
        os.write(1, line)
    os.write(1, b"the last line of the flood\n")
    return {"written_mb": event.get("mb", 500)}


def hold_connections(event, context):
    """Open event["n"] connections to the Runtime API and keep them after the invocation."""
    opened = 0
    for _ in range(event.get("n", 900)):
        try:
            HELD.append(_connect())
            opened += 1
        except OSError:
            break
    return {"opened": opened, "held": len(HELD)}


def init_error_after_init(event, context):
    """Post /init/error in the middle of an invocation, long after init."""
    COUNTER["invocations"] += 1
    status = None
    if event.get("attack"):
        request = urllib.request.Request(
            f"http://{API}{BASE}/init/error",
            data=json.dumps({"errorMessage": "poisoned", "errorType": "Poison"}).encode(),
            headers={"Lambda-Runtime-Function-Error-Type": "Poison"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
    return {"init_error_status": status, "invocations": COUNTER["invocations"]}
