"""Ages as people write them (``90s``, ``10m``, ``12h``, ``7d``), for retention and ``--since``."""

from __future__ import annotations

import re

from orchestrator.errors import LrunError

_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
MAX_AGE_S = 10 * 365 * 86400.0


def parse_age(text: str, what: str) -> float:
    """Seconds in ``text``; raises naming ``what`` and the form expected."""
    found = _AGE.fullmatch(text.strip().lower())
    seconds = float(found.group(1)) * _UNITS[found.group(2)] if found else 0.0
    if not found or not 0 < seconds <= MAX_AGE_S:
        raise LrunError(
            f"{what} {text!r} is not an age: give a number and a unit, e.g. 90s, 10m, 12h, 7d "
            "(at most 10 years)"
        )
    return seconds
