"""A Lambda authorizer's IAM policy, judged against the request's ARN as API Gateway judges it.

The policy allows or denies ``execute-api:Invoke`` on resources such as
``arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/METHOD/PATH``, where ``*`` matches any run of
characters and ``?`` any one (developer guide, "Output from an Amazon API Gateway Lambda
authorizer" and "Statement reference of IAM policies for executing API"). An explicit Deny
wins; without an Allow that matches, the request is denied too.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from orchestrator.aws import ACCOUNT_ID, REGION

_ACTIONS = frozenset({"*", "execute-api:*", "execute-api:invoke"})


class PolicyError(ValueError):
    """An authorizer's answer that is not a policy API Gateway can read."""


def route_arn(api_id: str, stage: str, method: str, path: str) -> str:
    """The ARN of the request: ``.../API/STAGE/METHOD/PATH`` (the path without its first /)."""
    return f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{api_id}/{stage}/{method}/{path[1:]}"


@lru_cache(maxsize=256)
def _pattern(resource: str) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in resource)
    return re.compile("".join(parts), re.DOTALL)


def _listed(value: Any, what: str) -> list[Any]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    raise PolicyError(f"the statement's {what} must be a string or a list of strings")


def allows(document: Any, arn: str) -> bool:
    """Whether ``document`` (the answer's ``policyDocument``) lets the request through."""
    if not isinstance(document, dict):
        raise PolicyError("policyDocument must be an object")
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list):
        raise PolicyError("policyDocument.Statement must be a list of statements")
    allowed = False
    for statement in statements:
        if not isinstance(statement, dict):
            raise PolicyError("each statement must be an object")
        effect = statement.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise PolicyError("a statement's Effect must be Allow or Deny")
        actions = _listed(statement.get("Action"), "Action")
        if not any(action.lower() in _ACTIONS for action in actions):
            continue
        resources = _listed(statement.get("Resource"), "Resource")
        if any(_pattern(resource).fullmatch(arn) for resource in resources):
            if effect == "Deny":
                return False
            allowed = True
    return allowed
