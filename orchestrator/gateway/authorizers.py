"""An API's authorizers at work: Lambda authorizers (REQUEST, TOKEN) and JWT authorizers.

A Lambda authorizer reads its identity sources (a request without them is 401 at once, its
function never called), then answers from its cache for that identity while its TTL lasts, or
invokes its function with API Gateway's authorizer event (developer guide, "Working with AWS
Lambda authorizers for HTTP APIs", "Input to an Amazon API Gateway Lambda authorizer") and reads
a simple ``{"isAuthorized": ...}`` answer or an IAM policy, judged against the request's ARN
(``policy``). What it passes on (``context``, ``principalId``) reaches the integration's
``requestContext.authorizer``. A JWT authorizer checks the bearer token (``jwt``) and passes its
claims on. Caches are bounded: at most ``MAX_CACHED`` identities per API.
"""

from __future__ import annotations

import json
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import LrunError
from orchestrator.gateway import jwt, payload_v1, payload_v2
from orchestrator.gateway.answers import Failure, answer
from orchestrator.gateway.exchange import GatewayRequest, GatewayResponse, Target, query_pairs
from orchestrator.gateway.policy import PolicyError, allows, route_arn
from orchestrator.manifest.apis import ApiSpec, AuthorizerSpec, HttpRoute
from orchestrator.sandbox.environment import Answer, Outcome

# (function, event, timeout in seconds) -> the function's outcome; raises as the service does.
Invoke = Callable[[str, bytes, float], Awaitable[Outcome]]
AUTHORIZER_TIMEOUT_S = 10.0  # API Gateway's "Timeout for Lambda authorizer response"
MAX_CACHED = 1000
_UNSAFE = re.compile(r"[^ !#-~]")  # what a quoted header parameter cannot hold
_SOURCE = re.compile(r"(?:\$request|method\.request)\.(header|querystring)\.(.+)")


@dataclass(frozen=True)
class Granted:
    """Let through, with what goes to the integration's ``requestContext.authorizer``."""

    context: dict[str, Any]


@dataclass(frozen=True)
class _Verdict:
    """A Lambda authorizer's answer, as cached: the policy is judged again per request ARN."""

    simple: bool | None  # isAuthorized, for simple responses
    policy: Any  # the policyDocument, otherwise
    principal: str | None
    context: dict[str, Any]


class Authorizers:
    """One API's authorizers and their caches."""

    def __init__(self, spec: ApiSpec, invoke: Invoke, on_event: Callable[[str], None]) -> None:
        self._spec = spec
        self._rest = spec.type == "rest"
        self._invoke = invoke
        self._on_event = on_event
        self._cache: OrderedDict[tuple[str, tuple[str, ...]], tuple[float, _Verdict]] = (
            OrderedDict()
        )
        self._key_sets = {
            a.name: jwt.KeySet(a.jwks) for a in spec.authorizers.values() if a.jwks is not None
        }

    @property
    def cached(self) -> int:
        """How many answers are cached."""
        return len(self._cache)

    async def authorize(
        self, route: HttpRoute, request: GatewayRequest, target: Target
    ) -> Granted | GatewayResponse:
        assert route.authorizer is not None
        spec = self._spec.authorizers[route.authorizer]
        identity = _identity(spec, request)
        if identity is None:
            return answer(Failure.UNAUTHORIZED, self._rest)
        if spec.type == "jwt":
            return self._jwt(spec, route, identity[0])
        if spec.type == "token" and spec.validation is not None:
            if not re.fullmatch(spec.validation, identity[0]):
                return answer(Failure.UNAUTHORIZED, self._rest)
        arn = route_arn(target.api_id, target.stage, request.method, target.stage_path)
        started = time.monotonic()
        verdict = self._cached(spec, identity)
        if verdict is None:
            found = await self._ask(spec, route, request, target, identity, arn)
            if isinstance(found, GatewayResponse):
                return found
            verdict = found
            if spec.ttl:
                self._remember((spec.name, identity), verdict, spec.ttl)
        try:
            allowed = verdict.simple if verdict.simple is not None else allows(verdict.policy, arn)
        except PolicyError as exc:
            return self._broken(spec, str(exc))
        if not allowed:
            return answer(Failure.FORBIDDEN, self._rest)
        latency = int((time.monotonic() - started) * 1000)
        return Granted(self._passed_on(route, verdict, latency))

    def _cached(self, spec: AuthorizerSpec, identity: tuple[str, ...]) -> _Verdict | None:
        if not spec.ttl:
            return None
        found = self._cache.get((spec.name, identity))
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def _remember(self, key: tuple[str, tuple[str, ...]], verdict: _Verdict, ttl: int) -> None:
        self._cache[key] = (time.monotonic() + ttl, verdict)
        self._cache.move_to_end(key)
        while len(self._cache) > MAX_CACHED:
            self._cache.popitem(last=False)

    async def _ask(
        self,
        spec: AuthorizerSpec,
        route: HttpRoute,
        request: GatewayRequest,
        target: Target,
        identity: tuple[str, ...],
        arn: str,
    ) -> _Verdict | GatewayResponse:
        assert spec.function is not None
        event = self._event(spec, request, target, identity, arn)
        try:
            outcome = await self._invoke(spec.function, event, AUTHORIZER_TIMEOUT_S)
        except (LrunError, TimeoutError) as exc:
            return self._broken(spec, f"its function could not answer ({exc or 'timed out'})")
        if not isinstance(outcome, Answer):
            return self._broken(spec, f"its function failed ({outcome.error_type})")
        if outcome.error_type is not None:
            if _message(outcome.body) == "Unauthorized":  # the documented way to say 401
                return answer(Failure.UNAUTHORIZED, self._rest)
            return self._broken(spec, f"its function failed ({outcome.error_type})")
        try:
            return _verdict(spec, outcome.body, self._rest)
        except PolicyError as exc:
            return self._broken(spec, str(exc))

    def _event(
        self,
        spec: AuthorizerSpec,
        request: GatewayRequest,
        target: Target,
        identity: tuple[str, ...],
        arn: str,
    ) -> bytes:
        if spec.type == "token":
            event: dict[str, Any] = {
                "type": "TOKEN",
                "authorizationToken": identity[0],
                "methodArn": arn,
            }
        elif not self._rest and spec.payload == "2.0":
            event = payload_v2.event(request, target)
            event.update(type="REQUEST", routeArn=arn, identitySource=list(identity))
        else:
            flavour = payload_v1.REST if self._rest else payload_v1.HTTP
            event = payload_v1.event(request, target, flavour)
            event.update(type="REQUEST", methodArn=arn)
            if not self._rest:
                event.update(
                    identitySource=",".join(identity), authorizationToken=",".join(identity)
                )
        for key in ("body", "isBase64Encoded"):
            event.pop(key, None)
        return json.dumps(event, separators=(",", ":")).encode()

    def _passed_on(self, route: HttpRoute, verdict: _Verdict, latency_ms: int) -> dict[str, Any]:
        if not self._rest and route.payload == "2.0":
            return {"lambda": verdict.context}
        passed: dict[str, Any] = {k: _text(v) for k, v in verdict.context.items()}
        if verdict.principal is not None:
            passed["principalId"] = verdict.principal
        passed["integrationLatency"] = latency_ms
        return passed

    def _jwt(
        self, spec: AuthorizerSpec, route: HttpRoute, header: str
    ) -> Granted | GatewayResponse:
        token = header[7:] if header[:7].lower() == "bearer " else header
        try:
            keys = self._key_sets[spec.name].keys()
        except (OSError, jwt.KeySetError) as exc:
            return self._broken(spec, f"its key set cannot be used ({exc})")
        assert spec.issuer is not None
        try:
            claims = jwt.verify(token, keys, spec.issuer, spec.audience, time.time())
        except jwt.TokenError as exc:
            return _challenge(Failure.UNAUTHORIZED, "invalid_token", str(exc))
        scopes = jwt.token_scopes(claims)
        if route.scopes and not set(route.scopes) & set(scopes):
            return _challenge(Failure.FORBIDDEN, "insufficient_scope", "")
        passed = {
            "claims": {k: jwt.claim_text(v) for k, v in claims.items()},
            "scopes": scopes or None,
        }
        return Granted({"jwt": passed} if route.payload == "2.0" else passed)

    def _broken(self, spec: AuthorizerSpec, why: str) -> GatewayResponse:
        self._on_event(f"API {self._spec.name}: authorizer {spec.name}: {why}")
        return answer(Failure.AUTHORIZER_ERROR, self._rest)


def _identity(spec: AuthorizerSpec, request: GatewayRequest) -> tuple[str, ...] | None:
    """The identity sources' values, or None when one is missing or empty."""
    values = []
    query: dict[str, str] | None = None
    for source in spec.identity_source:
        found = _SOURCE.fullmatch(source)
        if found is None:
            return None
        kind, name = found.groups()
        if kind == "header":
            value = request.header(name.lower())
        else:
            if query is None:
                query = dict(query_pairs(request.raw_query))
            value = query.get(name)
        if not value:
            return None
        values.append(value)
    return tuple(values)


def _message(body: bytes) -> str | None:
    try:
        found = json.loads(body)
    except ValueError:
        return None
    return found.get("errorMessage") if isinstance(found, dict) else None


def _scalar_context(context: Any) -> dict[str, Any]:
    if context is None:
        return {}
    if not isinstance(context, dict):
        raise PolicyError("context must be an object")
    for key, value in context.items():
        if not isinstance(value, str | int | float | bool) and value is not None:
            raise PolicyError(f"context {key!r} must be a string, number or boolean")
    return context


def _verdict(spec: AuthorizerSpec, body: bytes, rest: bool) -> _Verdict:
    try:
        found = json.loads(body)
    except ValueError:
        raise PolicyError("its answer is not JSON") from None
    if not isinstance(found, dict):
        raise PolicyError("its answer must be an object")
    if spec.simple_responses:
        authorized = found.get("isAuthorized")
        if not isinstance(authorized, bool):
            raise PolicyError("a simple response needs isAuthorized: true or false")
        context = found.get("context") or {}
        if not isinstance(context, dict):
            raise PolicyError("context must be an object")
        return _Verdict(authorized, None, None, context)
    principal = found.get("principalId")
    if rest and not isinstance(principal, str):
        raise PolicyError("the answer needs a principalId")
    if "policyDocument" not in found:
        raise PolicyError("the answer needs a policyDocument")
    return _Verdict(
        None,
        found["policyDocument"],
        principal if isinstance(principal, str) else None,
        _scalar_context(found.get("context")),
    )


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _challenge(failure: Failure, error: str, description: str) -> GatewayResponse:
    response = answer(failure, rest=False)
    description = _UNSAFE.sub("", description)[:200]  # parts of it come from the token
    header = f'Bearer scope="" error="{error}" error_description="{description}"'
    return GatewayResponse(
        response.status, (*response.headers, ("www-authenticate", header)), response.body
    )
