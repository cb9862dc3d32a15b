"""LoggingConfig through boto3 against a real `lrun serve` (issue 14, item 1): a function made
through the API is switched to JSON with UpdateFunctionConfiguration, GetFunctionConfiguration
shows what AWS shows, and its next invocation's log (``LogType: Tail``) is JSON records at the
levels asked for; switched back to Text, its log is START / END / REPORT again."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.acceptance.conftest import ServerFactory
from tests.acceptance.test_api_functions import ROLE, client, project, wait

CODE = """import json
import logging

def handler(event, context):
    logging.getLogger().info("info from logging")
    logging.getLogger().error("error from logging")
    print(json.dumps({"level": "DEBUG", "message": "a JSON debug line"}))
    print("a plain line")
    return "ok"
"""


def code_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", CODE)
    return buffer.getvalue()


def tail(lam: Any, name: str) -> str:
    answer = lam.invoke(FunctionName=name, LogType="Tail", Payload=b"{}")
    assert "FunctionError" not in answer, answer["Payload"].read()
    return base64.b64decode(answer["LogResult"]).decode()


def records(log: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


def test_update_function_configuration_switches_the_log_to_json_and_back(
    tmp_path: Path, serve_lrun: ServerFactory
) -> None:
    server = serve_lrun(project(tmp_path / "project"))
    lam = client(server)
    lam.create_function(
        FunctionName="logs",
        Runtime="python3.13",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": code_zip()},
    )
    wait(lam, "function_active_v2", "logs")
    text = tail(lam, "logs")
    assert "START RequestId" in text and "REPORT RequestId" in text
    assert "[ERROR]\t" in text and "a JSON debug line" in text  # Text: nothing filtered

    updated = lam.update_function_configuration(
        FunctionName="logs",
        LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "ERROR", "LogGroup": "/t/logs"},
    )
    assert updated["LoggingConfig"] == {
        "LogFormat": "JSON",
        "ApplicationLogLevel": "ERROR",
        "SystemLogLevel": "INFO",
        "LogGroup": "/t/logs",
    }
    wait(lam, "function_updated_v2", "logs")
    shown = lam.get_function_configuration(FunctionName="logs")["LoggingConfig"]
    assert shown == updated["LoggingConfig"]

    log = tail(lam, "logs")
    found = records(log)
    assert [r.get("type") for r in found] == ["platform.start", None, "platform.report"], log
    application = found[1]
    assert application["level"] == "ERROR" and application["message"] == "error from logging"
    request_id = found[0]["record"]["requestId"]
    assert application["requestId"] == request_id == found[2]["record"]["requestId"]
    assert "info from logging" not in log and "a JSON debug line" not in log
    assert "a plain line" in log
    assert "START RequestId" not in log

    with pytest.raises(ClientError) as refused:
        lam.update_function_configuration(
            FunctionName="logs", LoggingConfig={"LogFormat": "Text", "SystemLogLevel": "WARN"}
        )
    error = refused.value.response["Error"]
    assert error["Code"] == "InvalidParameterValueException"
    assert error["Message"].startswith('LogLevel is not supported when LogFormat is set to "Text"')

    lam.update_function_configuration(FunctionName="logs", LoggingConfig={"LogFormat": "Text"})
    wait(lam, "function_updated_v2", "logs")
    assert lam.get_function_configuration(FunctionName="logs")["LoggingConfig"] == {
        "LogFormat": "Text",
        "LogGroup": "/t/logs",
    }
    again = tail(lam, "logs")
    assert "START RequestId" in again and "[ERROR]\t" in again
