"""Function names as Lambda's API takes them: a name, a partial ARN or a full ARN, maybe
qualified; and the errors AWS gives when one names nothing here.

The syntax is checked first by ``validation`` (the model's pattern and length, as
``ValidationException``); what is left is what only the service knows: that a qualifier in the name
and one in ``Qualifier`` agree, that the ARN's region is this one (AWS: 404 "Functions from 'R'
are not reachable in this region") and its account lrun's (AWS: 403, no resource-based policy lets
this caller in).
"""

from __future__ import annotations

import re

from orchestrator.aws import ACCOUNT_ID, REGION, function_arn
from orchestrator.errors import AccessDenied, InvalidParameterValue, ResourceNotFound

LATEST = "$LATEST"
_NAME = re.compile(
    r"(?:arn:(?:aws[a-zA-Z-]*)?:lambda:)?"
    r"(?:(?P<region>(?:eusc-)?[a-z]{2}(?:-gov|-iso[a-z]?)?-[a-z]+-\d):)?"
    r"(?:(?P<account>\d{12}):)?"
    r"(?:function:)?(?P<name>[a-zA-Z0-9_.-]+)"
    r"(?::(?P<qualifier>\$LATEST(?:\.PUBLISHED)?|[a-zA-Z0-9_-]+))?"
)
# Every IAM action is its operation's name, but one.
_ACTIONS = {"Invoke": "InvokeFunction"}


def resolve(
    function: str, qualifier: str | None, operation: str = "GetFunction"
) -> tuple[str, str | None]:
    """A function name (name, partial or full ARN, maybe qualified) as (name, qualifier); the
    qualifier is None when the caller gave none. An ARN of another region or account is refused
    as AWS refuses it."""
    found = _NAME.fullmatch(function)
    if found is None:  # validation answers first wherever the model has a pattern
        raise InvalidParameterValue(f"The function name {function!r} is not valid.")
    if found["region"] is not None and found["region"] != REGION:
        raise ResourceNotFound(
            f"Functions from '{found['region']}' are not reachable in this region ('{REGION}')"
        )
    if found["account"] is not None and found["account"] != ACCOUNT_ID:
        action = "lambda:" + _ACTIONS.get(operation, operation)
        resource = f"arn:aws:lambda:{REGION}:{found['account']}:function:{found['name']}"
        raise AccessDenied(
            f"User: arn:aws:iam::{ACCOUNT_ID}:root is not authorized to perform: {action} on "
            f"resource: {resource} because no resource-based policy allows the {action} action"
        )
    derived = found["qualifier"]
    if derived and qualifier and derived != qualifier:
        raise InvalidParameterValue(
            "The derived qualifier from the function name does not match the specified qualifier."
        )
    return found["name"], derived or qualifier


def not_found(name: str, qualifier: str | None = None) -> ResourceNotFound:
    """AWS's "Function not found" error: the ARN as the caller qualified it (or did not)."""
    return ResourceNotFound(f"Function not found: {function_arn(name, qualifier)}")


def unqualified(function: str, operation: str) -> str:
    """The name of a function given for an operation that takes no version or alias."""
    name, qualifier = resolve(function, None, operation)
    if qualifier is not None:
        raise InvalidParameterValue(
            "This operation is permitted on Lambda functions only. Aliases and versions do "
            "not support this operation. Please specify either a function name or an "
            "unqualified function ARN."
        )
    return name
