"""Operations of the AWS JSON protocols (``POST /`` with ``X-Amz-Target: <prefix>.<Operation>``),
which CloudWatch Logs speaks, beside Lambda's REST routes on the same endpoint.

Errors go out as these protocols send them: the status, ``{"__type": code, "message": ...}``,
and ``x-amzn-ErrorType``; a target no operation answers is AWS's ``UnknownOperationException``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from orchestrator.errors import LrunError, ServiceError
from orchestrator.http_server import Request, Response, Router

log = logging.getLogger(__name__)

Operation = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
CONTENT_TYPE = "application/x-amz-json-1.1"


class JsonTargets:
    """``POST /`` by ``X-Amz-Target``."""

    def __init__(self) -> None:
        self.operations: dict[str, Operation] = {}

    def add_routes(self, router: Router) -> None:
        router.add("POST", "/", self.dispatch)

    async def dispatch(self, request: Request) -> Response:
        target = request.headers.get("x-amz-target", "")
        operation = self.operations.get(target)
        try:
            if operation is None:
                raise ServiceError(
                    "UnknownOperationException",
                    f"Unknown operation {target or '(no X-Amz-Target)'}",
                )
            try:
                body = json.loads(request.body or b"{}")
            except ValueError:
                raise ServiceError("SerializationException", "Invalid JSON body") from None
            if not isinstance(body, dict):
                raise ServiceError("SerializationException", "The request body is not an object")
            answer = await operation(body)
        except ServiceError as exc:
            return error(exc)
        except LrunError as exc:
            return error(ServiceError("InvalidParameterException", str(exc)))
        return Response(
            200,
            json.dumps(answer).encode(),
            {"Content-Type": CONTENT_TYPE, "x-amzn-RequestId": str(uuid.uuid4())},
        )


def error(exc: ServiceError) -> Response:
    body = {"__type": exc.code, "message": exc.message}
    return Response(
        exc.status,
        json.dumps(body).encode(),
        {
            "Content-Type": CONTENT_TYPE,
            "x-amzn-ErrorType": exc.code,
            "x-amzn-RequestId": str(uuid.uuid4()),
        },
    )
