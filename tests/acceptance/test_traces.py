"""Traces over OTLP (issue 14 item 3): a real `lrun serve` with OTEL_EXPORTER_OTLP_ENDPOINT set
exports, with OpenTelemetry's SDK, a trace per invocation of a real python3.13 container to a
real OTLP/HTTP receiver (a loopback HTTP server decoding OpenTelemetry's own protobufs); the
trace is the invocation's X-Ray trace header, the one the function sees."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.acceptance.conftest import LrunServer, start_server

HANDLER = """\
import os

def handler(event, context):
    return {"trace": os.environ.get("_X_AMZN_TRACE_ID")}
"""
HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


class Receiver:
    """An OTLP/HTTP trace receiver: POST /v1/traces, protobuf in, spans kept."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        spans = self.spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/v1/traces":
                    request = ExportTraceServiceRequest()
                    request.ParseFromString(body)
                    for resource in request.resource_spans:
                        for scope in resource.scope_spans:
                            spans.extend(scope.spans)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int) -> list[Any]:
        deadline = time.monotonic() + 30
        while len(self.spans) < count:
            assert time.monotonic() < deadline, f"{len(self.spans)} spans of {count}"
            time.sleep(0.1)
        return list(self.spans)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made = Receiver()
    yield made
    made.server.shutdown()
    made.server.server_close()


def invoke(server: LrunServer, header: str | None) -> str:
    request = urllib.request.Request(
        server.url + "/2015-03-31/functions/traced/invocations",
        data=b"{}",
        headers={
            "Content-Type": "application/json",
            **({"X-Amzn-Trace-Id": header} if header else {}),
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return str(json.loads(response.read())["trace"])


def test_each_invocation_is_a_trace_on_its_xray_header(receiver: Receiver, tmp_path: Path) -> None:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text(HANDLER)
    (tmp_path / "lrun.yaml").write_text(
        "functions:\n  traced: {runtime: python3.13, handler: app.handler, code: ./fn}\n"
    )
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    server = start_server(tmp_path, tmp_path / "state", env=env)
    try:
        seen = invoke(server, HEADER)
        assert seen.startswith("Root=1-5759e988-bd862e3fe1be46a994272793")
        own = invoke(server, None)  # warm, with the header lrun made for it
        spans = receiver.wait(5)
    finally:
        server.finish()
    by_trace: dict[str, list[Any]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id.hex(), []).append(span)
    cold = {s.name: s for s in by_trace["5759e988bd862e3fe1be46a994272793"]}
    assert set(cold) == {"traced", "Init", "Invoke"}
    assert cold["traced"].parent_span_id.hex() == "53995c3f42cd8ad8"  # the caller's span
    assert cold["Init"].parent_span_id == cold["traced"].span_id
    assert cold["Invoke"].parent_span_id == cold["traced"].span_id
    assert cold["Init"].end_time_unix_nano <= cold["Invoke"].start_time_unix_nano
    attributes = {a.key: a.value for a in cold["traced"].attributes}
    assert attributes["faas.coldstart"].bool_value is True
    assert attributes["faas.name"].string_value == "traced"
    root, rest = own.split(";")[0].removeprefix("Root=1-").split("-", 1)
    warm = {s.name for s in by_trace[root + rest]}
    assert warm == {"traced", "Invoke"}  # no Init: the environment was warm
