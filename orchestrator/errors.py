"""The one error hierarchy of lrun.

Every error a user can cause or meet is an ``LrunError``; ``str(error)`` is the one line shown to
them and names the object, the bad value and what to do. Entry points (the CLI, the HTTP server)
catch ``LrunError`` once; anything else is a bug and keeps its traceback.

```
LrunError                         .exit_code for the CLI: 2, or as noted (1 is a function error)
  ManifestError                   one or more manifest problems, each with file, line, key, value
  RuntimeImageError               a runtime image is missing or could not be built (4)
  BackendError                    the container engine failed (3)
    BackendUnavailable            it cannot be reached at all
  ServerUnavailable               a running `lrun serve` could not be talked to
  UnsafePath                      a write would leave the directory it must stay in
  StoreCorrupt                    lrun's store cannot be opened as a database
  LambdaError                     an error Lambda itself returns, with its type and HTTP status
    StoreFailed                   500 ServiceException: lrun's store could not be written
    ResourceNotFound              404 ResourceNotFoundException
      EventInvokeConfigNotFound   the function has no asynchronous invocation settings
    CodeSigningConfigNotFound     404 CodeSigningConfigNotFoundException
    ProvisionedConfigNotFound     404 ProvisionedConcurrencyConfigNotFoundException
    InvalidRequestContent         400 InvalidRequestContentException
    InvalidParameterValue         400 InvalidParameterValueException
      UnreservedTooLow            reserved concurrency beyond what the account leaves unreserved
    Validation                    400 ValidationException (the API model's ranges and patterns)
    ResourceConflict              409 ResourceConflictException
    PreconditionFailed            412 PreconditionFailedException (a stale RevisionId)
    UnknownOperation              404 UnknownOperationException: no operation at that path
    RequestTooLarge               413 RequestEntityTooLargeException
    TooManyRequests               429 TooManyRequestsException, with a Reason
    UnsupportedMediaType          415 UnsupportedMediaTypeException
    AccessDenied                  403 AccessDeniedException (Host, Origin: see api.access)
    SignatureError                403, AWS's authentication failures (see api.sigv4)
      MissingAuthenticationToken, IncompleteSignature, InvalidSignature, UnrecognizedClient
  CredentialsError                lrun's own credentials cannot be read or made
  ServiceError                    CloudWatch Logs' and CloudWatch's errors (AWS JSON protocols):
                                  a code (``__type``), an HTTP status and a message
```

A function's own failure (handler exception, timeout, crash, out of memory) is not an exception
here: it is a result with ``function_error`` set, exactly as Lambda returns it (200 + the error
payload), see ``orchestrator.invocation``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    match = difflib.get_close_matches(value, sorted(choices), n=1)
    return f"did you mean {match[0]!r}?" if match else ""


def show(value: object) -> str:
    """A value as the user wrote it: YAML spelling for null and booleans, else repr, shortened."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class LrunError(Exception):
    """Base of every error lrun reports to a user."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a manifest, located as precisely as the YAML allows."""

    file: str
    line: int | None
    where: str  # e.g. "functions.hello.memory"
    message: str

    def __str__(self) -> str:
        at = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{at}: {self.where}: {self.message}"


class ManifestError(LrunError):
    """The manifest cannot be used; carries every problem found, not just the first."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class RuntimeImageError(LrunError):
    """A runtime image is missing, out of date, or failed to build."""

    exit_code = 4


class BackendError(LrunError):
    """The container engine refused or failed an operation."""

    exit_code = 3


class BackendUnavailable(BackendError):
    """The container engine cannot be reached."""


class ServerUnavailable(LrunError):
    """A running `lrun serve` was found but did not answer."""


class UnsafePath(LrunError):
    """A path lrun was asked to write leads outside the directory it must stay in (a '..', an
    absolute path elsewhere, a symbolic link, a hard link)."""


class StoreCorrupt(LrunError):
    """lrun's SQLite store exists but is not a usable database."""


class LambdaError(LrunError):
    """An error with Lambda's own type, HTTP status and message, as the Invoke API returns it."""

    error_type = "ServiceException"
    status = 500
    kind = "Service"  # Lambda's "Type" field: "User" or "Service"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.error_type}: {self.message}"

    def body(self) -> dict[str, str]:
        """The JSON body Lambda sends with this error."""
        return {"Type": self.kind, "Message": self.message}


class StoreFailed(LambdaError):
    """lrun's store refused a write (disk full, I/O error, ...): the request is refused, as
    Lambda answers when its own service fails, and may be retried once the cause is fixed."""


class ResourceNotFound(LambdaError):
    error_type = "ResourceNotFoundException"
    status = 404
    kind = "User"


class EventInvokeConfigNotFound(ResourceNotFound):
    """GetFunctionEventInvokeConfig (and its delete) of a function that has none."""


class CodeSigningConfigNotFound(LambdaError):
    error_type = "CodeSigningConfigNotFoundException"
    status = 404
    kind = "User"


class ProvisionedConfigNotFound(LambdaError):
    error_type = "ProvisionedConcurrencyConfigNotFoundException"
    status = 404
    kind = "User"

    def body(self) -> dict[str, str]:
        return {"Type": self.kind, "message": self.message}


class InvalidRequestContent(LambdaError):
    error_type = "InvalidRequestContentException"
    status = 400
    kind = "User"

    def body(self) -> dict[str, str]:
        return {"Type": self.kind, "message": self.message}


class InvalidParameterValue(LambdaError):
    error_type = "InvalidParameterValueException"
    status = 400
    kind = "User"

    def body(self) -> dict[str, str]:
        return {"Type": self.kind, "message": self.message}


class PreconditionFailed(LambdaError):
    error_type = "PreconditionFailedException"
    status = 412
    kind = "User"

    def body(self) -> dict[str, str]:
        return {"Type": self.kind, "message": self.message}


class UnknownOperation(LambdaError):
    """A method and path that name no operation: Lambda's front end answers 404 with the error
    type in ``x-amzn-ErrorType`` and a body that is only ``<UnknownOperationException/>``."""

    error_type = "UnknownOperationException"
    status = 404
    kind = "User"

    def __init__(self) -> None:
        super().__init__("<UnknownOperationException/>")


class UntypedInvalidParameterValue(InvalidParameterValue):
    """InvalidParameterValueException as AWS sends some of them: a ``message`` and no ``Type``
    (e.g. an alias of $LATEST with a second version, reserved below provisioned concurrency)."""

    def body(self) -> dict[str, str]:
        return {"message": self.message}


class UnreservedTooLow(InvalidParameterValue):
    """PutFunctionConcurrency beyond what the account leaves unreserved: AWS sends this one
    without a ``Type``."""

    def body(self) -> dict[str, str]:
        return {"message": self.message}


class Validation(LambdaError):
    """A value outside the API model's constraints, worded as AWS words it ("1 validation error
    detected: ..."); AWS sends only a ``message``."""

    error_type = "ValidationException"
    status = 400
    kind = "User"

    def body(self) -> dict[str, str]:
        return {"message": self.message}


class ResourceConflict(LambdaError):
    error_type = "ResourceConflictException"
    status = 409
    kind = "User"

    def body(self) -> dict[str, str]:
        return {"Type": self.kind, "message": self.message}


class CodeStorageExceeded(LambdaError):
    """More code (or, in lrun, more API-created functions) than the account may keep."""

    error_type = "CodeStorageExceededException"
    status = 400
    kind = "User"

    def body(self) -> dict[str, str]:
        return {"Type": self.kind, "message": self.message}


class PolicyLengthExceeded(LambdaError):
    error_type = "PolicyLengthExceededException"
    status = 400
    kind = "User"

    def body(self) -> dict[str, str]:
        return {"Type": self.kind, "message": self.message}


class RequestTooLarge(LambdaError):
    error_type = "RequestEntityTooLargeException"
    status = 413
    kind = "User"


class TooManyRequests(LambdaError):
    error_type = "TooManyRequestsException"
    status = 429
    kind = "User"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__("Rate Exceeded.")

    def __str__(self) -> str:
        return f"{self.error_type}: {self.message} ({self.reason})"

    def body(self) -> dict[str, str]:
        return {"Reason": self.reason, "Type": self.kind, "message": self.message}


class UnsupportedMediaType(LambdaError):
    error_type = "UnsupportedMediaTypeException"
    status = 415
    kind = "User"


class AccessDenied(LambdaError):
    """A request lrun refuses for where it comes from (its Host or browser Origin)."""

    error_type = "AccessDeniedException"
    status = 403
    kind = "User"


class SignatureError(LambdaError):
    """A request that fails AWS Signature Version 4 authentication, answered as AWS does: 403
    with the error type in ``x-amzn-ErrorType`` and only a ``message`` in the body."""

    status = 403
    kind = "User"

    def body(self) -> dict[str, str]:
        return {"message": self.message}


class MissingAuthenticationToken(SignatureError):
    error_type = "MissingAuthenticationTokenException"

    def __init__(self) -> None:
        super().__init__("Missing Authentication Token")


class IncompleteSignature(SignatureError):
    error_type = "IncompleteSignatureException"


class InvalidSignature(SignatureError):
    error_type = "InvalidSignatureException"


class UnrecognizedClient(SignatureError):
    error_type = "UnrecognizedClientException"

    def __init__(self) -> None:
        super().__init__("The security token included in the request is invalid.")


class CredentialsError(LrunError):
    """The key pair `lrun serve` verifies signatures against cannot be read or created."""


class ServiceError(LrunError):
    """An error of CloudWatch Logs or CloudWatch, as their AWS JSON protocols send it."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        self.code = code
        self.message = message
        self.status = status
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"
