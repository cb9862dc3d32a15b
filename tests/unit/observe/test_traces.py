"""The X-Ray trace header as an OpenTelemetry trace id and parent, as AWS maps the two."""

from __future__ import annotations

from orchestrator.observe.traces import ids


def test_root_and_parent_become_trace_and_span_ids() -> None:
    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
    assert ids(header) == (0x5759E988BD862E3FE1BE46A994272793, 0x53995C3F42CD8AD8)
    assert ids("Root=1-5759e988-bd862e3fe1be46a994272793") == (
        0x5759E988BD862E3FE1BE46A994272793,
        1,
    )
    assert ids("") is None and ids("Root=2-zz") is None
