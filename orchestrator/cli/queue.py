"""`lrun queue`: the local queues from the command line.

Commands go through the running `lrun serve` when there is one (it owns the database while it
runs) and otherwise work on the state directory's database directly, so queues work without a
server too. Both ways give the same results as plain data, rendered here. Heavy modules are
imported inside the commands, so `lrun --help` stays fast.
"""

from __future__ import annotations

import json
import sys
import urllib.parse
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import click

from orchestrator.errors import LambdaError, LrunError, ServerUnavailable

if TYPE_CHECKING:
    import asyncio

    from orchestrator.api.client import ServerClient
    from orchestrator.events.queues import Queues

T = TypeVar("T")
DATABASE = "lrun.db"  # in the state directory: the database `lrun serve` uses
REQUEST_TIMEOUT_S = 30.0
RECEIVE_MAX = 10  # messages per receive, as SQS allows


class _Queues(Protocol):
    """What the commands need, through the server or on the database: plain data back."""

    def create(self, settings: dict[str, Any]) -> dict[str, Any]: ...
    def delete_queue(self, name: str) -> None: ...
    def send(self, name: str, body: str) -> dict[str, Any]: ...
    def receive(self, name: str, limit: int, visibility: int | None) -> list[dict[str, Any]]: ...
    def delete(self, name: str, receipt: str) -> bool: ...
    def purge(self, name: str) -> int: ...
    def list(self) -> list[dict[str, Any]]: ...


@click.group()
def queue() -> None:
    """Local queues (the SQS role): create, send, receive, purge and list them."""


@queue.command("create")
@click.argument("name")
@click.option(
    "--visibility-timeout",
    type=int,
    default=30,
    show_default=True,
    help="Seconds (0 to 43200) a received message stays hidden from other receivers.",
)
@click.option(
    "--max-receive-count",
    type=int,
    default=None,
    help="Receives (1 to 1000) after which a message goes to the dead-letter queue.",
)
@click.option("--dead-letter-queue", default=None, help="Queue for messages received too often.")
def create(
    name: str, visibility_timeout: int, max_receive_count: int | None, dead_letter_queue: str | None
) -> None:
    """Create queue NAME (again with the same settings: nothing changes)."""
    settings = {
        "name": name,
        "visibility_timeout": visibility_timeout,
        "max_receive_count": max_receive_count,
        "dead_letter_queue": dead_letter_queue,
    }
    _using(lambda queues: queues.create(settings))
    redrive = (
        f", to {dead_letter_queue!r} after {max_receive_count} receives"
        if dead_letter_queue is not None
        else ""
    )
    click.echo(f"queue {name!r}: visibility timeout {visibility_timeout} s{redrive}")


@queue.command("delete")
@click.argument("name")
def delete_queue(name: str) -> None:
    """Delete queue NAME and its messages."""
    _using(lambda queues: queues.delete_queue(name))
    click.echo(f"deleted queue {name!r}")


@queue.command("send")
@click.argument("name")
@click.argument("body", required=False)
@click.option(
    "--file",
    "body_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Send this file's text as the body.",
)
def send(name: str, body: str | None, body_file: Path | None) -> None:
    """Send one message to NAME: BODY, '-' for standard input, or --file PATH.

    Prints the message id.
    """
    text = _body(body, body_file)
    sent = _using(lambda queues: queues.send(name, text))
    click.echo(sent["message_id"])


@queue.command("receive")
@click.argument("name")
@click.option(
    "--max",
    "limit",
    type=click.IntRange(1, RECEIVE_MAX),
    default=1,
    show_default=True,
    help="Messages to receive at most.",
)
@click.option(
    "--visibility-timeout",
    type=int,
    default=None,
    help="Seconds (0 to 43200) to hide them (default: the queue's).",
)
@click.option("--delete", is_flag=True, help="Delete them once printed.")
def receive(name: str, limit: int, visibility_timeout: int | None, delete: bool) -> None:
    """Receive messages from NAME and print each as a JSON line (with its receipt)."""

    def run(queues: _Queues) -> None:
        messages = queues.receive(name, limit, visibility_timeout)
        for message in messages:
            click.echo(json.dumps(message))
        if delete:
            for message in messages:
                queues.delete(name, message["receipt"])

    _using(run)


@queue.command("purge")
@click.argument("name")
def purge(name: str) -> None:
    """Delete every message of NAME."""
    count = _using(lambda queues: queues.purge(name))
    click.echo(f"purged {count} message{'' if count == 1 else 's'} from {name!r}")


@queue.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def ls(as_json: bool) -> None:
    """Show every queue: depth, in flight, oldest message's age, dead-letter queue."""
    rows = _using(lambda queues: queues.list())
    if as_json:
        click.echo(json.dumps(rows))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "queue", "depth", "in flight", "oldest age", "dead-letter queue", "dead-letter depth"
    )
    for row in rows:
        table.add_row(
            row["name"],
            str(row["depth"]),
            str(row["in_flight"]),
            _age(row["oldest_age_s"]),
            row["dead_letter_queue"] or "-",
            "-" if row["dead_letter_depth"] is None else str(row["dead_letter_depth"]),
        )
    Console().print(table)


def _body(body: str | None, body_file: Path | None) -> str:
    if (body is None) == (body_file is None):
        raise click.UsageError("give the body once: BODY, '-' for standard input, or --file PATH")
    if body == "-":
        return sys.stdin.read()
    if body_file is None:
        return body or ""
    try:
        return body_file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise LrunError(
            f"{body_file} is not UTF-8 text; a message body is text, so base64-encode binary data"
        ) from exc
    except OSError as exc:
        raise LrunError(f"cannot read {body_file}: {exc.strerror}; check the path") from exc


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _using(action: Callable[[_Queues], T]) -> T:
    """Run ``action`` through the running server, or on the database when none runs."""
    from orchestrator.api import client

    server = client.find()
    if server is not None:
        try:
            return action(_Remote(server))
        except client.ServerGone:
            pass  # a stale state file: nobody listens, so the database is free
    with _local() as local:
        return action(local)


@contextmanager
def _local() -> Iterator[_Local]:
    import asyncio

    from orchestrator.events.queue_bounds import QueueLimits
    from orchestrator.events.queues import Queues
    from orchestrator.events.store import Store
    from orchestrator.state import state_dir

    store = Store(state_dir() / DATABASE)
    store.open()
    try:
        with asyncio.Runner() as runner:
            yield _Local(Queues(store, limits=QueueLimits.from_env()), runner)
    finally:
        store.close()


class _Local:
    """The queues on the database, without a server."""

    def __init__(self, queues: Queues, runner: asyncio.Runner) -> None:
        self._queues = queues
        self._runner = runner

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(work)

    def create(self, settings: dict[str, Any]) -> dict[str, Any]:
        return _plain(self._run(self._queues.create(**settings)))

    def delete_queue(self, name: str) -> None:
        self._run(self._queues.delete_queue(name))

    def send(self, name: str, body: str) -> dict[str, Any]:
        return _plain(self._run(self._queues.send(name, body)))

    def receive(self, name: str, limit: int, visibility: int | None) -> list[dict[str, Any]]:
        return [_plain(m) for m in self._run(self._queues.receive(name, limit, visibility))]

    def delete(self, name: str, receipt: str) -> bool:
        return self._run(self._queues.delete(name, receipt))

    def purge(self, name: str) -> int:
        return self._run(self._queues.purge(name))

    def list(self) -> list[dict[str, Any]]:
        return [_plain(stats) for stats in self._run(self._queues.list())]


class _Remote:
    """The queues through the running server's /lrun/queues routes."""

    def __init__(self, server: ServerClient) -> None:
        self._server = server

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = b"" if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        status, reply_headers, reply = self._server._request(
            method, path, data, headers, timeout=REQUEST_TIMEOUT_S
        )
        if status >= 300:
            raise _server_error(self._server.url, status, reply_headers, reply)
        return json.loads(reply) if reply else None

    def create(self, settings: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = self._call("POST", "/lrun/queues", settings)
        return created

    def delete_queue(self, name: str) -> None:
        self._call("DELETE", _path(name))

    def send(self, name: str, body: str) -> dict[str, Any]:
        sent: dict[str, Any] = self._call("POST", _path(name, "messages"), {"body": body})
        return dict(sent["messages"][0])

    def receive(self, name: str, limit: int, visibility: int | None) -> list[dict[str, Any]]:
        asked: dict[str, Any] = {"max_messages": limit}
        if visibility is not None:
            asked["visibility_timeout"] = visibility
        messages: list[dict[str, Any]] = self._call("POST", _path(name, "receive"), asked)[
            "messages"
        ]
        return messages

    def delete(self, name: str, receipt: str) -> bool:
        return bool(self._call("DELETE", _path(name, "messages", receipt))["deleted"])

    def purge(self, name: str) -> int:
        return int(self._call("POST", _path(name, "purge"))["purged"])

    def list(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self._call("GET", "/lrun/queues")
        return rows


def _plain(value: Any) -> dict[str, Any]:
    """A dataclass of orchestrator.queues as the JSON the server sends for it."""
    from dataclasses import asdict

    return asdict(value)


def _path(*parts: str) -> str:
    return "/lrun/queues/" + "/".join(urllib.parse.quote(part, safe="") for part in parts)


def _server_error(url: str, status: int, headers: dict[str, str], body: bytes) -> LrunError:
    """The server's error as the same exception working on the database would raise."""
    from orchestrator.errors import InvalidParameterValue, InvalidRequestContent
    from orchestrator.events.queues import (
        QueueDoesNotExist,
        QueueNameExists,
        ReceiptHandleIsInvalid,
    )

    kind = headers.get("x-amzn-errortype")
    if kind is None:
        return ServerUnavailable(
            f"lrun serve at {url} answered {status} without a queue API; restart it with this "
            "version of lrun"
        )
    try:
        parsed = json.loads(body)
        message = str(parsed.get("Message") or parsed.get("message"))
    except (ValueError, AttributeError):
        message = body.decode(errors="replace")
    known: tuple[type[LambdaError], ...] = (
        QueueDoesNotExist,
        QueueNameExists,
        ReceiptHandleIsInvalid,
        InvalidParameterValue,
        InvalidRequestContent,
    )
    for error in known:
        if error.error_type == kind:
            return error(message)
    unknown = LambdaError(message)
    unknown.error_type = kind
    return unknown
