"""Unit tests for orchestrator.runtime_api, driven through a real ``serve()`` on loopback.

Environments are told apart by the connection's peer address; Linux accepts any 127.0.0.0/8
source address, so a client bound to 127.0.0.2 plays one environment's runtime and one bound to
127.0.0.3 another's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from orchestrator.sandbox import runtime_api
from orchestrator.sandbox.environment import Answer, Delivery, Environment, State
from orchestrator.sandbox.invocation import MAX_RESPONSE_PAYLOAD, InvokeRequest, PlatformError
from orchestrator.sandbox.runtime_api import RuntimeApi
from tests.unit.rawhttp import TIMEOUT_S, Client, RawResponse, connected, request_bytes, run
from tests.unit.rawhttp import serving as serving_router

NEXT = "/2018-06-01/runtime/invocation/next"
INIT_ERROR = "/2018-06-01/runtime/init/error"
ARN = "arn:aws:lambda:us-east-1:000000000000:function:hello"
ENV_A, ENV_B = "127.0.0.2", "127.0.0.3"


def response_path(request_id: str) -> str:
    return f"/2018-06-01/runtime/invocation/{request_id}/response"


def error_path(request_id: str) -> str:
    return f"/2018-06-01/runtime/invocation/{request_id}/error"


def new_env(name: str = "a") -> Environment:
    return Environment(id=name * 32, function="hello", memory_mb=128)


def new_delivery(
    request_id: str = "req-1",
    payload: bytes = b'{"n":1}',
    client_context: str | None = None,
    trace_id: str | None = None,
    deadline_ms: int = 1_700_000_003_000,
) -> Delivery:
    request = InvokeRequest(payload, ARN, "$LATEST", client_context, trace_id, request_id)
    outcome = asyncio.get_running_loop().create_future()
    return Delivery(request, deadline_ms, outcome)


@dataclass
class Api:
    api: RuntimeApi
    port: int


@contextlib.asynccontextmanager
async def serving(*envs: tuple[str, Environment]) -> AsyncIterator[Api]:
    api = RuntimeApi()
    for ip, env in envs:
        api.register(ip, env)
    async with serving_router(api.router, connections=api.connections) as port:
        yield Api(api, port)


async def start_next(client: Client) -> asyncio.Task[RawResponse]:
    """Send GET /next and return the task reading its (long-polled) answer."""
    await client.send(request_bytes("GET", NEXT))
    return asyncio.create_task(client.response())


async def still_pending(task: asyncio.Task[RawResponse], wait_s: float = 0.05) -> bool:
    await asyncio.sleep(wait_s)
    return not task.done()


async def stop(task: asyncio.Task[RawResponse]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


# --- /next ----------------------------------------------------------------------------------


def test_next_blocks_until_delivery_then_returns_event() -> None:
    async def scenario() -> None:
        env = new_env()
        env.started_at = asyncio.get_running_loop().time() - 0.5
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            pending = await start_next(runtime)
            assert await still_pending(pending)
            assert env.ready.is_set()
            assert env.state is State.IDLE
            assert env.init_duration_ms is not None and env.init_duration_ms >= 500
            delivery = new_delivery("req-1", b'{"hello":"world"}')
            env.deliver(delivery)
            response = await asyncio.wait_for(pending, TIMEOUT_S)
            assert response.status == 200
            assert response.body == b'{"hello":"world"}'
            assert response.headers["lambda-runtime-aws-request-id"] == "req-1"
            assert response.headers["lambda-runtime-deadline-ms"] == "1700000003000"
            assert response.headers["lambda-runtime-invoked-function-arn"] == ARN
            assert response.headers["content-type"] == "application/json"
            assert "lambda-runtime-client-context" not in response.headers
            assert "lambda-runtime-trace-id" not in response.headers
            assert "Lambda-Runtime-Aws-Request-Id" in response.header_names
            assert delivery.delivered_at is not None
            assert not delivery.outcome.done()
            assert env.current is delivery

    run(scenario())


def test_next_returns_a_delivery_made_before_it_asked() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            env.deliver(new_delivery("early"))
            response = await runtime.request("GET", NEXT)
            assert response.status == 200
            assert response.headers["lambda-runtime-aws-request-id"] == "early"
            assert env.state is State.BUSY

    run(scenario())


def test_next_sends_client_context_and_trace_id_when_set() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            context = '{"custom":{"k":"v"}}'
            trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
            env.deliver(new_delivery("req-ctx", client_context=context, trace_id=trace))
            response = await runtime.request("GET", NEXT)
            assert response.headers["lambda-runtime-client-context"] == context
            assert response.headers["lambda-runtime-trace-id"] == trace

    run(scenario())


# --- /response and /error -------------------------------------------------------------------


def test_response_is_accepted_and_settles_the_outcome() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            delivery = new_delivery("req-1")
            env.deliver(delivery)
            await runtime.request("GET", NEXT)
            answer = await runtime.request("POST", response_path("req-1"), b'{"ok": true}')
            assert answer.status == 202
            assert answer.body == b'{"status":"OK"}'
            assert answer.headers["content-type"] == "application/json"
            outcome = await asyncio.wait_for(delivery.outcome, TIMEOUT_S)
            assert outcome == Answer(b'{"ok": true}', None, "application/json")
            assert env.current is None

    run(scenario())


def test_response_keeps_its_content_type() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            delivery = new_delivery("req-1")
            env.deliver(delivery)
            await runtime.request("GET", NEXT)
            headers = {"Content-Type": "text/plain"}
            answer = await runtime.request("POST", response_path("req-1"), b"plain", headers)
            assert answer.status == 202
            assert delivery.outcome.result() == Answer(b"plain", None, "text/plain")

    run(scenario())


def test_second_response_for_the_same_invocation_is_refused() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            delivery = new_delivery("req-1")
            env.deliver(delivery)
            await runtime.request("GET", NEXT)
            first = await runtime.request("POST", response_path("req-1"), b"1")
            again = await runtime.request("POST", response_path("req-1"), b"2")
            assert (first.status, again.status) == (202, 400)
            assert again.json()["errorType"] == "InvalidRequestID"
            assert delivery.outcome.result() == Answer(b"1")

    run(scenario())


def test_error_passes_body_through_and_sets_error_type() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            delivery = new_delivery("req-1")
            env.deliver(delivery)
            await runtime.request("GET", NEXT)
            body = b'{ "errorMessage" : "boom",\n  "errorType":"ValueError", "stackTrace": [] }'
            headers = {"Lambda-Runtime-Function-Error-Type": "Unhandled.ValueError"}
            answer = await runtime.request("POST", error_path("req-1"), body, headers)
            assert answer.status == 202
            assert answer.body == b'{"status":"OK"}'
            outcome = delivery.outcome.result()
            assert isinstance(outcome, Answer)
            assert outcome.body == body  # byte for byte
            assert outcome.error_type == "Unhandled.ValueError"

    run(scenario())


def test_error_without_body_or_type_is_runtime_unknown() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            delivery = new_delivery("req-1")
            env.deliver(delivery)
            await runtime.request("GET", NEXT)
            answer = await runtime.request("POST", error_path("req-1"))
            assert answer.status == 202
            outcome = delivery.outcome.result()
            assert outcome == Answer(b'{"errorType": "Runtime.Unknown"}', "Runtime.Unknown")

    run(scenario())


@pytest.mark.parametrize("route", ["response", "error"])
def test_wrong_request_id_is_400_invalid_request_id(route: str) -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            delivery = new_delivery("req-1")
            env.deliver(delivery)
            await runtime.request("GET", NEXT)
            path = response_path("other") if route == "response" else error_path("other")
            answer = await runtime.request("POST", path, b"{}")
            assert answer.status == 400
            assert answer.json()["errorType"] == "InvalidRequestID"
            assert "other" in answer.json()["errorMessage"]
            assert not delivery.outcome.done()
            assert env.current is delivery

    run(scenario())


def test_response_with_no_invocation_in_flight_is_400() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            answer = await runtime.request("POST", response_path("req-1"), b"{}")
            assert answer.status == 400
            assert answer.json()["errorType"] == "InvalidRequestID"

    run(scenario())


def test_response_at_the_size_limit_is_accepted() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            delivery = new_delivery("big")
            env.deliver(delivery)
            await runtime.request("GET", NEXT)
            body = b"x" * MAX_RESPONSE_PAYLOAD
            answer = await runtime.request("POST", response_path("big"), body)
            assert answer.status == 202
            outcome = delivery.outcome.result()
            assert isinstance(outcome, Answer)
            assert len(outcome.body) == 6_291_556
            assert outcome.error_type is None

    run(scenario())


def test_response_over_the_size_limit_is_413_and_function_error() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            delivery = new_delivery("big")
            env.deliver(delivery)
            await runtime.request("GET", NEXT)
            body = b"x" * (MAX_RESPONSE_PAYLOAD + 1)
            answer = await runtime.request("POST", response_path("big"), body)
            assert answer.status == 413
            assert answer.json()["errorType"] == "RequestEntityTooLarge"
            outcome = delivery.outcome.result()
            assert isinstance(outcome, Answer)
            assert outcome.error_type == "Function.ResponseSizeTooLarge"
            assert json.loads(outcome.body) == {
                "errorType": "Function.ResponseSizeTooLarge",
                "errorMessage": "Response payload size (6291557 bytes) exceeded maximum allowed "
                "payload size (6291556 bytes).",
            }
            assert env.current is None

    run(scenario())


# --- isolation between environments (P2) ----------------------------------------------------


def test_environments_cannot_fetch_or_answer_each_others_invocations() -> None:
    async def scenario() -> None:
        env_a, env_b = new_env("a"), new_env("b")
        async with (
            serving((ENV_A, env_a), (ENV_B, env_b)) as srv,
            connected(srv.port, ENV_A) as runtime_a,
            connected(srv.port, ENV_B) as runtime_b,
        ):
            next_b = await start_next(runtime_b)
            next_a = await start_next(runtime_a)
            assert await still_pending(next_a)
            assert await still_pending(next_b, 0)
            delivery = new_delivery("req-for-a", b'{"secret":"a"}')
            env_a.deliver(delivery)

            got_a = await asyncio.wait_for(next_a, TIMEOUT_S)
            assert got_a.headers["lambda-runtime-aws-request-id"] == "req-for-a"
            assert await still_pending(next_b)  # B never sees A's invocation
            assert env_b.current is None
            assert env_b.invocations == 0

            # B cannot answer it, on a connection of its own either.
            async with connected(srv.port, ENV_B) as intruder:
                steal = await intruder.request("POST", response_path("req-for-a"), b"forged")
                fail = await intruder.request("POST", error_path("req-for-a"), b"forged")
            assert (steal.status, fail.status) == (400, 400)
            assert steal.json()["errorType"] == "InvalidRequestID"
            assert fail.json()["errorType"] == "InvalidRequestID"
            assert not delivery.outcome.done()

            # A still can.
            async with connected(srv.port, ENV_A) as answering:
                ok = await answering.request("POST", response_path("req-for-a"), b'"mine"')
            assert ok.status == 202
            assert delivery.outcome.result() == Answer(b'"mine"')
            assert await still_pending(next_b, 0)
            await stop(next_b)

    run(scenario())


def test_each_environment_gets_its_own_invocation() -> None:
    async def scenario() -> None:
        env_a, env_b = new_env("a"), new_env("b")
        async with (
            serving((ENV_A, env_a), (ENV_B, env_b)) as srv,
            connected(srv.port, ENV_A) as runtime_a,
            connected(srv.port, ENV_B) as runtime_b,
        ):
            next_a, next_b = await start_next(runtime_a), await start_next(runtime_b)
            await asyncio.sleep(0.02)
            env_b.deliver(new_delivery("for-b"))
            env_a.deliver(new_delivery("for-a"))
            got_a = await asyncio.wait_for(next_a, TIMEOUT_S)
            got_b = await asyncio.wait_for(next_b, TIMEOUT_S)
            assert got_a.headers["lambda-runtime-aws-request-id"] == "for-a"
            assert got_b.headers["lambda-runtime-aws-request-id"] == "for-b"

    run(scenario())


# --- /init/error ----------------------------------------------------------------------------


def test_init_error_settles_the_pending_invocation() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            delivery = new_delivery("req-1")
            env.deliver(delivery)  # queued: the runtime fails before asking for it
            body = b'{"errorMessage":"Unable to import module \'app\'","errorType":"X"}'
            headers = {"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"}
            answer = await runtime.request("POST", INIT_ERROR, body, headers)
            assert answer.status == 202
            assert answer.body == b'{"status":"OK"}'
            outcome = await asyncio.wait_for(delivery.outcome, TIMEOUT_S)
            assert outcome == Answer(body, "Runtime.ImportModuleError")
            assert env.ready.is_set()
            assert env.current is None

            later = new_delivery("req-2")
            env.deliver(later)  # every later invocation fails the same way at once
            assert later.outcome.result() == Answer(body, "Runtime.ImportModuleError")

    run(scenario())


def test_init_error_before_any_invocation_is_kept() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            answer = await runtime.request("POST", INIT_ERROR, b"init failed")
            assert answer.status == 202
            assert env.init_error == Answer(b"init failed", "Runtime.Unknown")
            assert env.ready.is_set()

    run(scenario())


def test_init_error_from_unknown_address_is_403(monkeypatch: pytest.MonkeyPatch) -> None:
    """An address that is never registered is refused once the registration wait is over."""
    monkeypatch.setattr(runtime_api, "_REGISTRATION_WAIT_S", 0.1)

    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_B) as stranger:
            answer = await stranger.request("POST", INIT_ERROR, b"{}")
            assert answer.status == 403
            assert env.init_error is None

    run(scenario())


# --- retirement, unknown peers, registration race -------------------------------------------


def test_retired_environment_gets_500_on_next() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            env.retire()
            answer = await runtime.request("GET", NEXT)
            assert answer.status == 500
            assert answer.json()["errorType"] == "Runtime.ExitError"
            assert not env.ready.is_set()  # it never asked for work

    run(scenario())


def test_runtime_waiting_on_next_gets_500_when_retired() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            pending = await start_next(runtime)
            assert await still_pending(pending)
            env.retire()
            answer = await asyncio.wait_for(pending, TIMEOUT_S)
            assert answer.status == 500
            assert answer.json()["errorType"] == "Runtime.ExitError"

    run(scenario())


def test_waiting_for_work_is_set_only_while_the_runtime_waits_on_next() -> None:
    async def until_waiting(env: Environment) -> None:
        while not env.waiting_for_work:
            await asyncio.sleep(0.005)

    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            assert not env.waiting_for_work
            pending = await start_next(runtime)
            await asyncio.wait_for(until_waiting(env), TIMEOUT_S)
            env.deliver(new_delivery("req-1"))
            await asyncio.wait_for(pending, TIMEOUT_S)
            assert not env.waiting_for_work
            await runtime.request("POST", response_path("req-1"), b"{}")
            pending = await start_next(runtime)
            await asyncio.wait_for(until_waiting(env), TIMEOUT_S)
            await stop(pending)
        await asyncio.sleep(0.05)  # the disconnect cancels the long-poll
        assert not env.waiting_for_work

    run(scenario())


def test_unknown_address_gets_403_after_the_registration_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime_api, "_REGISTRATION_WAIT_S", 0.1)

    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_B) as stranger:
            loop = asyncio.get_running_loop()
            started = loop.time()
            answer = await stranger.request("GET", NEXT)
            waited = loop.time() - started
            assert answer.status == 403
            assert answer.json()["errorType"] == "InvalidStateTransition"
            assert 0.09 <= waited < 1.5
            assert not env.ready.is_set()

    run(scenario())


def test_environment_registered_after_its_next_arrived_gets_its_invocation() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving() as srv, connected(srv.port, ENV_A) as runtime:
            pending = await start_next(runtime)
            assert await still_pending(pending)  # waiting for the registration
            srv.api.register(ENV_A, env)
            await asyncio.wait_for(env.ready.wait(), TIMEOUT_S)  # its /next went through
            delivery = new_delivery("late-registered")
            env.deliver(delivery)
            response = await asyncio.wait_for(pending, TIMEOUT_S)
            assert response.status == 200
            assert response.headers["lambda-runtime-aws-request-id"] == "late-registered"
            answer = await runtime.request("POST", response_path("late-registered"), b"1")
            assert answer.status == 202
            assert delivery.outcome.result() == Answer(b"1")

    run(scenario())


def test_registration_race_with_delivery_before_registration() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving() as srv, connected(srv.port, ENV_A) as runtime:
            pending = await start_next(runtime)
            assert await still_pending(pending)
            env.deliver(new_delivery("queued"))
            srv.api.register(ENV_A, env)
            response = await asyncio.wait_for(pending, TIMEOUT_S)
            assert response.headers["lambda-runtime-aws-request-id"] == "queued"

    run(scenario())


def test_unregistered_environment_cannot_answer() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            delivery = new_delivery("req-1")
            env.deliver(delivery)
            await runtime.request("GET", NEXT)
            srv.api.unregister(ENV_A, env)
            answer = await runtime.request("POST", response_path("req-1"), b"{}")
            assert answer.status == 400
            assert not delivery.outcome.done()
            srv.api.close_connections(ENV_A)  # stopped: its connections go
            assert await runtime.at_eof()

    run(scenario())


def test_invocation_survives_a_runtime_that_dropped_its_long_poll() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv:
            async with connected(srv.port, ENV_A) as first:
                pending = await start_next(first)
                assert await still_pending(pending)
                await stop(pending)
            await asyncio.sleep(0.05)  # the server sees the disconnect; the handler is cancelled
            env.deliver(new_delivery("after-drop"))
            async with connected(srv.port, ENV_A) as second:
                response = await second.request("GET", NEXT)
            assert response.status == 200
            assert response.headers["lambda-runtime-aws-request-id"] == "after-drop"

    run(scenario())


def test_container_death_settles_the_invocation_as_platform_error() -> None:
    from orchestrator.sandbox.backend import ContainerExit

    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            delivery = new_delivery("req-1")
            env.deliver(delivery)
            await runtime.request("GET", NEXT)
            env.died(ContainerExit("cid", 137, oom_killed=True))
            outcome = delivery.outcome.result()
            assert isinstance(outcome, PlatformError)
            assert outcome.error_type == "Runtime.OutOfMemory"
            answer = await runtime.request("POST", response_path("req-1"), b"late")
            assert answer.status == 400

    run(scenario())


def test_init_error_posted_before_registration_is_kept() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving() as srv, connected(srv.port, ENV_A) as runtime:
            delivery = new_delivery("req-1")
            env.deliver(delivery)
            headers = {"Lambda-Runtime-Function-Error-Type": "Runtime.ImportModuleError"}
            await runtime.send(request_bytes("POST", INIT_ERROR, b"{}", headers))
            posted = asyncio.create_task(runtime.response())
            await asyncio.sleep(0.02)
            srv.api.register(ENV_A, env)  # the engine reports the address a moment later
            answer = await asyncio.wait_for(posted, TIMEOUT_S)
            assert answer.status == 202
            assert delivery.outcome.result() == Answer(b"{}", "Runtime.ImportModuleError")

    run(scenario())


def test_second_waiter_sees_a_registration_within_its_own_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runtime_api, "_REGISTRATION_WAIT_S", 0.3)

    async def scenario() -> None:
        env = new_env()
        async with (
            serving() as srv,
            connected(srv.port, ENV_A) as first,
            connected(srv.port, ENV_A) as second,
        ):
            first_next = await start_next(first)
            await asyncio.sleep(0.15)
            second_next = await start_next(second)
            refused = await asyncio.wait_for(first_next, TIMEOUT_S)  # its 0.3 s are over
            assert refused.status == 403
            srv.api.register(ENV_A, env)  # well within the second waiter's 0.3 s
            env.deliver(new_delivery("req-2"))
            got = await asyncio.wait_for(second_next, TIMEOUT_S)
            assert got.status == 200
            assert got.headers["lambda-runtime-aws-request-id"] == "req-2"

    run(scenario())


def test_unregistering_a_dead_environment_spares_the_new_holder_of_its_address() -> None:
    """The engine gives a dead container's address to the next one at once."""

    async def scenario() -> None:
        old, new = new_env(), new_env()
        async with serving((ENV_A, old)) as srv, connected(srv.port, ENV_A) as runtime:
            srv.api.register(ENV_A, new)
            srv.api.unregister(ENV_A, old)  # a late exit of the old one
            new.deliver(new_delivery("req-new"))
            got = await runtime.request("GET", NEXT)
            assert got.headers["lambda-runtime-aws-request-id"] == "req-new"

    run(scenario())


# --- calls out of phase and oversized answers (issue 8) ---------------------------------------


def test_init_error_after_init_is_403_and_changes_nothing() -> None:
    """The attack: a handler posts /init/error once init is over, to fail every later
    invocation without running it. Lambda refuses the transition; so does lrun."""

    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            first = new_delivery("req-1")
            env.deliver(first)
            await runtime.request("GET", NEXT)
            async with connected(srv.port, ENV_A) as attacker:
                refused = await attacker.request("POST", INIT_ERROR, b'{"errorType":"X"}')
            assert refused.status == 403
            assert refused.json() == {
                "errorType": "InvalidStateTransition",
                "errorMessage": "State transition from Running to InitError failed for runtime. "
                "Error: State transition is not allowed",
            }
            assert env.init_error is None
            assert not first.outcome.done()
            assert (await runtime.request("POST", response_path("req-1"), b"1")).status == 202
            assert first.outcome.result() == Answer(b"1")
            second = new_delivery("req-2")
            env.deliver(second)  # runs: the environment is not poisoned
            task = await start_next(runtime)
            assert (await task).headers["lambda-runtime-aws-request-id"] == "req-2"
            idle = await runtime.request("POST", response_path("req-2"), b"2")
            assert idle.status == 202
            assert second.outcome.result() == Answer(b"2")

    run(scenario())


def test_init_error_while_waiting_for_work_is_403_from_ready() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            pending = await start_next(runtime)
            assert await still_pending(pending)
            async with connected(srv.port, ENV_A) as attacker:
                refused = await attacker.request("POST", INIT_ERROR, b"{}")
            assert refused.status == 403
            assert "from Ready to InitError" in refused.json()["errorMessage"]
            assert env.init_error is None
            delivery = new_delivery("req-1")
            env.deliver(delivery)
            assert (await pending).status == 200

    run(scenario())


def test_a_second_init_error_and_next_after_init_error_are_403() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            assert (await runtime.request("POST", INIT_ERROR, b"first")).status == 202
            again = await runtime.request("POST", INIT_ERROR, b"second")
            assert again.status == 403
            assert "from InitError to InitError" in again.json()["errorMessage"]
            assert env.init_error == Answer(b"first", "Runtime.Unknown")
            after = await runtime.request("GET", NEXT)
            assert after.status == 403
            assert "from InitError to Ready" in after.json()["errorMessage"]
            assert env.init_duration_ms is None

    run(scenario())


def test_a_streamed_response_over_the_limit_fails_the_invocation_while_it_is_read() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv, connected(srv.port, ENV_A) as runtime:
            delivery = new_delivery("big")
            env.deliver(delivery)
            await runtime.request("GET", NEXT)
            head = request_bytes(
                "POST", response_path("big"), headers={"Transfer-Encoding": "chunked"}
            )
            await runtime.send(head)
            chunk = b"100000\r\n" + b"x" * 0x100000 + b"\r\n"  # 1 MiB chunks, never ending
            for _ in range(7):
                await runtime.send(chunk)
            outcome = await asyncio.wait_for(delivery.outcome, TIMEOUT_S)
            assert outcome == Answer(
                json.dumps(
                    {
                        "errorType": "Function.ResponseSizeTooLarge",
                        "errorMessage": "Response payload size exceeded maximum allowed "
                        "payload size (6291556 bytes).",
                    }
                ).encode(),
                "Function.ResponseSizeTooLarge",
            )
            answer = await runtime.response()
            assert answer.status == 413
            assert answer.json()["errorType"] == "RequestEntityTooLarge"

    run(scenario())


def test_closing_a_stopped_environments_connections_spares_a_newer_one_at_its_address() -> None:
    async def scenario() -> None:
        old, new = new_env("a"), new_env("b")
        async with serving((ENV_A, old)) as srv, connected(srv.port, ENV_A) as runtime:
            srv.api.unregister(ENV_A, old)
            srv.api.register(ENV_A, new)  # the engine handed the address on at once
            srv.api.close_connections(ENV_A)
            new.deliver(new_delivery("req-new"))
            got = await runtime.request("GET", NEXT)
            assert got.headers["lambda-runtime-aws-request-id"] == "req-new"

    run(scenario())


def test_an_environment_gets_a_handful_of_connections_and_no_more() -> None:
    async def scenario() -> None:
        env = new_env()
        async with serving((ENV_A, env)) as srv:
            held = [await Client.connect(srv.port, ENV_A) for _ in range(50)]
            await asyncio.sleep(0.1)
            assert srv.api.connections.peer_count(ENV_A) == 8
            for client in held:
                await client.close()

    run(scenario())
