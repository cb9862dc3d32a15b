"""The manifest: ``lrun.yaml`` read once into frozen values, with every validation Lambda does.

Owns: functions (``functions``), the YAML reader that locates problems (``reader``), triggers and
asynchronous settings (``triggers`` values, ``trigger_reader``), EventBridge schedule
expressions (``schedule``), Lambda's event-filtering patterns (``event_filter``), finding the
file (``path``) and code revisions (``revision``).
May import: the leaves (``errors``, ``aws``) and PyYAML; nothing else of lrun. Everything
downstream takes these values as already valid.
"""

from orchestrator.manifest.functions import (
    DEFAULT_MANIFEST,
    EPHEMERAL_RANGE,
    MEMORY_RANGE,
    RESERVED_ENV_NAMES,
    RUNTIME_NAMES,
    TIMEOUT_RANGE,
    FunctionSpec,
    Manifest,
    NetworkMode,
    find,
    load,
)

__all__ = [
    "DEFAULT_MANIFEST",
    "EPHEMERAL_RANGE",
    "MEMORY_RANGE",
    "RESERVED_ENV_NAMES",
    "RUNTIME_NAMES",
    "TIMEOUT_RANGE",
    "FunctionSpec",
    "Manifest",
    "NetworkMode",
    "find",
    "load",
]
