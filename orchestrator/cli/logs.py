"""`lrun logs FN`: a function's logs from the running server's CloudWatch Logs API, coloured by
level and by request, once or following (``-f``)."""

from __future__ import annotations

import datetime
import json
import re
import time
import zlib
from typing import Any

import click

POLL_S = 1.0
REQUEST_COLOURS = ("cyan", "magenta", "green", "blue", "yellow", "bright_cyan", "bright_magenta")
_REQUEST_ID = re.compile(r"RequestId: ([0-9a-f-]{36})")
_UUID = re.compile(r"\b([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b")
_LEVELS = (
    ("ERROR", "red"),
    ("FATAL", "red"),
    ("CRITICAL", "red"),
    ("WARN", "yellow"),
    ("DEBUG", "bright_black"),
    ("TRACE", "bright_black"),
)


@click.command()
@click.argument("function")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events as they come.")
@click.option("--since", default="10m", show_default=True, help="How far back: 90s, 10m, 2h, 1d.")
@click.option("--filter", "pattern", default="", help="A CloudWatch filter pattern.")
@click.option("--json", "as_json", is_flag=True, help="One JSON event per line, for scripts.")
def logs(function: str, follow: bool, since: str, pattern: str, as_json: bool) -> None:
    """Print FUNCTION's logs (START, its output, END, REPORT), kept by the running server."""
    from orchestrator.api import client
    from orchestrator.errors import ServerUnavailable, ServiceError
    from orchestrator.observe.durations import parse_age

    age = parse_age(since, "--since")
    server = client.find()
    if server is None:
        raise ServerUnavailable("no `lrun serve` is running; start one with: lrun serve")
    config = server.function(function).get("Configuration", {})
    group = config.get("LoggingConfig", {}).get("LogGroup") or f"/aws/lambda/{function}"
    start = int((time.time() - age) * 1000)
    seen: dict[str, int] = {}  # event ids at or after ``start``: asked again when following
    printer = _Printer(as_json)
    while True:
        body: dict[str, Any] = {"logGroupName": group, "startTime": start}
        if pattern:
            body["filterPattern"] = pattern
        try:
            while True:
                page = server.logs("FilterLogEvents", body)
                for event in page["events"]:
                    if event["eventId"] not in seen:
                        seen[event["eventId"]] = event["timestamp"]
                        printer.show(event)
                        start = max(start, event["timestamp"])
                if "nextToken" not in page:
                    break
                body["nextToken"] = page["nextToken"]
        except ServiceError as exc:
            if exc.code != "ResourceNotFoundException":
                raise
            if not follow:  # the group is made by the function's first invocation
                click.echo(f"no logs for {function} yet (log group {group})", err=True)
                return
        if not follow:
            return
        seen = {k: t for k, t in seen.items() if t >= start}  # bounded by the last instant's
        time.sleep(POLL_S)


class _Printer:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.requests: dict[str, str] = {}  # stream -> request in progress there

    def show(self, event: dict[str, Any]) -> None:
        if self.as_json:
            click.echo(json.dumps(event))
            return
        message: str = event["message"]
        stream: str = event["logStreamName"]
        found = _REQUEST_ID.search(message) or _UUID.search(message)
        request = found.group(1) if found else self.requests.get(stream, "")
        if message.startswith("START "):
            self.requests[stream] = request
        elif message.startswith("REPORT "):
            self.requests.pop(stream, None)
        when = datetime.datetime.fromtimestamp(event["timestamp"] / 1000, datetime.UTC)
        prefix = click.style(when.strftime("%H:%M:%S.%f")[:-3], dim=True)
        tag = (
            click.style(request[:8], fg=REQUEST_COLOURS[zlib.crc32(request.encode()) % 7])
            if request
            else " " * 8
        )
        click.echo(f"{prefix} {tag} {_coloured(message)}")


def _coloured(message: str) -> str:
    if message.startswith(("START ", "END ")):
        return click.style(message, dim=True)
    if message.startswith("REPORT "):
        return click.style(message, fg="cyan")
    head = message[:80]
    for level, colour in _LEVELS:
        if level in head:
            return click.style(message, fg=colour)
    return message
