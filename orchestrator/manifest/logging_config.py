"""A function's ``LoggingConfig``: its log format, log levels and log group, as on Lambda.

Lambda's rules (botocore's model for the values; responses recorded on AWS in November 2025,
LocalStack's ``TestLoggingConfig`` snapshots in ``tests/aws/services/lambda_/
test_lambda_api.snapshot.json`` @ 8b9a79f, for the defaults and merges):

- ``LogFormat`` is ``Text`` (the default) or ``JSON``; the levels apply with JSON only. Choosing
  JSON sets both levels to ``INFO`` unless given; going back to Text drops them.
- An update merges into the current configuration (``{"LogGroup": "x"}`` keeps the format).
- ``LogGroup`` defaults to ``/aws/lambda/<function>``.

With JSON, Lambda tells the runtime through ``AWS_LAMBDA_LOG_FORMAT=JSON`` and
``AWS_LAMBDA_LOG_LEVEL=<ApplicationLogLevel>`` (read by AWS's runtime clients and lrun's), writes
its own lines as JSON records filtered by ``SystemLogLevel``, and filters the JSON lines of
runtimes whose client does not (see ``sandbox.log_records``).

The manifest spells it like its other settings::

    logging: {format: JSON, application_log_level: DEBUG, system_log_level: WARN,
              log_group: /my/group}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

LogFormat = Literal["Text", "JSON"]
LOG_FORMATS: tuple[LogFormat, ...] = ("Text", "JSON")
# Least detail last; a record is kept when its level is at or after the configured one.
APPLICATION_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
SYSTEM_LEVELS = ("DEBUG", "INFO", "WARN")
DEFAULT_LEVEL = "INFO"
LOG_GROUP_MAX = 512
LOGGING_KEYS = frozenset({"format", "application_log_level", "system_log_level", "log_group"})
TEXT_WITH_LEVELS = (
    'LogLevel is not supported when LogFormat is set to "Text". Remove LogLevel from your '
    'request or change the LogFormat to "JSON" and try again.'
)


@dataclass(frozen=True)
class LoggingConfig:
    """What a function's logs look like and where they go; levels are set only with JSON."""

    format: LogFormat = "Text"
    application_log_level: str | None = None
    system_log_level: str | None = None
    log_group: str | None = None  # None: /aws/lambda/<function>

    @property
    def json(self) -> bool:
        return self.format == "JSON"

    def group(self, function: str) -> str:
        return self.log_group or f"/aws/lambda/{function}"

    def wire(self, function: str) -> dict[str, str]:
        """``LoggingConfig`` as GetFunctionConfiguration returns it."""
        shown: dict[str, str] = {"LogFormat": self.format}
        if self.json:
            shown["ApplicationLogLevel"] = self.application_log_level or DEFAULT_LEVEL
            shown["SystemLogLevel"] = self.system_log_level or DEFAULT_LEVEL
        shown["LogGroup"] = self.group(function)
        return shown

    def runtime_variables(self) -> dict[str, str]:
        """What Lambda sets in the environment for the runtime's client to read (JSON only)."""
        if not self.json:
            return {}
        return {
            "AWS_LAMBDA_LOG_FORMAT": "JSON",
            "AWS_LAMBDA_LOG_LEVEL": self.application_log_level or DEFAULT_LEVEL,
        }

    def keeps_application(self, level: str) -> bool:
        """Whether a function's record at ``level`` passes ApplicationLogLevel."""
        return _at_least(level, self.application_log_level)

    def keeps_system(self, level: str) -> bool:
        """Whether a platform record at ``level`` passes SystemLogLevel."""
        return _at_least(level, self.system_log_level)


def _at_least(level: str, minimum: str | None) -> bool:
    """SYSTEM_LEVELS are APPLICATION_LEVELS' middle, so one order serves both; a level that is
    none of them (Java's UNDEFINED) is never dropped."""
    upper = level.upper()
    if upper not in APPLICATION_LEVELS:
        return True
    return APPLICATION_LEVELS.index(upper) >= APPLICATION_LEVELS.index(minimum or DEFAULT_LEVEL)


def normalised(config: LoggingConfig) -> LoggingConfig:
    """JSON fills in the levels Lambda defaults; Text has none."""
    if config.json:
        return LoggingConfig(
            "JSON",
            config.application_log_level or DEFAULT_LEVEL,
            config.system_log_level or DEFAULT_LEVEL,
            config.log_group,
        )
    return LoggingConfig("Text", None, None, config.log_group)


class LoggingConfigError(ValueError):
    """A LoggingConfig Lambda refuses; the message is Lambda's."""


def merged(current: LoggingConfig, given: Mapping[str, Any], function: str) -> LoggingConfig:
    """``current`` updated by a request's ``LoggingConfig`` (already checked against the model's
    enums and pattern), as CreateFunction and UpdateFunctionConfiguration do."""
    log_format = given.get("LogFormat", current.format)
    has_levels = "ApplicationLogLevel" in given or "SystemLogLevel" in given
    if log_format == "Text" and has_levels:
        raise LoggingConfigError(TEXT_WITH_LEVELS)
    group = given.get("LogGroup", current.log_group)
    if group == f"/aws/lambda/{function}":
        group = None  # the default, kept as such so a rename would follow
    if log_format == "Text":
        return LoggingConfig("Text", None, None, group)
    return normalised(
        LoggingConfig(
            "JSON",
            given.get("ApplicationLogLevel", current.application_log_level),
            given.get("SystemLogLevel", current.system_log_level),
            group,
        )
    )
