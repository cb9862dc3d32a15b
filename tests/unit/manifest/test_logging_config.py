"""LoggingConfig: the manifest's ``logging:`` key, and Lambda's rules for the API's
``LoggingConfig`` (defaults, merges, refusals), checked against responses recorded on AWS."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.manifest import load
from orchestrator.manifest.logging_config import (
    TEXT_WITH_LEVELS,
    LoggingConfig,
    LoggingConfigError,
    merged,
)
from tests.unit.manifest.test_functions import one_problem, write_function


def test_the_default_is_text_in_the_functions_own_group(tmp_path: Path) -> None:
    spec = load(write_function(tmp_path)).function("hello")
    assert spec.logging == LoggingConfig()
    assert spec.logging.wire("hello") == {"LogFormat": "Text", "LogGroup": "/aws/lambda/hello"}
    assert spec.logging.runtime_variables() == {}


def test_json_in_the_manifest_with_levels_and_a_group(tmp_path: Path) -> None:
    logging = {
        "format": "json",  # any letter case, as Lambda spells it once read
        "application_log_level": "debug",
        "system_log_level": "WARN",
        "log_group": "/team/app",
    }
    spec = load(write_function(tmp_path, logging=logging)).function("hello")
    assert spec.logging == LoggingConfig("JSON", "DEBUG", "WARN", "/team/app")
    assert spec.logging.wire("hello") == {
        "LogFormat": "JSON",
        "ApplicationLogLevel": "DEBUG",
        "SystemLogLevel": "WARN",
        "LogGroup": "/team/app",
    }
    assert spec.logging.runtime_variables() == {
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": "DEBUG",
    }


def test_json_alone_gets_lambdas_info_levels(tmp_path: Path) -> None:
    spec = load(write_function(tmp_path, logging={"format": "JSON"})).function("hello")
    assert spec.logging == LoggingConfig("JSON", "INFO", "INFO", None)


@pytest.mark.parametrize(
    ("logging", "where", "message"),
    [
        (
            {"format": "XML"},
            "functions.hello.logging.format",
            "unknown format 'XML'; format must be one of: Text, JSON",
        ),
        (
            {"format": "JSON", "system_log_level": "ERROR"},
            "functions.hello.logging.system_log_level",
            "unknown system_log_level 'ERROR'; system_log_level must be one of: DEBUG, INFO, WARN",
        ),
        (
            {"application_log_level": "DEBUG"},
            "functions.hello.logging",
            "log levels need the JSON format (format is Text); set format: JSON to use log "
            "levels, e.g. logging: {format: JSON, application_log_level: DEBUG}",
        ),
        (
            {"log_group": "my group"},
            "functions.hello.logging.log_group",
            "'my group' is not a valid log_group; use 1 to 512 letters, digits and . - _ / #, "
            "e.g. /aws/lambda/app",
        ),
        (
            {"level": "DEBUG"},
            "functions.hello.logging.level",
            "unknown key 'level'; allowed keys: application_log_level, format, log_group, "
            "system_log_level",
        ),
        ("JSON", "functions.hello.logging", "'JSON' is not a mapping; write key: value"),
    ],
    ids=["format", "system-level", "levels-with-text", "group", "unknown-key", "not-a-mapping"],
)
def test_bad_logging_is_one_located_problem(
    tmp_path: Path, logging: object, where: str, message: str
) -> None:
    problem = one_problem(write_function(tmp_path, logging=logging))
    assert (problem.where, problem.message) == (where, message)


# What UpdateFunctionConfiguration did on AWS (LocalStack's TestLoggingConfig snapshots,
# recorded 25-11-2025): each case starts from a Text function called fn.
@pytest.mark.parametrize(
    ("given", "shown"),
    [
        (
            {"LogFormat": "JSON"},
            {
                "ApplicationLogLevel": "INFO",
                "LogFormat": "JSON",
                "LogGroup": "/aws/lambda/fn",
                "SystemLogLevel": "INFO",
            },
        ),
        (
            {"LogFormat": "JSON", "ApplicationLogLevel": "DEBUG"},
            {
                "ApplicationLogLevel": "DEBUG",
                "LogFormat": "JSON",
                "LogGroup": "/aws/lambda/fn",
                "SystemLogLevel": "INFO",
            },
        ),
        (
            {"LogFormat": "JSON", "SystemLogLevel": "DEBUG"},
            {
                "ApplicationLogLevel": "INFO",
                "LogFormat": "JSON",
                "LogGroup": "/aws/lambda/fn",
                "SystemLogLevel": "DEBUG",
            },
        ),
        ({"LogGroup": "cool_lambda"}, {"LogFormat": "Text", "LogGroup": "cool_lambda"}),
    ],
    ids=["json", "json-app-debug", "json-system-debug", "group-only"],
)
def test_updates_merge_as_on_aws(given: dict[str, str], shown: dict[str, str]) -> None:
    assert merged(LoggingConfig(), given, "fn").wire("fn") == shown


def test_switching_back_to_text_drops_the_levels_and_keeps_the_group() -> None:
    json_config = merged(LoggingConfig(), {"LogFormat": "JSON", "LogGroup": "g"}, "fn")
    back = merged(json_config, {"LogFormat": "Text"}, "fn")
    assert back.wire("fn") == {"LogFormat": "Text", "LogGroup": "g"}
    # A later level-only update of a JSON function keeps its other level.
    again = merged(json_config, {"ApplicationLogLevel": "ERROR"}, "fn")
    assert again == LoggingConfig("JSON", "ERROR", "INFO", "g")


def test_levels_with_text_are_refused_with_lambdas_message() -> None:
    with pytest.raises(LoggingConfigError) as info:
        merged(LoggingConfig(), {"LogFormat": "Text", "SystemLogLevel": "WARN"}, "fn")
    assert str(info.value) == TEXT_WITH_LEVELS
    with pytest.raises(LoggingConfigError):  # a Text function given only a level, likewise
        merged(LoggingConfig(), {"ApplicationLogLevel": "WARN"}, "fn")


@pytest.mark.parametrize(
    ("minimum", "kept"),
    [
        ("TRACE", ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]),
        ("WARN", ["WARN", "ERROR", "FATAL"]),
        ("FATAL", ["FATAL"]),
    ],
)
def test_application_levels_keep_their_level_and_above(minimum: str, kept: list[str]) -> None:
    config = LoggingConfig("JSON", minimum, "INFO")
    levels = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]
    assert [level for level in levels if config.keeps_application(level)] == kept
    assert config.keeps_application("undefined")  # Java's level-less calls are never dropped
    assert config.keeps_application("warn") == ("WARN" in kept)  # any letter case


def test_system_levels() -> None:
    assert not LoggingConfig("JSON", "INFO", "WARN").keeps_system("INFO")
    assert LoggingConfig("JSON", "INFO", "INFO").keeps_system("INFO")
    assert not LoggingConfig("JSON", "INFO", "INFO").keeps_system("DEBUG")
    assert LoggingConfig("JSON", "INFO", "DEBUG").keeps_system("DEBUG")
