"""Unit tests for the faces of the local queues: the /lrun/queues routes (through
``Router.dispatch`` with the server's error table) and `lrun queue` (click's ``CliRunner``), both
on the database directly and through a server on loopback.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner, Result

from orchestrator.api.lambda_api import error_response
from orchestrator.api.queue_api import add_queue_routes
from orchestrator.cli.queue import queue
from orchestrator.errors import InvalidParameterValue, LrunError
from orchestrator.events.queues import QueueDoesNotExist, Queues
from orchestrator.events.store import Store
from orchestrator.http_server import Request, Response, Router, Server, serve
from orchestrator.state import announcement
from tests.fakes import run

T = TypeVar("T")


@pytest.fixture
def router(store: Store) -> Router:
    made = Router(error_response)
    add_queue_routes(made, Queues(store))
    return made


def call(router: Router, method: str, path: str, body: object = None) -> Response:
    raw = body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    return run(router.dispatch(Request(method, path, {}, {}, raw, "127.0.0.1")))


def payload(response: Response) -> Any:
    return json.loads(response.body)


def assert_error(response: Response, error_type: str, message: str) -> None:
    assert (response.status, response.headers["x-amzn-ErrorType"]) == (400, error_type)
    body = payload(response)
    assert body.get("Message", body.get("message")).startswith(message)  # Lambda spells both


# Routes


def test_create_list_and_stats(router: Router) -> None:
    created = call(router, "POST", "/lrun/queues", {"name": "dlq"})
    assert created.status == 201
    assert created.headers["Content-Type"] == "application/json"
    assert payload(created) == {
        "name": "dlq",
        "visibility_timeout": 30,
        "max_receive_count": None,
        "dead_letter_queue": None,
    }
    settings = {"name": "jobs", "visibility_timeout": 5, "max_receive_count": 2}
    jobs = call(router, "POST", "/lrun/queues", {**settings, "dead_letter_queue": "dlq"})
    assert jobs.status == 201
    again = call(router, "POST", "/lrun/queues", {**settings, "dead_letter_queue": "dlq"})
    assert again.status == 201  # the same settings: nothing changes
    listed = call(router, "GET", "/lrun/queues")
    assert listed.status == 200
    assert [row["name"] for row in payload(listed)] == ["dlq", "jobs"]
    assert payload(call(router, "GET", "/lrun/queues/jobs")) == {
        "name": "jobs",
        "depth": 0,
        "in_flight": 0,
        "oldest_age_s": None,
        "dead_letter_queue": "dlq",
        "dead_letter_depth": 0,
    }


@pytest.mark.parametrize(
    ("body", "error_type", "message"),
    [
        (b"{not json", "InvalidRequestContentException", "Could not parse request body"),
        ([1], "InvalidRequestContentException", "Could not parse request body into json: not"),
        ({}, "InvalidParameterValueException", "field 'name' is required"),
        (
            {"name": "q", "colour": "red"},
            "InvalidParameterValueException",
            "unknown field 'colour'; this request takes: name, visibility_timeout,",
        ),
        (
            {"name": "q", "visibility_timeout": "30"},
            "InvalidParameterValueException",
            "visibility_timeout '30' is out of range; use a whole number from 0 to 43200",
        ),
        ({"name": 7}, "InvalidParameterValueException", "queue name 7 is invalid"),
        (
            {"name": "q", "max_receive_count": 1, "dead_letter_queue": "nope"},
            "QueueDoesNotExist",
            "queue 'nope' does not exist",
        ),
    ],
)
def test_create_refuses_bad_requests(
    router: Router, body: object, error_type: str, message: str
) -> None:
    assert_error(call(router, "POST", "/lrun/queues", body), error_type, message)


def test_create_with_other_settings_is_refused(router: Router) -> None:
    call(router, "POST", "/lrun/queues", {"name": "q"})
    response = call(router, "POST", "/lrun/queues", {"name": "q", "visibility_timeout": 9})
    assert_error(response, "QueueNameExists", "queue 'q' already exists with other settings")


def test_send_receive_delete_and_purge(router: Router) -> None:
    call(router, "POST", "/lrun/queues", {"name": "q"})
    one = call(router, "POST", "/lrun/queues/q/messages", {"body": "first"})
    assert one.status == 200
    [sent] = payload(one)["messages"]
    assert set(sent) == {"message_id", "md5_of_body"}
    many = call(router, "POST", "/lrun/queues/q/messages", {"messages": ["second", "third"]})
    assert len(payload(many)["messages"]) == 2
    received = call(router, "POST", "/lrun/queues/q/receive", {"max_messages": 2})
    assert received.status == 200
    messages = payload(received)["messages"]
    assert [m["body"] for m in messages] == ["first", "second"]
    assert messages[0]["message_id"] == sent["message_id"]
    assert set(messages[0]) == {
        "message_id",
        "receipt",
        "body",
        "attributes",
        "receive_count",
        "sent_timestamp_ms",
        "first_receive_timestamp_ms",
        "md5_of_body",
    }
    receipt = messages[0]["receipt"]
    deleted = call(router, "DELETE", f"/lrun/queues/q/messages/{receipt}")
    assert (deleted.status, payload(deleted)) == (200, {"deleted": True})
    stale = call(router, "DELETE", f"/lrun/queues/q/messages/{receipt}")
    assert payload(stale) == {"deleted": False}
    stats = payload(call(router, "GET", "/lrun/queues/q"))
    assert (stats["depth"], stats["in_flight"]) == (1, 1)
    purged = call(router, "POST", "/lrun/queues/q/purge")
    assert (purged.status, payload(purged)) == (200, {"purged": 2})


def test_send_takes_attributes(router: Router) -> None:
    call(router, "POST", "/lrun/queues", {"name": "q"})
    attributes = {"kind": {"DataType": "Number", "StringValue": "7"}}
    call(router, "POST", "/lrun/queues/q/messages", {"body": "m", "attributes": attributes})
    [message] = payload(call(router, "POST", "/lrun/queues/q/receive"))["messages"]
    assert message["attributes"]["kind"]["stringValue"] == "7"


def test_receive_with_a_visibility_timeout_of_zero_leaves_messages_visible(
    router: Router,
) -> None:
    call(router, "POST", "/lrun/queues", {"name": "q"})
    call(router, "POST", "/lrun/queues/q/messages", {"body": "m"})
    for count in (1, 2):
        response = call(router, "POST", "/lrun/queues/q/receive", {"visibility_timeout": 0})
        assert [m["receive_count"] for m in payload(response)["messages"]] == [count]


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("messages", {}, "give either body (one message) or messages (a list of bodies), not"),
        ("messages", {"body": "a", "messages": ["b"]}, "give either body"),
        ("messages", {"messages": "abc"}, "messages 'abc' is not a list of message bodies"),
        ("messages", {"messages": []}, "a batch of 0 messages is out of range"),
        ("messages", {"body": 5}, "message body 5 is not text"),
        ("receive", {"max_messages": 11}, "max_messages 11 is out of range; use a whole number"),
        ("receive", {"wait": 1}, "unknown field 'wait'; this request takes: max_messages,"),
        ("receive", {"visibility_timeout": -1}, "visibility_timeout -1 is out of range"),
    ],
)
def test_send_and_receive_refuse_bad_requests(
    router: Router, path: str, body: object, message: str
) -> None:
    call(router, "POST", "/lrun/queues", {"name": "q"})
    response = call(router, "POST", f"/lrun/queues/q/{path}", body)
    assert_error(response, "InvalidParameterValueException", message)


def test_delete_refuses_a_receipt_lrun_did_not_give(router: Router) -> None:
    call(router, "POST", "/lrun/queues", {"name": "q"})
    response = call(router, "DELETE", "/lrun/queues/q/messages/garbage")
    assert_error(response, "ReceiptHandleIsInvalid", "receipt handle 'garbage' is not one")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/lrun/queues/ordrs"),
        ("DELETE", "/lrun/queues/ordrs"),
        ("POST", "/lrun/queues/ordrs/messages"),
        ("POST", "/lrun/queues/ordrs/receive"),
        ("POST", "/lrun/queues/ordrs/purge"),
    ],
)
def test_every_route_names_an_unknown_queue(router: Router, method: str, path: str) -> None:
    call(router, "POST", "/lrun/queues", {"name": "orders"})
    body = {"body": "m"} if path.endswith("messages") else None
    response = call(router, method, path, body)
    assert_error(response, "QueueDoesNotExist", "queue 'ordrs' does not exist; did you mean")


def test_delete_queue(router: Router) -> None:
    call(router, "POST", "/lrun/queues", {"name": "q"})
    deleted = call(router, "DELETE", "/lrun/queues/q")
    assert (deleted.status, deleted.body) == (204, b"")
    assert "x-amzn-RequestId" in deleted.headers
    assert payload(call(router, "GET", "/lrun/queues")) == []


def test_a_dead_letter_queue_in_use_is_not_deleted(router: Router) -> None:
    call(router, "POST", "/lrun/queues", {"name": "dlq"})
    call(
        router,
        "POST",
        "/lrun/queues",
        {"name": "jobs", "max_receive_count": 1, "dead_letter_queue": "dlq"},
    )
    response = call(router, "DELETE", "/lrun/queues/dlq")
    assert_error(response, "InvalidParameterValueException", "queue 'dlq' is the dead_letter")


def test_other_paths_are_not_routes(router: Router) -> None:
    assert call(router, "GET", "/lrun/queues/q/messages").status == 404
    assert call(router, "PUT", "/lrun/queues").status == 404


# `lrun queue` on the database (no server running)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("LRUN_STATE_DIR", str(tmp_path / "state"))
    return CliRunner()


def lrun(cli: CliRunner, *args: str, stdin: str | None = None) -> Result:
    result = cli.invoke(queue, list(args), input=stdin)
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_cli_create_send_receive_delete_on_the_database(cli: CliRunner, tmp_path: Path) -> None:
    created = lrun(cli, "create", "orders", "--visibility-timeout", "60")
    assert created.output == "queue 'orders': visibility timeout 60 s\n"
    sent = lrun(cli, "send", "orders", '{"id": 1}').output.strip()
    lrun(cli, "send", "orders", "-", stdin="from stdin\n")
    body_file = tmp_path / "body.txt"
    body_file.write_text("from a file")
    lrun(cli, "send", "orders", "--file", str(body_file))
    received = lrun(cli, "receive", "orders", "--max", "2", "--delete").output
    lines = [json.loads(line) for line in received.splitlines()]
    assert [m["body"] for m in lines] == ['{"id": 1}', "from stdin\n"]
    assert lines[0]["message_id"] == sent
    assert lines[0]["receive_count"] == 1
    rest = lrun(cli, "receive", "orders", "--max", "10", "--visibility-timeout", "0").output
    assert [json.loads(line)["body"] for line in rest.splitlines()] == ["from a file"]
    assert (tmp_path / "state" / "lrun.db").is_file()


def test_cli_ls_json_and_purge(cli: CliRunner) -> None:
    lrun(cli, "create", "dead")
    lrun(
        cli,
        "create",
        "jobs",
        "--max-receive-count",
        "3",
        "--dead-letter-queue",
        "dead",
    )
    for body in ("a", "b"):
        lrun(cli, "send", "jobs", body)
    lrun(cli, "receive", "jobs")
    rows = json.loads(lrun(cli, "ls", "--json").output)
    jobs = next(row for row in rows if row["name"] == "jobs")
    assert {k: v for k, v in jobs.items() if k != "oldest_age_s"} == {
        "name": "jobs",
        "depth": 1,
        "in_flight": 1,
        "dead_letter_queue": "dead",
        "dead_letter_depth": 0,
    }
    assert jobs["oldest_age_s"] >= 0
    table = lrun(cli, "ls").output
    assert "dead-letter" in table and "jobs" in table
    assert lrun(cli, "purge", "jobs").output == "purged 2 messages from 'jobs'\n"
    assert json.loads(lrun(cli, "ls", "--json").output)[1]["in_flight"] == 0
    lrun(cli, "delete", "jobs")
    assert [row["name"] for row in json.loads(lrun(cli, "ls", "--json").output)] == ["dead"]


def test_cli_names_an_unknown_queue(cli: CliRunner) -> None:
    lrun(cli, "create", "orders")
    result = cli.invoke(queue, ["send", "ordrs", "hello"])
    assert isinstance(result.exception, QueueDoesNotExist)
    assert str(result.exception) == (
        "QueueDoesNotExist: queue 'ordrs' does not exist; did you mean 'orders'? "
        "(known queues: orders)"
    )


def test_cli_send_needs_exactly_one_body(cli: CliRunner, tmp_path: Path) -> None:
    lrun(cli, "create", "orders")
    neither = cli.invoke(queue, ["send", "orders"])
    assert neither.exit_code == 2
    assert "give the body once: BODY, '-' for standard input, or --file PATH" in neither.output
    missing = cli.invoke(queue, ["send", "orders", "--file", str(tmp_path / "nope")])
    assert isinstance(missing.exception, LrunError)
    assert str(missing.exception).startswith(f"cannot read {tmp_path / 'nope'}: ")


def test_cli_create_refuses_bad_settings(cli: CliRunner) -> None:
    result = cli.invoke(queue, ["create", "jobs", "--max-receive-count", "3"])
    assert isinstance(result.exception, InvalidParameterValue)
    assert "give both or neither" in str(result.exception)
    result = cli.invoke(queue, ["create", "jobs", "--visibility-timeout", "50000"])
    assert isinstance(result.exception, InvalidParameterValue)
    assert str(result.exception) == (
        "InvalidParameterValueException: visibility_timeout 50000 is out of range; "
        "use a whole number from 0 to 43200 seconds"
    )


# `lrun queue` through a running server


class LoopbackServer:
    """The queue routes served on loopback from a thread of their own, announced in the
    state directory as a running `lrun serve` would be."""

    def __init__(self, database: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.store = Store(database)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: Server | None = None

    def start(self) -> str:
        self.store.open()
        self.thread.start()
        router = Router(error_response)
        add_queue_routes(router, Queues(self.store))
        started = asyncio.run_coroutine_threadsafe(serve(router, "127.0.0.1", 0), self.loop)
        self.server = started.result(4.0)
        return f"http://127.0.0.1:{self.server.port}"

    def stop(self) -> None:
        if self.server is not None:
            asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(4.0)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(4.0)
        self.loop.close()
        self.store.close()


@pytest.fixture
def served(cli: CliRunner, tmp_path: Path) -> Iterator[Path]:
    server = LoopbackServer(tmp_path / "served.db")
    url = server.start()
    announcement().write(url, tmp_path / "lrun.yaml")
    assert json.loads(announcement().path.read_text())["pid"] == os.getpid()
    try:
        yield tmp_path / "served.db"
    finally:
        server.stop()


def test_cli_goes_through_a_running_server(cli: CliRunner, served: Path, tmp_path: Path) -> None:
    lrun(cli, "create", "orders", "--visibility-timeout", "60")
    sent = lrun(cli, "send", "orders", "hello").output.strip()
    [message] = [json.loads(line) for line in lrun(cli, "receive", "orders").output.splitlines()]
    assert (message["message_id"], message["body"]) == (sent, "hello")
    rows = json.loads(lrun(cli, "ls", "--json").output)
    assert [(row["name"], row["in_flight"]) for row in rows] == [("orders", 1)]
    assert lrun(cli, "purge", "orders").output == "purged 1 message from 'orders'\n"
    failed = cli.invoke(queue, ["receive", "ordrs"])
    assert isinstance(failed.exception, QueueDoesNotExist)  # the same error as on the database
    assert "did you mean 'orders'?" in str(failed.exception)
    assert not (tmp_path / "state" / "lrun.db").exists()  # the server's database only
