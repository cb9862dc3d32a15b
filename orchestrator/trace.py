"""Phase timings of one process, for finding where a one-shot invocation spends its time.

Off unless LRUN_TRACE is set; then ``lrun`` prints each phase's offset from process start to
standard error when it exits. Marks cost one list append, so they may sit on hot paths.
"""

from __future__ import annotations

import os
import sys
import time

ENABLED = bool(os.environ.get("LRUN_TRACE"))
_marks: list[tuple[str, float]] = []


def _process_start() -> float:
    """Process start on the ``time.monotonic`` clock (Linux: from /proc), else now."""
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return time.monotonic() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.monotonic()


_START = _process_start() if ENABLED else 0.0


def mark(phase: str) -> None:
    if ENABLED:
        _marks.append((phase, time.monotonic()))


def dump() -> None:
    if not ENABLED:
        return
    previous = _START
    for phase, at in _marks:
        sys.stderr.write(
            f"trace {phase:<22} +{(at - previous) * 1000:7.1f} ms  "
            f"at {(at - _START) * 1000:7.1f} ms\n"
        )
        previous = at
