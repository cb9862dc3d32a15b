"""Each invocation as an OpenTelemetry trace, exported over OTLP (HTTP/protobuf) with
OpenTelemetry's own SDK when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (the SDK's other
``OTEL_*`` variables apply: headers, timeouts, ``OTEL_BSP_SCHEDULE_DELAY``, ...).

One trace per invocation, whose id is the invocation's X-Ray trace header's root
(``Root=1-5759e988-bd862e3fe1be46a994272793`` is trace ``5759e988bd862e3fe1be46a994272793``, as
AWS maps the two) and whose parent is the header's ``Parent``, so spans the function's own
OpenTelemetry or X-Ray SDK makes from ``_X_AMZN_TRACE_ID`` join the same trace. Spans: the
invocation (server kind, from the start of init on a cold start to the end), its ``Init`` phase
(cold starts) and its ``Invoke`` phase (the handler). Built from REPORT's figures by the log
writer behind the invocations (``LogBook.on_batch``); the SDK's batch processor exports them
from its own thread. Not yet: a span for the time an asynchronous event waited in its queue.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from orchestrator.logbook import Record, Sink
from orchestrator.sandbox.invocation import InvocationResult, LogParts

log = logging.getLogger(__name__)

ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
_ROOT = re.compile(r"Root=1-([0-9a-f]{8})-([0-9a-f]{24})")
_PARENT = re.compile(r"Parent=([0-9a-f]{16})")


def ids(header: str) -> tuple[int, int] | None:
    """(trace id, parent span id) from an X-Ray trace header; None without a root. A header
    without a parent gets span id 1 (a remote parent that never exported)."""
    root = _ROOT.search(header)
    if root is None:
        return None
    parent = _PARENT.search(header)
    return int(root.group(1) + root.group(2), 16), int(parent.group(1), 16) if parent else 1


class Traces:
    """The SDK's tracer provider and exporter; ``sink`` is a ``LogBook.on_batch`` sink."""

    def __init__(self, service_name: str = "lrun") -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self.tracer = self.provider.get_tracer("lrun")

    def sink(self, records: list[Record]) -> None:
        for function, result, _spec, _stream in records:
            if isinstance(result, InvocationResult):
                self.record(function, result)

    def record(self, function: str, result: InvocationResult) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

        raw = result.raw_log
        if not isinstance(raw, LogParts) or not raw.when.start:
            return
        found = ids(result.trace_id)
        context = None
        if found is not None:
            remote = SpanContext(found[0], found[1], True, TraceFlags(TraceFlags.SAMPLED))
            context = trace.set_span_in_context(NonRecordingSpan(remote))
        report = result.report
        start = int(raw.when.start * 1e9)
        end = int(raw.when.end * 1e9)
        init_ns = int((report.init_duration_ms or 0.0) * 1e6)
        attributes: dict[str, Any] = {
            "faas.name": function,
            "faas.version": result.executed_version,
            "faas.invocation_id": result.request_id,
            "faas.coldstart": report.init_duration_ms is not None,
            "faas.max_memory": report.memory_mb * 1024 * 1024,
            "aws.lambda.billed_duration_ms": report.billed_duration_ms,
            "aws.lambda.max_memory_used_mb": report.max_memory_used_mb,
        }
        if result.function_error is not None:
            attributes["faas.error"] = result.function_error
        root = self.tracer.start_span(
            function, context, SpanKind.SERVER, attributes, start_time=start - init_ns
        )
        inside = trace.set_span_in_context(root)
        if init_ns:
            init = self.tracer.start_span("Init", inside, start_time=start - init_ns)
            init.end(end_time=start)
        invoke = self.tracer.start_span("Invoke", inside, start_time=start)
        if result.function_error is not None:
            invoke.set_status(trace.Status(trace.StatusCode.ERROR, result.function_error))
            root.set_status(trace.Status(trace.StatusCode.ERROR, result.function_error))
        invoke.end(end_time=end)
        root.end(end_time=end)

    def shutdown(self) -> None:
        """Export what is left (call in a thread: it waits for the exporter)."""
        self.provider.shutdown()


def traces_from_env(on_event: Any) -> tuple[Traces | None, Sink | None]:
    """Traces when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set and the SDK is installed."""
    if not os.environ.get(ENDPOINT):
        return None, None
    try:
        traces = Traces()
    except ImportError:
        on_event(
            f"{ENDPOINT} is set but OpenTelemetry's SDK is not installed: no traces are exported "
            "(pip install 'lrun[otel]')"
        )
        return None, None
    on_event(f"exporting a trace per invocation to {os.environ[ENDPOINT]} (OTLP over HTTP)")
    return traces, traces.sink
