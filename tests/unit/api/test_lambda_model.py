"""The checked-in model is botocore's, and validation words its refusals as AWS does."""

from __future__ import annotations

import pytest

from orchestrator.api import validation
from orchestrator.api.lambda_model import OPERATIONS
from orchestrator.errors import Validation
from orchestrator.http_server import Request
from tests.unit.api.model_extract import extract

FUNCTION_NAME_PATTERN = OPERATIONS["GetFunction"]["members"]["FunctionName"]["pattern"]


def test_the_checked_in_model_is_botocores() -> None:
    """Regenerate with ``python -m tests.unit.api.model_extract`` when botocore changes."""
    assert extract() == OPERATIONS


def test_every_routed_operation_is_in_the_model() -> None:
    from orchestrator.api.lambda_api import LambdaApi

    assert {"Invoke", "GetFunction", "TagResource", "AddPermission"} <= set(OPERATIONS)
    assert LambdaApi  # the routes use these names through checked()


def refusal(operation: str, given: dict[str, object]) -> str:
    with pytest.raises(Validation) as refused:
        validation.check(operation, given)
    assert refused.value.error_type == "ValidationException"
    assert refused.value.body() == {"message": refused.value.message}
    return refused.value.message


def test_pattern_message_names_the_member_in_lower_camel_case() -> None:
    # AWS's message, recorded on AWS (LocalStack's snapshot of test_function_arns), with the
    # pattern of the model version installed here.
    assert refusal("GetFunction", {"FunctionName": "invalid:function:name"}) == (
        "1 validation error detected: Value 'invalid:function:name' at 'functionName' failed to "
        "satisfy constraint: Member must satisfy regular expression pattern: "
        + FUNCTION_NAME_PATTERN
    )


def test_length_range_enum_and_null_messages() -> None:
    assert refusal("GetFunctionConcurrency", {"FunctionName": "a" * 141}) == (
        f"1 validation error detected: Value '{'a' * 141}' at 'functionName' failed to satisfy "
        "constraint: Member must have length less than or equal to 140"
    )
    assert refusal(
        "PutProvisionedConcurrencyConfig",
        {"FunctionName": "f", "Qualifier": "1", "ProvisionedConcurrentExecutions": 0},
    ) == (
        "1 validation error detected: Value '0' at 'provisionedConcurrentExecutions' failed to "
        "satisfy constraint: Member must have value greater than or equal to 1"
    )
    assert refusal("PutFunctionRecursionConfig", {"FunctionName": "f", "RecursiveLoop": "x"}) == (
        "1 validation error detected: Value 'x' at 'recursiveLoop' failed to satisfy constraint: "
        "Member must satisfy enum value set: [Terminate, Allow]"
    )
    assert refusal(
        "UntagResource", {"Resource": "arn:aws:lambda:us-east-1:000000000000:function:f"}
    ) == (
        "1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: "
        "Member must not be null"
    )


def test_several_errors_are_counted_and_joined_in_model_order() -> None:
    message = refusal("PutProvisionedConcurrencyConfig", {"FunctionName": "f"})
    assert message == (
        "2 validation errors detected: Value null at 'qualifier' failed to satisfy constraint: "
        "Member must not be null; Value null at 'provisionedConcurrentExecutions' failed to "
        "satisfy constraint: Member must not be null"
    )


def test_nested_members_are_named_by_their_path() -> None:
    given = {
        "FunctionName": "f",
        "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:_-/!lambda:x"}},
    }
    message = refusal("PutFunctionEventInvokeConfig", given)
    assert message.startswith(
        "1 validation error detected: Value 'arn:aws:_-/!lambda:x' at "
        "'destinationConfig.onFailure.destination' failed to satisfy constraint: Member must "
        "satisfy regular expression pattern: "
    )


def test_valid_input_passes() -> None:
    validation.check(
        "GetFunction", {"FunctionName": "arn:aws:lambda:us-east-1:000000000000:function:f:1"}
    )
    validation.check("ListFunctions", {"MaxItems": 50})


@pytest.mark.parametrize(
    ("model", "aws"),
    [
        (["Allow", "Terminate"], ["Terminate", "Allow"]),
        (["x86_64", "arm64"], ["x86_64", "arm64"]),
        (["PublishedVersions", "None"], ["PublishedVersions", "None"]),
        (["BUFFERED", "RESPONSE_STREAM"], ["RESPONSE_STREAM", "BUFFERED"]),
    ],
)
def test_enum_values_are_listed_in_aws_s_order(model: list[str], aws: list[str]) -> None:
    """Orders seen in AWS's recorded messages (recursiveLoop, architectures, snapStart.applyOn,
    a function URL's invokeMode)."""
    assert validation.enum_order(model) == aws


def test_create_function_runtimes_are_listed_in_aws_s_order() -> None:
    """The 25 runtimes of AWS's recorded CreateFunction message, in AWS's order, come out of a
    Java HashSet built from them: the rule enum_order follows."""
    aws = (
        "nodejs20.x, python3.14, provided.al2023, python3.12, python3.13, nodejs24.x, "
        "nodejs22.x, java25, python3.10, python3.11, java21, ruby3.3, ruby3.4, ruby3.2, "
        "python3.8, python3.9, java17, nodejs16.x, dotnet10, dotnet8, java11, dotnet6, "
        "nodejs18.x, provided.al2, java8.al2"
    ).split(", ")
    assert validation.enum_order(aws) == aws


def test_a_request_that_passed_is_not_read_again_and_one_that_differs_is_checked() -> None:
    def invoke(invocation_type: str) -> Request:
        headers = {"x-amz-invocation-type": invocation_type}
        path = "/2015-03-31/functions/echo/invocations"
        return Request("POST", path, {}, headers, b"{}", "127.0.0.1", {"function": "echo"})

    first = validation.checked_request("Invoke", invoke("Event"))
    assert first == {"FunctionName": "echo", "InvocationType": "Event"}
    first["InvocationType"] = "changed by its caller"  # each caller gets its own copy
    again = validation.checked_request("Invoke", invoke("Event"))
    assert again == {"FunctionName": "echo", "InvocationType": "Event"}
    with pytest.raises(Validation, match="Value 'Later' at 'invocationType'"):
        validation.checked_request("Invoke", invoke("Later"))
