"""AWS Lambda request/response pairs, replayed in order against a real `lrun serve`.

Sources, named per case:
- ``rec:TEST KEY``: a response recorded on real AWS (LocalStack's AWS-validated snapshot file
  tests/aws/services/lambda_/test_lambda_api.snapshot.json, test TEST, snapshot key KEY), with
  its placeholders put back: account 111111111111 is lrun's 000000000000, ``<region>`` is
  us-east-1, resource names are this table's.
- ``model:OPERATION``: botocore's service model (status code, the member's pattern quoted in
  the message) with the message form AWS uses (recorded cases above show it).
- ``docs:PAGE``: AWS's API reference or CLI documentation example.
- ``assumed:WHY``: nothing recorded for Lambda; what lrun sends and why.

``ANY`` stands for a volatile value (RevisionId, LastModified); only its presence is compared.
Bodies are compared whole: a missing or extra member fails. A ``json`` marker on a field means the
value is a JSON document in a string, compared parsed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from dataclasses import dataclass, field
from typing import Any

from orchestrator.api.lambda_model import OPERATIONS
from orchestrator.api.validation import enum_order

ANY = object()
ACCOUNT = "000000000000"
FN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function"
USER = "User"
EIC = "/2019-09-25/functions/{}/event-invoke-config"
TAGS = "/2017-03-31/tags/"
POLICY = "/2015-03-31/functions/{}/policy"


def pattern(operation: str, *member: str) -> str:
    shape: Any = OPERATIONS[operation]
    for name in member:
        shape = shape["members"][name]
    return str(shape["pattern"])


@dataclass(frozen=True)
class Case:
    source: str
    method: str
    path: str
    status: int
    error: str | None = None  # x-amzn-ErrorType, and the error code boto reads from it
    response: Any = None  # the JSON body (None: no body)
    body: Any = None
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # a body that is not JSON, compared as bytes
    json_fields: tuple[str, ...] = ()


def not_found(message: str) -> dict[str, str]:
    return {"Type": USER, "Message": message}


def invalid(message: str) -> dict[str, str]:
    return {"Type": USER, "message": message}


def validation(message: str) -> dict[str, str]:
    return {"message": f"1 validation error detected: {message}"}


OTHER_REGION = "Functions from 'ap-southeast-1' are not reachable in this region ('us-east-1')"
WRONG_REGION = "arn:aws:lambda:ap-southeast-1:000000000000:function:echo"
NO_EIC = "The function {} doesn't have an EventInvokeConfig"
QUALIFIED_CONCURRENCY = (
    "This operation is permitted on Lambda functions only. Aliases and versions do not support "
    "this operation. Please specify either a function name or an unqualified function ARN."
)
S3_STATEMENT = {
    "Sid": "s3",
    "Effect": "Allow",
    "Principal": {"Service": "s3.amazonaws.com"},
    "Action": "lambda:InvokeFunction",
    "Resource": f"{FN}:echo",
    "Condition": {"ArnLike": {"AWS:SourceArn": "arn:aws:s3:::my-bucket"}},
}
URL_STATEMENT = {
    "Sid": "urlPermission",
    "Effect": "Allow",
    "Principal": "*",
    "Action": "lambda:InvokeFunctionUrl",
    "Resource": f"{FN}:echo",
    "Condition": {
        "StringEquals": {
            "AWS:SourceAccount": ACCOUNT,
            "lambda:FunctionUrlAuthType": "NONE",
            "aws:PrincipalOrgID": "o-1234567890",
        },
        "ArnLike": {"AWS:SourceArn": "arn:aws:s3:::my-bucket"},
    },
}
ROLE = f"arn:aws:iam::{ACCOUNT}:role/lambda-role"


def _probe_zip() -> str:
    """A deployment package, the same bytes every time (a fixed date)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("probe.py", date_time=(2024, 1, 1, 0, 0, 0))
        archive.writestr(info, "def count(event, context):\n    return 1\n")
    return base64.b64encode(buffer.getvalue()).decode()


PROBE_ZIP = _probe_zip()
# What CreateFunction answers for "wired" (recorded: test_lambda_zip_file_to_image), less what
# each case sets.
CREATED = {
    "Architectures": ["x86_64"],
    "CodeSha256": ANY,
    "CodeSize": ANY,
    "EphemeralStorage": {"Size": 512},
    "FunctionArn": f"{FN}:wired",
    "FunctionName": "wired",
    "Handler": "probe.count",
    "LastModified": ANY,
    "LoggingConfig": {"LogFormat": "Text", "LogGroup": "/aws/lambda/wired"},
    "PackageType": "Zip",
    "RevisionId": ANY,
    "Role": ROLE,
    "Runtime": "python3.13",
    "RuntimeVersionConfig": {"RuntimeVersionArn": ANY},
    "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
    "State": "Pending",
    "StateReason": "The function is being created.",
    "StateReasonCode": "Creating",
    "TracingConfig": {"Mode": "PassThrough"},
    "Version": "$LATEST",
}
# The configuration of "wired" after test_function_lifecycle's update (below), as
# UpdateFunctionConfiguration answers it.
UPDATED = {
    **{k: v for k, v in CREATED.items() if not k.startswith("StateReason")},
    "Description": "Changed-Description",
    "Environment": {"Variables": {"ENV_A": "a"}},
    "MemorySize": 512,
    "Timeout": 10,
    "State": "Active",
    "LastUpdateStatus": "InProgress",
    "LastUpdateStatusReason": "The function is being created.",
    "LastUpdateStatusReasonCode": "Creating",
}
URL = "/2021-10-31/functions/{}/url"
URLS = "/2021-10-31/functions/{}/urls"
NO_FUNCTION = "Function does not exist"
NO_RESOURCE = "The resource you requested does not exist."
URL_QUALIFIER = pattern("CreateFunctionUrlConfig", "Qualifier")
STALE = (
    "The Revision Id provided does not match the latest Revision Id. Call the GetPolicy API to "
    "retrieve the latest Revision Id"
)

CASES: list[Case] = [
    # Unknown operations
    Case(
        "assumed:AWS's front end answers an unknown operation 404 UnknownOperationException with "
        "the bare element as body (recorded for SQS: LocalStack's AWS-validated "
        "test_get_without_query_returns_unknown_operation); not recorded for Lambda",
        "GET",
        "/2015-03-31/functions/echo/no-such-thing",
        404,
        "UnknownOperationException",
        raw=b"<UnknownOperationException/>",
    ),
    # A function's configuration, member for member
    Case(
        "rec:test_function_lifecycle get_function_response (Configuration)",
        "GET",
        "/2015-03-31/functions/echo/configuration",
        200,
        response={
            "Architectures": ["x86_64"],
            "CodeSha256": ANY,
            "CodeSize": ANY,
            "Description": "",
            "Environment": {"Variables": {}},
            "EphemeralStorage": {"Size": 512},
            "FunctionArn": f"{FN}:echo",
            "FunctionName": "echo",
            "Handler": "probe.count",
            "LastModified": ANY,
            "LastUpdateStatus": "Successful",
            "LoggingConfig": {"LogFormat": "Text", "LogGroup": "/aws/lambda/echo"},
            "MemorySize": 128,
            "PackageType": "Zip",
            "RevisionId": ANY,
            "Role": ANY,
            "Runtime": "python3.13",
            "RuntimeVersionConfig": {"RuntimeVersionArn": ANY},
            "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
            "State": "Active",
            "Timeout": 3,
            "TracingConfig": {"Mode": "PassThrough"},
            "Version": "$LATEST",
        },
    ),
    # Functions that do not exist, per operation
    Case(
        "rec:test_ops_on_nonexisting_fn[get_function] not_found_exception",
        "GET",
        "/2015-03-31/functions/nope",
        404,
        "ResourceNotFoundException",
        not_found(f"Function not found: {FN}:nope"),
    ),
    Case(
        "rec:test_ops_on_nonexisting_fn[get_function_configuration] not_found_exception",
        "GET",
        "/2015-03-31/functions/nope/configuration",
        404,
        "ResourceNotFoundException",
        not_found(f"Function not found: {FN}:nope"),
    ),
    Case(
        "rec:test_ops_on_nonexisting_fn[get_function_code_signing_config] not_found_exception",
        "GET",
        "/2020-06-30/functions/nope/code-signing-config",
        404,
        "ResourceNotFoundException",
        not_found(f"Function not found: {FN}:nope"),
    ),
    Case(
        "rec:test_ops_on_nonexisting_fn[get_function_concurrency] not_found_exception",
        "GET",
        "/2019-09-30/functions/nope/concurrency",
        404,
        "ResourceNotFoundException",
        not_found(f"Function not found: {FN}:nope"),
    ),
    Case(
        "rec:test_ops_on_nonexisting_fn[get_function_event_invoke_config] not_found_exception",
        "GET",
        EIC.format("nope"),
        404,
        "ResourceNotFoundException",
        not_found(NO_EIC.format(f"{FN}:nope:$LATEST")),
    ),
    Case(
        "rec:test_function_name_and_qualifier_validation[function_name_too_long-invoke]",
        "POST",
        "/2015-03-31/functions/nope/invocations",
        404,
        "ResourceNotFoundException",
        not_found(f"Function not found: {FN}:nope:$LATEST"),
        body={},
    ),
    Case(
        "rec:test_function_name_and_qualifier_validation[incomplete_arn-get_function]",
        "GET",
        f"/2015-03-31/functions/{FN}",
        404,
        "ResourceNotFoundException",
        not_found(f"Function not found: {FN}:function"),
    ),
    Case(
        "rec:test_function_name_and_qualifier_validation[lowercase_latest_qualifier-get_function]",
        "GET",
        "/2015-03-31/functions/echo",
        404,
        "ResourceNotFoundException",
        not_found(f"Function not found: {FN}:echo:$latest"),
        query={"Qualifier": "$latest"},
    ),
    Case(
        "rec:test_function_name_and_qualifier_validation"
        "[latest_version_with_additional_qualifier-get_function]",
        "GET",
        f"/2015-03-31/functions/{FN}:echo:$LATEST",
        400,
        "InvalidParameterValueException",
        invalid(
            "The derived qualifier from the function name does not match the specified qualifier."
        ),
        query={"Qualifier": "1"},
    ),
    Case(
        "rec:test_invalid_invoke invoke_function_name_pattern_exc (pattern: model:Invoke)",
        "POST",
        "/2015-03-31/functions/arn:aws:lambda:us-east-1:123400000000@function:myfn/invocations",
        400,
        "ValidationException",
        validation(
            "Value 'arn:aws:lambda:us-east-1:123400000000@function:myfn' at 'functionName' failed "
            "to satisfy constraint: Member must satisfy regular expression pattern: "
            + pattern("Invoke", "FunctionName")
        ),
        body={},
    ),
    # Region and account of ARNs
    *(
        Case(
            f"rec:test_get_function_wrong_region[{operation}] wrong_region_exception",
            method,
            path.format(WRONG_REGION),
            404,
            "ResourceNotFoundException",
            not_found(OTHER_REGION),
            body={} if method == "POST" else None,
        )
        for operation, method, path in (
            ("get_function", "GET", "/2015-03-31/functions/{}"),
            ("get_function_configuration", "GET", "/2015-03-31/functions/{}/configuration"),
            (
                "get_function_code_signing_config",
                "GET",
                "/2020-06-30/functions/{}/code-signing-config",
            ),
            ("get_function_event_invoke_config", "GET", EIC),
            ("get_function_concurrency", "GET", "/2019-09-30/functions/{}/concurrency"),
            ("invoke", "POST", "/2015-03-31/functions/{}/invocations"),
        )
    ),
    Case(
        "assumed:IAM's refusal of a caller with no permission on another account's function "
        "(AccessDeniedException, 403); lrun has one account",
        "GET",
        "/2015-03-31/functions/123456789012:function:echo",
        403,
        "AccessDeniedException",
        {
            "Type": USER,
            "Message": "User: arn:aws:iam::000000000000:root is not authorized to perform: "
            "lambda:GetFunction on resource: arn:aws:lambda:us-east-1:123456789012:function:echo "
            "because no resource-based policy allows the lambda:GetFunction action",
        },
    ),
    # Reserved concurrency
    Case(
        "rec:test_function_concurrency_exceptions "
        "put_function_concurrency_with_function_name_doesnotexist",
        "PUT",
        "/2017-10-31/functions/doesnotexist/concurrency",
        404,
        "ResourceNotFoundException",
        not_found(f"Function not found: {FN}:doesnotexist:$LATEST"),
        body={"ReservedConcurrentExecutions": 1},
    ),
    Case(
        "rec:test_function_concurrency_exceptions put_function_concurrency_with_qualified_arn",
        "PUT",
        f"/2017-10-31/functions/{FN}:echo:$LATEST/concurrency",
        400,
        "InvalidParameterValueException",
        invalid(QUALIFIED_CONCURRENCY),
        body={"ReservedConcurrentExecutions": 1},
    ),
    Case(
        "rec:test_function_concurrency_limits put_function_concurrency_account_limit_exceeded "
        "(lrun's minimum unreserved is 0, AWS's 100)",
        "PUT",
        "/2017-10-31/functions/echo/concurrency",
        400,
        "InvalidParameterValueException",
        {
            "message": "Specified ReservedConcurrentExecutions for function decreases account's "
            "UnreservedConcurrentExecution below its minimum value of [0]."
        },
        body={"ReservedConcurrentExecutions": 100000},
    ),
    Case(
        "rec:test_function_concurrency get_function_concurrency_after_delete",
        "GET",
        "/2019-09-30/functions/echo/concurrency",
        200,
        response={},
    ),
    # Provisioned concurrency
    Case(
        "rec:test_provisioned_concurrency_exceptions get_provisioned_functionname_doesnotexist",
        "GET",
        "/2019-09-30/functions/doesnotexist/provisioned-concurrency",
        404,
        "ResourceNotFoundException",
        not_found(f"Cannot find alias arn: {FN}:doesnotexist:noalias"),
        query={"Qualifier": "noalias"},
    ),
    Case(
        "rec:test_provisioned_concurrency_exceptions get_provisioned_qualifier_doesnotexist",
        "GET",
        "/2019-09-30/functions/echo/provisioned-concurrency",
        404,
        "ResourceNotFoundException",
        not_found(f"Cannot find alias arn: {FN}:echo:noalias"),
        query={"Qualifier": "noalias"},
    ),
    Case(
        "rec:test_provisioned_concurrency_exceptions (provisionedConcurrentExecutions 0)",
        "PUT",
        "/2019-09-30/functions/echo/provisioned-concurrency",
        400,
        "ValidationException",
        validation(
            "Value '0' at 'provisionedConcurrentExecutions' failed to satisfy constraint: Member "
            "must have value greater than or equal to 1"
        ),
        body={"ProvisionedConcurrentExecutions": 0},
        query={"Qualifier": "1"},
    ),
    # Asynchronous invocation settings
    Case(
        "rec:test_lambda_eventinvokeconfig_exceptions put_functionname_name_notfound",
        "PUT",
        EIC.format("doesnotexist"),
        404,
        "ResourceNotFoundException",
        not_found("The function doesn't exist."),
        body={"MaximumRetryAttempts": 1},
    ),
    Case(
        "rec:test_lambda_eventinvokeconfig_exceptions put_functionname_nootherargs",
        "PUT",
        EIC.format("echo"),
        400,
        "InvalidParameterValueException",
        invalid("You must specify at least one of error handling or destination setting."),
        body={},
    ),
    Case(
        "rec:test_lambda_eventinvokeconfig_exceptions put_destination_recursive",
        "PUT",
        EIC.format("echo"),
        400,
        "InvalidParameterValueException",
        invalid("You can't specify the function as a destination for itself."),
        body={"DestinationConfig": {"OnSuccess": {"Destination": f"{FN}:echo"}}},
    ),
    Case(
        "rec:test_lambda_eventinvokeconfig_exceptions put_destination_lambda_doesntexist",
        "PUT",
        EIC.format("echo"),
        400,
        "InvalidParameterValueException",
        invalid(f"The destination ARN {FN}:doesnotexist is invalid."),
        body={"DestinationConfig": {"OnSuccess": {"Destination": f"{FN}:doesnotexist"}}},
    ),
    Case(
        "rec:test_lambda_eventinvokeconfig_exceptions put_destination_invalid_arn_pattern",
        "PUT",
        EIC.format("echo"),
        400,
        "ValidationException",
        validation(
            f"Value 'arn:aws:_-/!lambda:us-east-1:{ACCOUNT}:function:echo' at "
            "'destinationConfig.onFailure.destination' failed to satisfy constraint: Member must "
            "satisfy regular expression pattern: "
            + pattern(
                "PutFunctionEventInvokeConfig",
                "DestinationConfig",
                "OnFailure",
                "Destination",
            )
        ),
        body={
            "DestinationConfig": {
                "OnFailure": {
                    "Destination": f"arn:aws:_-/!lambda:us-east-1:{ACCOUNT}:function:echo"
                }
            }
        },
    ),
    Case(
        "rec:test_lambda_eventinvokeconfig_exceptions "
        "update_eventinvokeconfig_config_doesnotexist_without_qualifier",
        "POST",
        EIC.format("echo"),
        404,
        "ResourceNotFoundException",
        not_found(NO_EIC.format(f"{FN}:echo:$LATEST")),
        body={"MaximumRetryAttempts": 1},
    ),
    Case(
        "rec:test_lambda_eventinvokeconfig_exceptions "
        "update_eventinvokeconfig_function_doesnotexist",
        "POST",
        EIC.format("doesnotexist"),
        404,
        "ResourceNotFoundException",
        not_found("The function doesn't exist."),
        body={"MaximumRetryAttempts": 1},
    ),
    Case(
        "rec:test_lambda_eventinvokeconfig_exceptions put_destination_latest",
        "PUT",
        EIC.format("echo"),
        200,
        response={
            "DestinationConfig": {"OnFailure": {}, "OnSuccess": {}},
            "FunctionArn": f"{FN}:echo:$LATEST",
            "LastModified": ANY,
            "MaximumRetryAttempts": 1,
        },
        body={"MaximumRetryAttempts": 1},
    ),
    Case(
        "rec:test_lambda_eventinvokeconfig_exceptions put_shorthand_qualifier_mismatch_1",
        "PUT",
        EIC.format("echo:1"),
        400,
        "InvalidParameterValueException",
        invalid(
            "The derived qualifier from the function name does not match the specified qualifier."
        ),
        body={"MaximumRetryAttempts": 1},
        query={"Qualifier": "$LATEST"},
    ),
    Case(
        "rec:test_lambda_eventinvokeconfig_exceptions list_function_doesnotexist",
        "GET",
        EIC.format("doesnotexist") + "/list",
        404,
        "ResourceNotFoundException",
        not_found("The function doesn't exist."),
    ),
    Case(
        "rec:test_lambda_eventinvokeconfig_exceptions delete_function_doesnotexist",
        "DELETE",
        EIC.format("doesnotexist"),
        404,
        "ResourceNotFoundException",
        not_found(NO_EIC.format(f"{FN}:doesnotexist:$LATEST")),
    ),
    Case(
        "rec:test_lambda_eventinvokeconfig_exceptions delete_latest",
        "DELETE",
        EIC.format("echo"),
        204,
    ),
    # Tags
    Case(
        "rec:test_tag_exceptions[lambda_function] tag_lambda_doesnotexist",
        "POST",
        f"{TAGS}{FN}:doesnotexist",
        404,
        "ResourceNotFoundException",
        not_found(f"Function not found: {FN}:doesnotexist"),
        body={"Tags": {"A": "a"}},
    ),
    Case(
        "rec:test_tag_exceptions[lambda_function] tag_lambda_qualifier_doesnotexist",
        "POST",
        f"{TAGS}{FN}:echo:doesnotexist",
        400,
        "InvalidParameterValueException",
        invalid(
            "Tags on function aliases and versions are not supported. Please specify a function "
            "ARN."
        ),
        body={"Tags": {"A": "a"}},
    ),
    Case(
        "rec:test_tag_exceptions[lambda_function] tag_lambda_invalidarn (pattern: "
        "model:TagResource)",
        "POST",
        f"{TAGS}arn:aws:something",
        400,
        "ValidationException",
        validation(
            "Value 'arn:aws:something' at 'resource' failed to satisfy constraint: Member must "
            "satisfy regular expression pattern: " + pattern("TagResource", "Resource")
        ),
        body={"Tags": {"A": "a"}},
    ),
    Case(
        "rec:test_tag_exceptions[lambda_function] list_tag_lambda_empty",
        "GET",
        f"{TAGS}{FN}:echo",
        200,
        response={"Tags": {}},
    ),
    Case(
        "rec:test_tag_exceptions[lambda_function] untag_empty_keys",
        "DELETE",
        f"{TAGS}{FN}:echo",
        400,
        "ValidationException",
        validation("Value null at 'tagKeys' failed to satisfy constraint: Member must not be null"),
    ),
    Case(
        "rec:test_tag_exceptions[lambda_function] tag_empty_tags",
        "POST",
        f"{TAGS}{FN}:echo",
        400,
        "InvalidParameterValueException",
        invalid("An error occurred and the request cannot be processed."),
        body={"Tags": {}},
    ),
    Case(
        "rec:test_tag_limits tag_lambda_too_many_tags",
        "POST",
        f"{TAGS}{FN}:echo",
        400,
        "InvalidParameterValueException",
        invalid("Number of tags exceeds resource tag limit."),
        body={"Tags": {f"{i}_key": f"{i}_value" for i in range(51)}},
    ),
    Case(
        "rec:test_tag_lifecycle[lambda_function] tag_single_response",
        "POST",
        f"{TAGS}{FN}:echo",
        204,
        body={"Tags": {"A": "tag-a"}},
    ),
    Case(
        "rec:test_tag_lifecycle[lambda_function] tag_multiple_response",
        "POST",
        f"{TAGS}{FN}:echo",
        204,
        body={"Tags": {"B": "tag-b", "C": "tag-c"}},
    ),
    Case(
        "rec:test_tag_lifecycle[lambda_function] tag_overlap_response",
        "POST",
        f"{TAGS}{FN}:echo",
        204,
        body={"Tags": {"C": "tag-c-newsuffix", "D": "tag-d"}},
    ),
    Case(
        "rec:test_tag_lifecycle[lambda_function] tag_overlap_response_listtags",
        "GET",
        f"{TAGS}{FN}:echo",
        200,
        response={"Tags": {"A": "tag-a", "B": "tag-b", "C": "tag-c-newsuffix", "D": "tag-d"}},
    ),
    Case(
        "rec:test_tag_lifecycle[lambda_function] untag_multiple_response",
        "DELETE",
        f"{TAGS}{FN}:echo",
        204,
        query={"tagKeys": "A"},
    ),
    Case(
        "rec:test_tag_lifecycle[lambda_function] untag_nonexisting_response",
        "DELETE",
        f"{TAGS}{FN}:echo",
        204,
        query={"tagKeys": "F"},
    ),
    Case(
        "rec:test_tag_lifecycle[lambda_function] untag_single_response_listtags",
        "GET",
        f"{TAGS}{FN}:echo",
        200,
        response={"Tags": {"B": "tag-b", "C": "tag-c-newsuffix", "D": "tag-d"}},
    ),
    Case(
        "rec:test_tag_exceptions[event_source_mapping] not_found_exception_tag",
        "GET",
        f"{TAGS}arn:aws:lambda:us-east-1:{ACCOUNT}:event-source-mapping:"
        "00000000-0000-0000-0000-000000000000",
        404,
        "ResourceNotFoundException",
        not_found(
            f"Event source mapping not found: arn:aws:lambda:us-east-1:{ACCOUNT}:"
            "event-source-mapping:00000000-0000-0000-0000-000000000000"
        ),
    ),
    # Permissions
    Case(
        "rec:test_permission_exceptions get_policy_fn_doesnotexist",
        "GET",
        POLICY.format("doesnotexist"),
        404,
        "ResourceNotFoundException",
        not_found("The resource you requested does not exist."),
    ),
    Case(
        "rec:test_permission_exceptions remove_permission_policy_doesnotexist",
        "DELETE",
        POLICY.format("echo") + "/s3",
        404,
        "ResourceNotFoundException",
        not_found("No policy is associated with the given resource."),
    ),
    Case(
        "rec:test_permission_exceptions add_permission_invalid_statement_id",
        "POST",
        POLICY.format("echo"),
        400,
        "ValidationException",
        validation(
            "Value 'example.com' at 'statementId' failed to satisfy constraint: Member must "
            "satisfy regular expression pattern: ([a-zA-Z0-9-_]+)"
        ),
        body={
            "StatementId": "example.com",
            "Action": "lambda:InvokeFunction",
            "Principal": "s3.amazonaws.com",
        },
    ),
    Case(
        "rec:test_permission_exceptions add_permission_fn_qualifier_latest",
        "POST",
        POLICY.format("echo"),
        400,
        "InvalidParameterValueException",
        invalid("We currently do not support adding policies for $LATEST."),
        body={
            "StatementId": "s3",
            "Action": "lambda:InvokeFunction",
            "Principal": "s3.amazonaws.com",
        },
        query={"Qualifier": "$LATEST"},
    ),
    Case(
        "rec:test_permission_exceptions add_permission_principal_invalid",
        "POST",
        POLICY.format("echo"),
        400,
        "InvalidParameterValueException",
        invalid("The provided principal was invalid. Please check the principal and try again."),
        body={"StatementId": "s3", "Action": "lambda:InvokeFunction", "Principal": "invalid"},
    ),
    Case(
        "rec:test_permission_exceptions add_permission_fn_doesnotexist",
        "POST",
        POLICY.format("doesnotexist"),
        404,
        "ResourceNotFoundException",
        not_found(f"Function not found: {FN}:doesnotexist"),
        body={
            "StatementId": "s3",
            "Action": "lambda:InvokeFunction",
            "Principal": "s3.amazonaws.com",
        },
    ),
    Case(
        "rec:test_permission_exceptions add_permission_fn_alias_doesnotexist",
        "POST",
        POLICY.format("echo"),
        404,
        "ResourceNotFoundException",
        not_found(f"Cannot find alias arn: {FN}:echo:alias-doesnotexist"),
        body={
            "StatementId": "s3",
            "Action": "lambda:InvokeFunction",
            "Principal": "s3.amazonaws.com",
        },
        query={"Qualifier": "alias-doesnotexist"},
    ),
    Case(
        "rec:test_permission_exceptions add_permission_fn_version_doesnotexist",
        "POST",
        POLICY.format("echo"),
        404,
        "ResourceNotFoundException",
        not_found(f"Function not found: {FN}:echo:42"),
        body={
            "StatementId": "s3",
            "Action": "lambda:InvokeFunction",
            "Principal": "s3.amazonaws.com",
        },
        query={"Qualifier": "42"},
    ),
    Case(
        "rec:test_function_revisions_permissions add_permission_revision_exception",
        "POST",
        POLICY.format("echo"),
        412,
        "PreconditionFailedException",
        invalid(STALE),
        body={
            "StatementId": "s3",
            "Action": "lambda:InvokeFunction",
            "Principal": "s3.amazonaws.com",
            "RevisionId": "wrong",
        },
    ),
    Case(
        "rec:test_add_lambda_permission_aws add_permission",
        "POST",
        POLICY.format("echo"),
        201,
        response={"Statement": S3_STATEMENT},
        body={
            "StatementId": "s3",
            "Action": "lambda:InvokeFunction",
            "Principal": "s3.amazonaws.com",
            "SourceArn": "arn:aws:s3:::my-bucket",
        },
        json_fields=("Statement",),
    ),
    Case(
        "rec:test_permission_exceptions add_permission_conflicting_statement_id",
        "POST",
        POLICY.format("echo"),
        409,
        "ResourceConflictException",
        invalid(
            "The statement id (s3) provided already exists. Please provide a new statement id, "
            "or remove the existing statement."
        ),
        body={
            "StatementId": "s3",
            "Action": "lambda:InvokeFunction",
            "Principal": "s3.amazonaws.com",
        },
    ),
    Case(
        "rec:test_add_lambda_permission_fields add_permission_optional_fields",
        "POST",
        POLICY.format("echo"),
        201,
        response={"Statement": URL_STATEMENT},
        body={
            "StatementId": "urlPermission",
            "Action": "lambda:InvokeFunctionUrl",
            "Principal": "*",
            "SourceArn": "arn:aws:s3:::my-bucket",
            "SourceAccount": ACCOUNT,
            "PrincipalOrgID": "o-1234567890",
            "FunctionUrlAuthType": "NONE",
        },
        json_fields=("Statement",),
    ),
    Case(
        "rec:test_add_lambda_permission_aws get_policy",
        "GET",
        POLICY.format("echo"),
        200,
        response={
            "Policy": {
                "Version": "2012-10-17",
                "Id": "default",
                "Statement": [S3_STATEMENT, URL_STATEMENT],
            },
            "RevisionId": ANY,
        },
        json_fields=("Policy",),
    ),
    Case(
        "rec:test_remove_multi_permissions remove_permission_exception_nonexisting_sid",
        "DELETE",
        POLICY.format("echo") + "/non-existent",
        404,
        "ResourceNotFoundException",
        not_found("Statement non-existent is not found in resource policy."),
    ),
    Case(
        "rec:test_permission_exceptions remove_permission_fn_doesnotexist",
        "DELETE",
        POLICY.format("doesnotexist") + "/s3",
        404,
        "ResourceNotFoundException",
        not_found(f"No policy found for: {FN}:doesnotexist"),
    ),
    Case(
        "rec:test_remove_multi_permissions (remove)", "DELETE", POLICY.format("echo") + "/s3", 204
    ),
    Case(
        "rec:test_remove_multi_permissions (remove)",
        "DELETE",
        POLICY.format("echo") + "/urlPermission",
        204,
    ),
    Case(
        "rec:test_remove_multi_permissions get_policy_exception_removed_all",
        "GET",
        POLICY.format("echo"),
        404,
        "ResourceNotFoundException",
        not_found("The resource you requested does not exist."),
    ),
    # Code signing
    Case(
        "rec:test_code_signing_not_found_excs get_function_csc_fnwithoutcsc",
        "GET",
        "/2020-06-30/functions/echo/code-signing-config",
        200,
        response={},
    ),
    Case(
        "rec:test_code_signing_not_found_excs put_function_csc_invalid_csc_arn",
        "PUT",
        "/2020-06-30/functions/echo/code-signing-config",
        404,
        "CodeSigningConfigNotFoundException",
        not_found(
            "The code signing configuration cannot be found. Check that the provided "
            "configuration is not deleted: arn:aws:lambda:us-east-1:000000000000:"
            "code-signing-config:csc-0000000000000000a."
        ),
        body={
            "CodeSigningConfigArn": "arn:aws:lambda:us-east-1:000000000000:"
            "code-signing-config:csc-0000000000000000a"
        },
    ),
    Case(
        "rec:test_code_signing_not_found_excs delete_function_csc_fnnotfound",
        "DELETE",
        "/2020-06-30/functions/csc-test-doesnotexist/code-signing-config",
        404,
        "ResourceNotFoundException",
        not_found(f"Function not found: {FN}:csc-test-doesnotexist"),
    ),
    # Recursion
    Case(
        "rec:test_put_function_recursion_config_default_terminate "
        "get_recursion_default_terminate_response",
        "GET",
        "/2024-08-31/functions/echo/recursion-config",
        200,
        response={"RecursiveLoop": "Terminate"},
    ),
    Case(
        "rec:test_put_function_recursion_config_invalid_value put_recursion_invalid_value_error",
        "PUT",
        "/2024-08-31/functions/echo/recursion-config",
        400,
        "ValidationException",
        validation(
            "Value 'InvalidValue' at 'recursiveLoop' failed to satisfy constraint: Member must "
            "satisfy enum value set: [Terminate, Allow]"
        ),
        body={"RecursiveLoop": "InvalidValue"},
    ),
    Case(
        "rec:test_put_function_recursion_config_allow put_recursion_config_response",
        "PUT",
        "/2024-08-31/functions/echo/recursion-config",
        200,
        response={"RecursiveLoop": "Allow"},
        body={"RecursiveLoop": "Allow"},
    ),
    Case(
        "rec:test_put_function_recursion_config_allow get_recursion_config_response",
        "GET",
        "/2024-08-31/functions/echo/recursion-config",
        200,
        response={"RecursiveLoop": "Allow"},
    ),
    # Functions created through the API (test_function_lifecycle, test_create_lambda_exceptions,
    # test_lambda_zip_file_to_image, test_ops_on_nonexisting_fn, ...)
    Case(
        "rec:test_lambda_zip_file_to_image create-image-response (a zip function, no Environment)",
        "POST",
        "/2015-03-31/functions",
        201,
        response={**CREATED, "Description": "", "MemorySize": 128, "Timeout": 3},
        body={
            "FunctionName": "wired",
            "Runtime": "python3.13",
            "Role": ROLE,
            "Handler": "probe.count",
            "Code": {"ZipFile": PROBE_ZIP},
        },
    ),
    Case(
        "assumed:AWS's wording as LocalStack's provider raises it (ResourceConflictException, "
        "409); not in the recorded snapshot",
        "POST",
        "/2015-03-31/functions",
        409,
        "ResourceConflictException",
        invalid("Function already exist: wired"),
        body={
            "FunctionName": "wired",
            "Runtime": "python3.13",
            "Role": ROLE,
            "Handler": "probe.count",
            "Code": {"ZipFile": PROBE_ZIP},
        },
    ),
    Case(
        "rec:test_lambda_zip_file_to_image get-function-config-response",
        "GET",
        "/2015-03-31/functions/wired/configuration",
        200,
        response={
            **{k: v for k, v in CREATED.items() if not k.startswith("StateReason")},
            "Description": "",
            "MemorySize": 128,
            "Timeout": 3,
            "State": "Active",
            "LastUpdateStatus": "Successful",
        },
    ),
    Case(
        "rec:test_function_lifecycle update_func_conf_response",
        "PUT",
        "/2015-03-31/functions/wired/configuration",
        200,
        response={
            **{k: v for k, v in CREATED.items() if not k.startswith("StateReason")},
            "Description": "Changed-Description",
            "Environment": {"Variables": {"ENV_A": "a"}},
            "MemorySize": 512,
            "Timeout": 10,
            "State": "Active",
            "LastUpdateStatus": "InProgress",
            "LastUpdateStatusReason": "The function is being created.",
            "LastUpdateStatusReasonCode": "Creating",
        },
        body={
            "Description": "Changed-Description",
            "MemorySize": 512,
            "Timeout": 10,
            "Environment": {"Variables": {"ENV_A": "a"}},
        },
    ),
    Case(
        "rec:test_lambda_zip_file_to_image zipfile-to-image-error",
        "PUT",
        "/2015-03-31/functions/wired/code",
        400,
        "InvalidParameterValueException",
        invalid("Please don't provide ImageUri when updating a function with packageType Zip."),
        body={"ImageUri": "000000000000.dkr.ecr.us-east-1.amazonaws.com/repo:latest"},
    ),
    Case(
        "rec:test_create_lambda_exceptions invalid_zip_exc",
        "POST",
        "/2015-03-31/functions",
        400,
        "InvalidParameterValueException",
        invalid("Could not unzip uploaded file. Please check your file, then try to upload again."),
        body={
            "FunctionName": "unzippable",
            "Runtime": "python3.13",
            "Role": ROLE,
            "Handler": "probe.count",
            "Code": {"ZipFile": "bm90IGEgemlw"},  # "not a zip"
        },
    ),
    Case(
        "rec:test_create_lambda_exceptions invalid_runtime_exc",
        "POST",
        "/2015-03-31/functions",
        400,
        "InvalidParameterValueException",
        invalid(
            "Value non-existent-runtime at 'runtime' failed to satisfy constraint: Member must "
            "satisfy enum value set: [nodejs20.x, python3.14, provided.al2023, python3.12, "
            "python3.13, nodejs24.x, nodejs22.x, java25, python3.10, python3.11, java21, ruby3.3, "
            "ruby3.4, ruby3.2, python3.8, python3.9, java17, nodejs16.x, dotnet10, dotnet8, "
            "java11, dotnet6, nodejs18.x, provided.al2, java8.al2] or be a valid ARN"
        ),
        body={
            "FunctionName": "badruntime",
            "Runtime": "non-existent-runtime",
            "Role": ROLE,
            "Handler": "probe.count",
            "Code": {"ZipFile": PROBE_ZIP},
        },
    ),
    Case(
        "rec:test_create_lambda_exceptions invalid_role_arn_exc",
        "POST",
        "/2015-03-31/functions",
        400,
        "ValidationException",
        validation(
            "Value 'r1' at 'role' failed to satisfy constraint: Member must satisfy regular "
            f"expression pattern: {pattern('CreateFunction', 'Role')}"
        ),
        body={
            "FunctionName": "badrole",
            "Runtime": "python3.13",
            "Role": "r1",
            "Handler": "probe.count",
            "Code": {"ZipFile": PROBE_ZIP},
        },
    ),
    # LoggingConfig (TestLoggingConfig, recorded 25-11-2025): merged into the current one,
    # JSON defaulting both levels to INFO, Text dropping them.
    *(
        Case(
            f"rec:TestLoggingConfig::{test} {key}",
            "PUT",
            "/2015-03-31/functions/wired/configuration",
            200,
            response={**UPDATED, "LoggingConfig": shown},
            body={"LoggingConfig": given},
        )
        for test, key, given, shown in [
            (
                "test_function_partial_advanced_logging_configuration_update[partial_config0]",
                "updated_config",
                {"LogFormat": "JSON"},
                {
                    "ApplicationLogLevel": "INFO",
                    "LogFormat": "JSON",
                    "LogGroup": "/aws/lambda/wired",
                    "SystemLogLevel": "INFO",
                },
            ),
            (
                "test_advanced_logging_configuration_format_switch",
                "updated_config_v2",
                {"LogFormat": "Text"},
                {"LogFormat": "Text", "LogGroup": "/aws/lambda/wired"},
            ),
            (
                "test_function_advanced_logging_configuration",
                "updated_config",
                {
                    "LogFormat": "JSON",
                    "ApplicationLogLevel": "INFO",
                    "SystemLogLevel": "INFO",
                    "LogGroup": "cool_lambda",
                },
                {
                    "ApplicationLogLevel": "INFO",
                    "LogFormat": "JSON",
                    "LogGroup": "cool_lambda",
                    "SystemLogLevel": "INFO",
                },
            ),
        ]
    ),
    Case(
        "assumed:LocalStack's provider raises AWS's words for levels with Text (no recording)",
        "PUT",
        "/2015-03-31/functions/wired/configuration",
        400,
        "InvalidParameterValueException",
        invalid(
            'LogLevel is not supported when LogFormat is set to "Text". Remove LogLevel from '
            'your request or change the LogFormat to "JSON" and try again.'
        ),
        body={"LoggingConfig": {"LogFormat": "Text", "ApplicationLogLevel": "DEBUG"}},
    ),
    Case(
        "rec:test_ops_with_arn_qualifier_mismatch[delete_function] match_exception",
        "DELETE",
        "/2015-03-31/functions/wired",
        400,
        "InvalidParameterValueException",
        invalid("$LATEST version cannot be deleted without deleting the function."),
        query={"Qualifier": "$LATEST"},
    ),
    Case(
        "rec:test_function_lifecycle delete_response",
        "DELETE",
        "/2015-03-31/functions/wired",
        204,
    ),
    Case(
        "rec:test_function_lifecycle delete_postdelete",
        "DELETE",
        "/2015-03-31/functions/wired",
        404,
        "ResourceNotFoundException",
        not_found(f"Function not found: {FN}:wired"),
    ),
    Case(
        "rec:test_ops_on_nonexisting_fn[delete_function] not_found_exception",
        "DELETE",
        "/2015-03-31/functions/nope",
        404,
        "ResourceNotFoundException",
        not_found(f"Function not found: {FN}:nope"),
    ),
    # Function URL configurations (tests/aws/services/lambda_/test_lambda_api.py TestLambdaUrl;
    # "rec:lambda " names LocalStack's test_lambda.snapshot.json, also recorded on AWS)
    *[
        Case(
            f"rec:test_url_config_exceptions {operation}_name_doesnotexist",
            method,
            URL.format("doesnotexist"),
            404,
            "ResourceNotFoundException",
            not_found(message),
            body=body,
        )
        for operation, method, body, message in (
            ("create_function_url_config", "POST", {"AuthType": "NONE"}, NO_FUNCTION),
            ("get_function_url_config", "GET", None, NO_RESOURCE),
            ("delete_function_url_config", "DELETE", None, NO_RESOURCE),
            ("update_function_url_config", "PUT", {"AuthType": "AWS_IAM"}, NO_FUNCTION),
        )
    ],
    Case(
        "rec:test_url_config_exceptions create_function_url_config_arn_doesnotexist",
        "POST",
        URL.format(f"{FN}:doesnotexist"),
        404,
        "ResourceNotFoundException",
        not_found(NO_FUNCTION),
        body={"AuthType": "NONE"},
    ),
    *[
        Case(
            f"rec:test_url_config_exceptions create_function_url_config_{key}",
            "POST",
            URL.format(function),
            400,
            "ValidationException",
            validation(
                f"Value '{qualifier}' at 'qualifier' failed to satisfy constraint: Member must "
                f"satisfy regular expression pattern: {URL_QUALIFIER}"
            ),
            body={"AuthType": "NONE"},
            query={"Qualifier": qualifier},
        )
        for key, function, qualifier in (
            ("name_doesnotexist_qualifier", "doesnotexist", "1"),
            ("qualifier_version", "echo", "1"),
            ("qualifier_latest", "echo", "$LATEST"),
        )
    ],
    Case(
        "rec:test_url_config_exceptions create_function_url_config_qualifier_alias_doesnotexist",
        "POST",
        URL.format("echo"),
        404,
        "ResourceNotFoundException",
        not_found(NO_FUNCTION),
        body={"AuthType": "NONE"},
        query={"Qualifier": "v1"},
    ),
    Case(
        "rec:test_url_config_exceptions get_function_url_config_qualifier_alias_doesnotexist",
        "GET",
        URL.format("echo"),
        404,
        "ResourceNotFoundException",
        not_found(NO_RESOURCE),
        query={"Qualifier": "v1"},
    ),
    Case(
        "rec:test_url_config_exceptions "
        "create_function_url_config_qualifier_alias_doesnotmatch_arn",
        "POST",
        URL.format("echo:urlalias-doesnotmatch"),
        400,
        "InvalidParameterValueException",
        invalid(
            "The derived qualifier from the function name does not match the specified qualifier."
        ),
        body={"AuthType": "NONE"},
        query={"Qualifier": "urlalias"},
    ),
    *[
        Case(
            f"rec:test_url_config_exceptions {operation}_config_doesnotexist",
            method,
            URL.format("echo"),
            404,
            "ResourceNotFoundException",
            not_found(NO_RESOURCE),
            body=body,
        )
        for operation, method, body in (
            ("get_function_url_config", "GET", None),
            ("delete_function_url_config", "DELETE", None),
            ("update_function_url_config", "PUT", {"AuthType": "AWS_IAM"}),
        )
    ],
    Case(
        "rec:test_url_config_list_paging list_function_notfound",
        "GET",
        URLS.format("doesnotexist"),
        404,
        "ResourceNotFoundException",
        not_found(NO_FUNCTION),
    ),
    Case(
        "rec:test_url_config_list_paging list_all_empty",
        "GET",
        URLS.format("echo"),
        200,
        response={"FunctionUrlConfigs": []},
    ),
    Case(
        "rec:test_url_config_lifecycle url_creation",
        "POST",
        URL.format("echo"),
        201,
        response={
            "AuthType": "NONE",
            "CreationTime": ANY,
            "FunctionArn": f"{FN}:echo",
            "FunctionUrl": ANY,
        },
        body={"AuthType": "NONE"},
    ),
    Case(
        "rec:test_url_config_lifecycle failed_duplication",
        "POST",
        URL.format("echo"),
        409,
        "ResourceConflictException",
        invalid(
            f"Failed to create function url config for [functionArn = {FN}:echo]. Error message:  "
            "FunctionUrlConfig exists for this Lambda function"
        ),
        body={"AuthType": "NONE"},
    ),
    Case(
        "rec:test_url_config_lifecycle get_url_config",
        "GET",
        URL.format("echo"),
        200,
        response={
            "AuthType": "NONE",
            "CreationTime": ANY,
            "FunctionArn": f"{FN}:echo",
            "FunctionUrl": ANY,
            "InvokeMode": "BUFFERED",
            "LastModifiedTime": ANY,
        },
    ),
    Case(
        "rec:test_url_config_lifecycle updated_url_config",
        "PUT",
        URL.format("echo"),
        200,
        response={
            "AuthType": "AWS_IAM",
            "CreationTime": ANY,
            "FunctionArn": f"{FN}:echo",
            "FunctionUrl": ANY,
            "LastModifiedTime": ANY,
        },
        body={"AuthType": "AWS_IAM"},
    ),
    Case(
        "rec:test_url_config_list_paging list_all (one configuration)",
        "GET",
        URLS.format("echo"),
        200,
        response={
            "FunctionUrlConfigs": [
                {
                    "AuthType": "AWS_IAM",
                    "CreationTime": ANY,
                    "FunctionArn": f"{FN}:echo",
                    "FunctionUrl": ANY,
                    "InvokeMode": "BUFFERED",
                    "LastModifiedTime": ANY,
                }
            ]
        },
    ),
    Case("docs:API_DeleteFunctionUrlConfig (204, no body)", "DELETE", URL.format("echo"), 204),
    Case(
        "rec:test_url_config_lifecycle failed_getter",
        "GET",
        URL.format("echo"),
        404,
        "ResourceNotFoundException",
        not_found(NO_RESOURCE),
    ),
    Case(
        "rec:lambda test_lambda_url_invalid_invoke_mode invoke_function_invalid_invoke_type",
        "POST",
        URL.format("other"),
        400,
        "ValidationException",
        validation(
            "Value 'UNKNOWN' at 'invokeMode' failed to satisfy constraint: Member must satisfy "
            "enum value set: [RESPONSE_STREAM, BUFFERED]"
        ),
        body={"AuthType": "NONE", "InvokeMode": "UNKNOWN"},
    ),
    Case(
        "rec:lambda test_lambda_update_function_url_config create_lambda_url_config",
        "POST",
        URL.format("other"),
        201,
        response={
            "AuthType": "NONE",
            "CreationTime": ANY,
            "FunctionArn": f"{FN}:other",
            "FunctionUrl": ANY,
            "InvokeMode": "BUFFERED",
        },
        body={"AuthType": "NONE", "InvokeMode": "BUFFERED"},
    ),
    *[
        Case(
            f"rec:lambda test_lambda_update_function_url_config {key}",
            method,
            URL.format("other"),
            200,
            response={
                "AuthType": "NONE",
                "CreationTime": ANY,
                "FunctionArn": f"{FN}:other",
                "FunctionUrl": ANY,
                "InvokeMode": "RESPONSE_STREAM",
                "LastModifiedTime": ANY,
            },
            body=body,
        )
        for key, method, body in (
            ("modify_lambda_url_config", "PUT", {"InvokeMode": "RESPONSE_STREAM"}),
            ("get_url_config_2", "GET", None),
            ("modify_lambda_url_config_none", "PUT", {}),
            ("get_url_config_3", "GET", None),
        )
    ],
]

# Layers (rec: LocalStack's TestLambdaLayer snapshots: test_layer_exceptions,
# test_layer_policy_exceptions, test_layer_function_exceptions, test_layer_lifecycle,
# test_layer_function_quota_exception)

LAYER = f"arn:aws:lambda:us-east-1:{ACCOUNT}:layer"
LAYERS = "/2018-10-31/layers"
LAYER_CONTENT = {"CodeSha256": ANY, "CodeSize": ANY, "Location": ANY}
LAYER_POLICY = LAYERS + "/wired-layer/versions/{}/policy"
GRANT = {"Action": "lambda:GetLayerVersion", "Principal": "*"}
STALE_LAYER = (
    "The Revision Id provided does not match the latest Revision Id. Call the GetLayerPolicy API "
    "to retrieve the latest Revision Id"
)
CREATABLE = (
    "nodejs20.x, python3.14, provided.al2023, python3.12, python3.13, nodejs24.x, nodejs22.x, "
    "java25, python3.10, python3.11, java21, ruby3.3, ruby3.4, ruby3.2, python3.8, python3.9, "
    "java17, nodejs16.x, dotnet10, dotnet8, java11, dotnet6, nodejs18.x, provided.al2, java8.al2"
)
LAYER_ARN_PATTERN = OPERATIONS["UpdateFunctionConfiguration"]["members"]["Layers"]["member"][
    "pattern"
]
LAYERED = {
    **{k: v for k, v in CREATED.items() if not k.startswith("StateReason")},
    "FunctionArn": f"{FN}:layered",
    "FunctionName": "layered",
    "LoggingConfig": {"LogFormat": "Text", "LogGroup": "/aws/lambda/layered"},
    "Description": "",
    "MemorySize": 128,
    "Timeout": 3,
    "State": "Active",
    "LastUpdateStatus": "Successful",
}
IN_PROGRESS = {
    "LastUpdateStatus": "InProgress",
    "LastUpdateStatusReason": "The function is being created.",
    "LastUpdateStatusReasonCode": "Creating",
}


def published(name: str, version: int, **members: Any) -> dict[str, Any]:
    """A PublishLayerVersion or GetLayerVersion answer."""
    return {
        "Content": LAYER_CONTENT,
        "CreatedDate": ANY,
        "Description": "",
        "LayerArn": f"{LAYER}:{name}",
        "LayerVersionArn": f"{LAYER}:{name}:{version}",
        "Version": version,
        **members,
    }


def publish(name: str, **members: Any) -> dict[str, Any]:
    return {"Content": {"ZipFile": PROBE_ZIP}, **members}


def layer_not_found(name: str, version: int) -> dict[str, str]:
    return not_found(f"Layer version {LAYER}:{name}:{version} does not exist.")


PYTHON_X86 = {"CompatibleRuntimes": ["python3.12"], "CompatibleArchitectures": ["x86_64"]}
NO_RESOURCE = "The resource you requested does not exist."

LAYER_CASES: list[Case] = [
    Case(
        "rec:test_layer_exceptions publish_result",
        "POST",
        f"{LAYERS}/wired-layer/versions",
        201,
        response=published("wired-layer", 1, **PYTHON_X86),
        body=publish("wired-layer", **PYTHON_X86),
    ),
    Case(
        "model:ListLayers (the message's form: rec:test_layer_exceptions "
        "list_layers_exc_compatibleruntime_invalid; AWS's enum then held runtimes botocore's "
        "model does not, so the set is the model's, in AWS's HashSet order)",
        "GET",
        LAYERS,
        400,
        "ValidationException",
        validation(
            "Value 'runtimedoesnotexist' at 'compatibleRuntime' failed to satisfy constraint: "
            "Member must satisfy enum value set: ["
            + ", ".join(
                enum_order(OPERATIONS["ListLayers"]["members"]["CompatibleRuntime"]["enum"])
            )
            + "]"
        ),
        query={"CompatibleRuntime": "runtimedoesnotexist"},
    ),
    Case(
        "rec:test_layer_exceptions list_layers_exc_compatiblearchitecture_invalid",
        "GET",
        LAYERS,
        400,
        "ValidationException",
        validation(
            "Value 'archdoesnotexist' at 'compatibleArchitecture' failed to satisfy constraint: "
            "Member must satisfy enum value set: [x86_64, arm64]"
        ),
        query={"CompatibleArchitecture": "archdoesnotexist"},
    ),
    Case(
        "rec:test_layer_exceptions list_nonexistent_layer",
        "GET",
        f"{LAYERS}/layerdoesnotexist/versions",
        200,
        response={"LayerVersions": []},
    ),
    Case(
        "rec:test_layer_exceptions get_layer_version_exc_layer_doesnotexist",
        "GET",
        f"{LAYERS}/layerdoesnotexist/versions/1",
        404,
        "ResourceNotFoundException",
        not_found(NO_RESOURCE),
    ),
    Case(
        "rec:test_layer_exceptions get_layer_version_exc_layer_version_doesnotexist_negative",
        "GET",
        f"{LAYERS}/wired-layer/versions/-1",
        400,
        "InvalidParameterValueException",
        invalid("Layer Version Cannot be less than 1"),
    ),
    Case(
        "rec:test_layer_exceptions get_layer_version_exc_layer_version_doesnotexist_zero",
        "GET",
        f"{LAYERS}/wired-layer/versions/0",
        400,
        "InvalidParameterValueException",
        invalid("Layer Version Cannot be less than 1"),
    ),
    Case(
        "rec:test_layer_exceptions get_layer_version_exc_layer_version_doesnotexist_2",
        "GET",
        f"{LAYERS}/wired-layer/versions/2",
        404,
        "ResourceNotFoundException",
        not_found(NO_RESOURCE),
    ),
    Case(
        "model:GetLayerVersionByArn (rec:test_layer_exceptions "
        "get_layer_version_by_arn_exc_invalidarn, with the model's pattern)",
        "GET",
        LAYERS,
        400,
        "ValidationException",
        validation(
            f"Value '{LAYER}:wired-layer' at 'arn' failed to satisfy constraint: Member must "
            f"satisfy regular expression pattern: {pattern('GetLayerVersionByArn', 'Arn')}"
        ),
        query={"find": "LayerVersion", "Arn": f"{LAYER}:wired-layer"},
    ),
    Case(
        "rec:test_layer_exceptions get_layer_version_by_arn_exc_nonexistentversion",
        "GET",
        LAYERS,
        404,
        "ResourceNotFoundException",
        not_found(NO_RESOURCE),
        query={"find": "LayerVersion", "Arn": f"{LAYER}:wired-layer:2"},
    ),
    Case(
        "rec:test_layer_lifecycle get_layer_by_arn_version",
        "GET",
        LAYERS,
        200,
        response=published("wired-layer", 1, **PYTHON_X86),
        query={"find": "LayerVersion", "Arn": f"{LAYER}:wired-layer:1"},
    ),
    Case(
        "rec:test_layer_exceptions delete_nonexistent_response",
        "DELETE",
        f"{LAYERS}/layerdoesnotexist/versions/1",
        204,
    ),
    Case(
        "rec:test_layer_exceptions delete_nonexistent_version_response",
        "DELETE",
        f"{LAYERS}/wired-layer/versions/2",
        204,
    ),
    Case(
        "rec:test_layer_exceptions delete_layer_version_exc_layerversion_invalid_version",
        "DELETE",
        f"{LAYERS}/wired-layer/versions/-1",
        400,
        "InvalidParameterValueException",
        invalid("Layer Version Cannot be less than 1"),
    ),
    Case(
        "rec:test_layer_exceptions publish_empty_result",
        "POST",
        f"{LAYERS}/wired-empty/versions",
        201,
        response=published("wired-empty", 1, CompatibleRuntimes=[], CompatibleArchitectures=[]),
        body=publish("wired-empty", CompatibleRuntimes=[], CompatibleArchitectures=[]),
    ),
    Case(
        "rec:test_layer_s3_content publish_layer_result (members not given are left out)",
        "POST",
        f"{LAYERS}/wired-bare/versions",
        201,
        response=published("wired-bare", 1),
        body=publish("wired-bare"),
    ),
    Case(
        "rec:test_layer_exceptions publish_layer_version_exc_invalid_runtime_arch",
        "POST",
        f"{LAYERS}/wired-invalid/versions",
        400,
        "ValidationException",
        {
            "message": "2 validation errors detected: Value '[invalidruntime]' at "
            "'compatibleRuntimes' failed to satisfy constraint: Member must satisfy enum value "
            f"set: [{CREATABLE}]; Value '[invalidarch]' at 'compatibleArchitectures' failed to "
            "satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value "
            "set: [x86_64, arm64], Member must not be null]"
        },
        body=publish(
            "wired-invalid",
            CompatibleRuntimes=["invalidruntime"],
            CompatibleArchitectures=["invalidarch"],
        ),
    ),
    Case(
        "rec:test_layer_exceptions publish_layer_version_exc_partially_invalid_values",
        "POST",
        f"{LAYERS}/wired-invalid/versions",
        400,
        "ValidationException",
        {
            "message": "2 validation errors detected: Value '[invalidruntime, invalidruntime2, "
            "nodejs20.x]' at 'compatibleRuntimes' failed to satisfy constraint: Member must "
            f"satisfy enum value set: [{CREATABLE}]; Value '[invalidarch, x86_64]' at "
            "'compatibleArchitectures' failed to satisfy constraint: Member must satisfy "
            "constraint: [Member must satisfy enum value set: [x86_64, arm64], Member must not "
            "be null]"
        },
        body=publish(
            "wired-invalid",
            CompatibleRuntimes=["invalidruntime", "invalidruntime2", "nodejs20.x"],
            CompatibleArchitectures=["invalidarch", "x86_64"],
        ),
    ),
    # A version's policy
    Case(
        "rec:test_layer_policy_exceptions layer_permission_nopolicy_get",
        "GET",
        LAYER_POLICY.format(1),
        404,
        "ResourceNotFoundException",
        not_found("No policy is associated with the given resource."),
    ),
    Case(
        "rec:test_layer_policy_exceptions add_layer_permission_result",
        "POST",
        LAYER_POLICY.format(1),
        201,
        response={
            "RevisionId": ANY,
            "Statement": {
                "Sid": "s1",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "lambda:GetLayerVersion",
                "Resource": f"{LAYER}:wired-layer:1",
            },
        },
        body={**GRANT, "StatementId": "s1"},
        json_fields=("Statement",),
    ),
    Case(
        "docs:aws lambda add-layer-version-permission example (an account's principal)",
        "POST",
        LAYER_POLICY.format(1),
        201,
        response={
            "RevisionId": ANY,
            "Statement": {
                "Sid": "xaccount",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
                "Action": "lambda:GetLayerVersion",
                "Resource": f"{LAYER}:wired-layer:1",
            },
        },
        body={**GRANT, "StatementId": "xaccount", "Principal": "210987654321"},
        json_fields=("Statement",),
    ),
    Case(
        "rec:test_layer_policy_exceptions layer_permission_action_invalid",
        "POST",
        LAYER_POLICY.format(1),
        400,
        "ValidationException",
        validation(
            "Value '*' at 'action' failed to satisfy constraint: Member must satisfy regular "
            "expression pattern: lambda:GetLayerVersion"
        ),
        body={**GRANT, "StatementId": "s-other", "Action": "*"},
    ),
    Case(
        "rec:test_layer_policy_exceptions layer_permission_duplicate_statement",
        "POST",
        LAYER_POLICY.format(1),
        409,
        "ResourceConflictException",
        invalid(
            "The statement id (s1) provided already exists. Please provide a new statement id, "
            "or remove the existing statement."
        ),
        body={**GRANT, "StatementId": "s1"},
    ),
    Case(
        "rec:test_layer_policy_exceptions layer_permission_wrong_revision",
        "POST",
        LAYER_POLICY.format(1),
        412,
        "PreconditionFailedException",
        invalid(STALE_LAYER),
        body={**GRANT, "StatementId": "s2"},
        query={"RevisionId": "wrong"},
    ),
    Case(
        "rec:test_layer_policy_exceptions layer_permission_layername_doesnotexist_add",
        "POST",
        f"{LAYERS}/wired-layer-doesnotexist/versions/1/policy",
        404,
        "ResourceNotFoundException",
        layer_not_found("wired-layer-doesnotexist", 1),
        body={**GRANT, "StatementId": "s-x"},
    ),
    Case(
        "rec:test_layer_policy_exceptions layer_permission_layername_doesnotexist_get",
        "GET",
        f"{LAYERS}/wired-layer-doesnotexist/versions/1/policy",
        404,
        "ResourceNotFoundException",
        layer_not_found("wired-layer-doesnotexist", 1),
    ),
    Case(
        "rec:test_layer_policy_exceptions layer_permission_layername_doesnotexist_remove",
        "DELETE",
        f"{LAYERS}/wired-layer-doesnotexist/versions/1/policy/s1",
        404,
        "ResourceNotFoundException",
        layer_not_found("wired-layer-doesnotexist", 1),
    ),
    Case(
        "rec:test_layer_policy_exceptions layer_permission_layerversion_doesnotexist_add",
        "POST",
        LAYER_POLICY.format(2),
        404,
        "ResourceNotFoundException",
        layer_not_found("wired-layer", 2),
        body={**GRANT, "StatementId": "s-x"},
    ),
    Case(
        "rec:test_layer_policy_exceptions layer_permission_layerversion_doesnotexist_get",
        "GET",
        LAYER_POLICY.format(2),
        404,
        "ResourceNotFoundException",
        layer_not_found("wired-layer", 2),
    ),
    Case(
        "rec:test_layer_policy_exceptions layer_permission_layerversion_doesnotexist_remove",
        "DELETE",
        LAYER_POLICY.format(2) + "/s1",
        404,
        "ResourceNotFoundException",
        layer_not_found("wired-layer", 2),
    ),
    Case(
        "rec:test_layer_policy_exceptions layer_permission_statementid_doesnotexist_remove",
        "DELETE",
        LAYER_POLICY.format(1) + "/doesnotexist",
        404,
        "ResourceNotFoundException",
        not_found("Statement doesnotexist is not found in resource policy."),
    ),
    Case(
        "rec:test_layer_policy_exceptions layer_permission_wrong_revision_remove",
        "DELETE",
        LAYER_POLICY.format(1) + "/s1",
        412,
        "PreconditionFailedException",
        invalid(STALE_LAYER),
        query={"RevisionId": "wrong"},
    ),
    Case(
        "rec:test_layer_policy_lifecycle remove_s2",
        "DELETE",
        LAYER_POLICY.format(1) + "/xaccount",
        204,
    ),
    Case(
        "rec:test_layer_policy_lifecycle get_layer_version_policy_postdeletes2",
        "GET",
        LAYER_POLICY.format(1),
        200,
        response={
            "Policy": {
                "Version": "2012-10-17",
                "Id": "default",
                "Statement": [
                    {
                        "Sid": "s1",
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "lambda:GetLayerVersion",
                        "Resource": f"{LAYER}:wired-layer:1",
                    }
                ],
            },
            "RevisionId": ANY,
        },
        json_fields=("Policy",),
    ),
    # Functions that use layers
    *(
        Case(
            f"rec:test_layer_function_exceptions publish_result{suffix}",
            "POST",
            f"{LAYERS}/wired-fn-layer/versions",
            201,
            response=published(
                "wired-fn-layer", version, CompatibleRuntimes=[], CompatibleArchitectures=["x86_64"]
            ),
            body=publish(
                "wired-fn-layer", CompatibleRuntimes=[], CompatibleArchitectures=["x86_64"]
            ),
        )
        for version, suffix in ((1, ""), (2, "_2"), (3, "_3"))
    ),
    Case(
        "rec:test_lambda_zip_file_to_image create-image-response (the function layers are "
        "added to)",
        "POST",
        "/2015-03-31/functions",
        201,
        response={
            **CREATED,
            "FunctionArn": f"{FN}:layered",
            "FunctionName": "layered",
            "LoggingConfig": {"LogFormat": "Text", "LogGroup": "/aws/lambda/layered"},
            "Description": "",
            "MemorySize": 128,
            "Timeout": 3,
        },
        body={
            "FunctionName": "layered",
            "Runtime": "python3.13",
            "Role": ROLE,
            "Handler": "probe.count",
            "Code": {"ZipFile": PROBE_ZIP},
        },
    ),
    Case(
        "rec:test_layer_function_exceptions two_layer_versions_single_function_exc",
        "PUT",
        "/2015-03-31/functions/layered/configuration",
        400,
        "InvalidParameterValueException",
        invalid(
            "Two different versions of the same layer are not allowed to be referenced in the "
            f"same function. {LAYER}:wired-fn-layer:1 and {LAYER}:wired-fn-layer:2 are versions "
            "of the same layer."
        ),
        body={"Layers": [f"{LAYER}:wired-fn-layer:1", f"{LAYER}:wired-fn-layer:2"]},
    ),
    Case(
        "rec:test_layer_function_exceptions three_layer_versions_single_function_exc",
        "PUT",
        "/2015-03-31/functions/layered/configuration",
        400,
        "InvalidParameterValueException",
        invalid(
            "Two different versions of the same layer are not allowed to be referenced in the "
            f"same function. {LAYER}:wired-fn-layer:1 and {LAYER}:wired-fn-layer:2 are versions "
            "of the same layer."
        ),
        body={"Layers": [f"{LAYER}:wired-fn-layer:{n}" for n in (1, 2, 3)]},
    ),
    Case(
        "rec:test_layer_function_exceptions two_identical_layer_versions_single_function_exc",
        "PUT",
        "/2015-03-31/functions/layered/configuration",
        400,
        "InvalidParameterValueException",
        invalid(
            "Two different versions of the same layer are not allowed to be referenced in the "
            f"same function. {LAYER}:wired-fn-layer:1 and {LAYER}:wired-fn-layer:1 are versions "
            "of the same layer."
        ),
        body={"Layers": [f"{LAYER}:wired-fn-layer:1", f"{LAYER}:wired-fn-layer:1"]},
    ),
    Case(
        "rec:test_layer_function_exceptions add_nonexistent_layer_exc",
        "PUT",
        "/2015-03-31/functions/layered/configuration",
        400,
        "InvalidParameterValueException",
        invalid(f"Layer version {LAYER}:doesnotexist:1 does not exist."),
        body={"Layers": [f"{LAYER}:doesnotexist:1"]},
    ),
    Case(
        "rec:test_layer_function_exceptions add_nonexistent_layer_version_exc",
        "PUT",
        "/2015-03-31/functions/layered/configuration",
        400,
        "InvalidParameterValueException",
        invalid(f"Layer version {LAYER}:wired-fn-layer:9 does not exist."),
        body={"Layers": [f"{LAYER}:wired-fn-layer:9"]},
    ),
    Case(
        "model:UpdateFunctionConfiguration (rec:test_layer_function_exceptions "
        "add_layer_arn_without_version_exc, with the model's pattern)",
        "PUT",
        "/2015-03-31/functions/layered/configuration",
        400,
        "ValidationException",
        validation(
            f"Value '[{LAYER}:wired-fn-layer]' at 'layers' failed to satisfy constraint: Member "
            "must satisfy constraint: [Member must have length less than or equal to 2048, "
            "Member must have length greater than or equal to 1, Member must satisfy regular "
            f"expression pattern: {LAYER_ARN_PATTERN}, Member must not be null]"
        ),
        body={"Layers": [f"{LAYER}:wired-fn-layer"]},
    ),
    Case(
        "rec:test_layer_function_exceptions create_function_with_layer_in_different_region",
        "POST",
        "/2015-03-31/functions",
        400,
        "InvalidParameterValueException",
        invalid(
            "Layers are not in the same region as the function. Layers are expected to be in "
            "region us-east-1."
        ),
        body={
            "FunctionName": "elsewhere",
            "Runtime": "python3.13",
            "Role": ROLE,
            "Handler": "probe.count",
            "Code": {"ZipFile": PROBE_ZIP},
            "Layers": [f"arn:aws:lambda:eu-west-1:{ACCOUNT}:layer:wired-fn-layer:1"],
        },
    ),
    Case(
        "rec:test_layer_function_quota_exception create_function_with_six_layers",
        "POST",
        "/2015-03-31/functions",
        400,
        "InvalidParameterValueException",
        invalid("Cannot reference more than 5 layers."),
        body={
            "FunctionName": "six",
            "Runtime": "python3.13",
            "Role": ROLE,
            "Handler": "probe.count",
            "Code": {"ZipFile": PROBE_ZIP},
            "Layers": [f"{LAYER}:six-{n}:1" for n in range(6)],
        },
    ),
    Case(
        "rec:test_layer_lifecycle update_fn_config",
        "PUT",
        "/2015-03-31/functions/layered/configuration",
        200,
        response={
            **LAYERED,
            **IN_PROGRESS,
            "Layers": [{"Arn": f"{LAYER}:wired-fn-layer:1", "CodeSize": ANY}],
        },
        body={"Layers": [f"{LAYER}:wired-fn-layer:1"]},
    ),
    Case(
        "rec:test_layer_lifecycle get_fn_config",
        "GET",
        "/2015-03-31/functions/layered/configuration",
        200,
        response={**LAYERED, "Layers": [{"Arn": f"{LAYER}:wired-fn-layer:1", "CodeSize": ANY}]},
    ),
    Case(
        "rec:test_layer_lifecycle delete_layer_1",
        "DELETE",
        f"{LAYERS}/wired-fn-layer/versions/1",
        204,
    ),
    Case(
        "rec:test_layer_lifecycle get_fn_config_postdelete (a deleted version stays for the "
        "functions that use it)",
        "GET",
        "/2015-03-31/functions/layered/configuration",
        200,
        response={**LAYERED, "Layers": [{"Arn": f"{LAYER}:wired-fn-layer:1", "CodeSize": ANY}]},
    ),
    Case(
        "rec:test_function_lifecycle delete_response",
        "DELETE",
        "/2015-03-31/functions/layered",
        204,
    ),
]
CASES.extend(LAYER_CASES)

# Versions and aliases (a function of their own, "versioned", created with Publish)

VERSIONED = {
    **CREATED,
    "FunctionArn": f"{FN}:versioned",
    "FunctionName": "versioned",
    "LoggingConfig": {"LogFormat": "Text", "LogGroup": "/aws/lambda/versioned"},
    "Description": "",
    "MemorySize": 128,
    "Timeout": 3,
}
# A published version as GetFunctionConfiguration and PublishVersion show it.
VERSION_ONE = {
    **{k: v for k, v in VERSIONED.items() if not k.startswith("StateReason")},
    "FunctionArn": f"{FN}:versioned:1",
    "Version": "1",
    "State": "Active",
    "LastUpdateStatus": "Successful",
}
LISTED = (  # left out of list items
    "State",
    "StateReason",
    "StateReasonCode",
    "LastUpdateStatus",
    "RuntimeVersionConfig",
)
STALE_FUNCTION = (
    "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias "
    "API to retrieve the latest Revision Id"
)
PROBE_SHA = base64.b64encode(hashlib.sha256(base64.b64decode(PROBE_ZIP)).digest()).decode()
ALIASES = "/2015-03-31/functions/versioned/aliases"
PC = "/2019-09-30/functions/{}/provisioned-concurrency"
ROUTING = "routingConfig.additionalVersionWeights"
NOT_ALIAS_OR_VERSION = "The function resource provided must be an alias or a published version."


def weights(given: dict[str, Any], version: str = "1", name: str = "custom") -> dict[str, Any]:
    return {
        "Name": name,
        "FunctionVersion": version,
        "RoutingConfig": {"AdditionalVersionWeights": given},
    }


def alias(name: str, version: str, routing: dict[str, float] | None = None) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "AliasArn": f"{FN}:versioned:{name}",
        "Description": "",
        "FunctionVersion": version,
        "Name": name,
        "RevisionId": ANY,
    }
    if routing:
        shown["RoutingConfig"] = {"AdditionalVersionWeights": routing}
    return shown


VERSION_CASES: list[Case] = [
    Case(
        "rec:test_publish_version_on_create create_response",
        "POST",
        "/2015-03-31/functions",
        201,
        response={**VERSIONED, "Version": "1"},  # the version named, the ARN not qualified
        body={
            "FunctionName": "versioned",
            "Runtime": "python3.13",
            "Role": ROLE,
            "Handler": "probe.count",
            "Code": {"ZipFile": PROBE_ZIP},
            "Publish": True,
        },
    ),
    Case(
        "rec:test_publish_version_on_create repeated_publish_response",
        "POST",
        "/2015-03-31/functions/versioned/versions",
        201,
        response=VERSION_ONE,
    ),
    Case(
        "rec:test_publish_with_wrong_revisionid publish_wrong_revisionid_exc",
        "POST",
        "/2015-03-31/functions/versioned/versions",
        412,
        "PreconditionFailedException",
        invalid(STALE_FUNCTION),
        body={"RevisionId": "wrong"},
    ),
    Case(
        "rec:test_publish_with_wrong_sha256 publish_wrong_sha256_exc",
        "POST",
        "/2015-03-31/functions/versioned/versions",
        400,
        "InvalidParameterValueException",
        invalid(
            f"CodeSHA256 (somenonexistentsha256) is different from current CodeSHA256 in $LATEST "
            f"({PROBE_SHA}). Please try again with the CodeSHA256 in $LATEST."
        ),
        body={"CodeSha256": "somenonexistentsha256"},
    ),
    Case(
        "rec:test_publish_version_on_create list_versions_result",
        "GET",
        "/2015-03-31/functions/versioned/versions",
        200,
        response={
            "Versions": [
                {
                    **{k: v for k, v in VERSIONED.items() if k not in LISTED},
                    "FunctionArn": f"{FN}:versioned:$LATEST",
                },
                {k: v for k, v in VERSION_ONE.items() if k not in LISTED},
            ]
        },
    ),
    Case(
        "rec:test_ops_on_nonexisting_version[get_function_configuration] "
        "version_not_found_exception",
        "GET",
        "/2015-03-31/functions/versioned/configuration",
        404,
        "ResourceNotFoundException",
        not_found(f"Function not found: {FN}:versioned:1221"),
        query={"Qualifier": "1221"},
    ),
    Case(
        "rec:test_ops_on_nonexisting_version[get_function] version_not_found_exception",
        "GET",
        "/2015-03-31/functions/versioned",
        404,
        "ResourceNotFoundException",
        not_found(f"Function not found: {FN}:versioned:1221"),
        query={"Qualifier": "1221"},
    ),
    Case(
        "rec:test_ops_on_nonexisting_version[get_function_event_invoke_config] "
        "version_not_found_exception",
        "GET",
        EIC.format("versioned"),
        404,
        "ResourceNotFoundException",
        not_found(NO_EIC.format(f"{FN}:versioned:1221")),
        query={"Qualifier": "1221"},
    ),
    Case(
        "rec:test_delete_on_nonexisting_version (a version that does not exist: no error)",
        "DELETE",
        "/2015-03-31/functions/versioned",
        204,
        query={"Qualifier": "1233"},
    ),
    Case(
        "rec:test_version_lifecycle second_update_response (a change to publish again)",
        "PUT",
        "/2015-03-31/functions/versioned/configuration",
        200,
        response={
            **{k: v for k, v in VERSIONED.items() if not k.startswith("StateReason")},
            "Description": "two",
            "State": "Active",
            "LastUpdateStatus": "InProgress",
            "LastUpdateStatusReason": "The function is being created.",
            "LastUpdateStatusReasonCode": "Creating",
        },
        body={"Description": "two"},
    ),
    Case(
        "rec:test_version_lifecycle second_publish_response",
        "POST",
        "/2015-03-31/functions/versioned/versions",
        201,
        response={
            **VERSION_ONE,
            "Description": "two",
            "FunctionArn": f"{FN}:versioned:2",
            "Version": "2",
        },
    ),
    # CreateAlias's refusals (test_notfound_and_invalid_routingconfigs), in the recorded order
    Case(
        "rec:test_notfound_and_invalid_routingconfigs routing_config_exc_toomany",
        "POST",
        ALIASES,
        400,
        "InvalidParameterValueException",
        invalid("Number of items in AdditionalVersionWeights cannot be greater than 1"),
        body=weights({"1": 0.8, "2": 0.2}),
    ),
    Case(
        "rec:test_notfound_and_invalid_routingconfigs routing_config_exc_toohigh",
        "POST",
        ALIASES,
        400,
        "ValidationException",
        validation(
            f"Value '{{2=2.0}}' at '{ROUTING}' failed to satisfy constraint: Map value must "
            "satisfy constraint: [Member must have value less than or equal to 1.0, Member must "
            "have value greater than or equal to 0.0, Member must not be null]"
        ),
        body=weights({"2": 2}),
    ),
    Case(
        "rec:test_notfound_and_invalid_routingconfigs routing_config_exc_subzero",
        "POST",
        ALIASES,
        400,
        "ValidationException",
        validation(
            f"Value '{{2=-1.0}}' at '{ROUTING}' failed to satisfy constraint: Map value must "
            "satisfy constraint: [Member must have value less than or equal to 1.0, Member must "
            "have value greater than or equal to 0.0, Member must not be null]"
        ),
        body=weights({"2": -1}),
    ),
    Case(
        "rec:test_notfound_and_invalid_routingconfigs routing_config_exc_sameversion",
        "POST",
        ALIASES,
        400,
        "InvalidParameterValueException",
        invalid(
            "Invalid function version 1. Function version 1 is already included in routing "
            "configuration."
        ),
        body=weights({"1": 0.5}),
    ),
    Case(
        "rec:test_notfound_and_invalid_routingconfigs target_version_doesnotexist",
        "POST",
        ALIASES,
        404,
        "ResourceNotFoundException",
        not_found(f"Function not found: {FN}:versioned:10"),
        body=weights({"2": 0.5}, version="10"),
    ),
    Case(
        "rec:test_notfound_and_invalid_routingconfigs routing_config_exc_version_doesnotexist",
        "POST",
        ALIASES,
        404,
        "ResourceNotFoundException",
        not_found(f"Function not found: {FN}:versioned:10"),
        body=weights({"10": 0.5}),
    ),
    Case(
        "rec:test_notfound_and_invalid_routingconfigs target_version_exc_version_latest",
        "POST",
        ALIASES,
        400,
        "InvalidParameterValueException",
        {"message": "$LATEST is not supported for an alias pointing to more than 1 version"},
        body=weights({"1": 0.5}, version="$LATEST"),
    ),
    Case(
        "rec:test_notfound_and_invalid_routingconfigs routing_config_exc_version_latest",
        "POST",
        ALIASES,
        400,
        "ValidationException",
        validation(
            f"Value '{{$LATEST=0.5}}' at '{ROUTING}' failed to satisfy constraint: Map keys must "
            "satisfy constraint: [Member must have length less than or equal to 1024, Member "
            "must have length greater than or equal to 1, Member must satisfy regular expression "
            "pattern: [0-9]+]"
        ),
        body=weights({"$LATEST": 0.5}),
    ),
    Case(
        "rec:test_notfound_and_invalid_routingconfigs routing_config_exc_fn_doesnotexist",
        "POST",
        "/2015-03-31/functions/versioned-unknown/aliases",
        404,
        "ResourceNotFoundException",
        not_found(f"Function not found: {FN}:versioned-unknown:1"),
        body=weights({"2": 0.5}),
    ),
    Case(
        "rec:test_notfound_and_invalid_routingconfigs create_alias_response",
        "POST",
        ALIASES,
        201,
        response=alias("custom", "1", {"2": 0.5}),
        body=weights({"2": 0.5}),
    ),
    Case(
        "rec:test_notfound_and_invalid_routingconfigs routing_config_exc_already_exist",
        "POST",
        ALIASES,
        409,
        "ResourceConflictException",
        invalid(f"Alias already exists: {FN}:versioned:custom"),
        body=weights({"2": 0.5}),
    ),
    Case(
        "rec:test_notfound_and_invalid_routingconfigs alias_does_not_exist_esc",
        "GET",
        ALIASES + "/non-existent",
        404,
        "ResourceNotFoundException",
        not_found(f"Cannot find alias arn: {FN}:versioned:non-existent"),
    ),
    Case(
        "rec:test_non_existent_alias_update update_alias_response",
        "PUT",
        ALIASES + "/non-existent",
        404,
        "ResourceNotFoundException",
        not_found(f"Alias not found: {FN}:versioned:non-existent"),
        body={},
    ),
    Case(
        "rec:test_non_existent_alias_deletion delete_alias_response",
        "DELETE",
        ALIASES + "/non-existent",
        204,
    ),
    Case(
        "rec:test_alias_naming create_alias_number_exception",
        "POST",
        ALIASES,
        400,
        "ValidationException",
        validation(
            "Value '2024' at 'name' failed to satisfy constraint: Member must satisfy regular "
            f"expression pattern: {pattern('CreateAlias', 'Name')}"
        ),
        body={"Name": "2024", "FunctionVersion": "1", "Description": "custom-alias"},
    ),
    Case(
        "rec:test_alias_lifecycle get_function_alias_notfound_exc",
        "GET",
        "/2015-03-31/functions/versioned",
        404,
        "ResourceNotFoundException",
        not_found(f"Function not found: {FN}:versioned:aliasdoesnotexist"),
        query={"Qualifier": "aliasdoesnotexist"},
    ),
    Case(
        "rec:test_function_revisions_version_and_alias update_alias_revision_exception",
        "PUT",
        ALIASES + "/custom",
        412,
        "PreconditionFailedException",
        invalid(STALE_FUNCTION),
        body={"FunctionVersion": "2", "RevisionId": "wrong"},
    ),
    Case(
        "assumed:AWS's message as its users quote it (karl-cardenas-coding/go-lambda-cleanup "
        "issue 45, cloud-custodian issue 6739); status and type as AWS's SDK reports them",
        "DELETE",
        "/2015-03-31/functions/versioned",
        409,
        "ResourceConflictException",
        invalid("Unable to delete version because the following aliases reference it: [custom]"),
        query={"Qualifier": "1"},
    ),
    Case(
        "rec:test_alias_lifecycle create_alias_2 (an alias of one version)",
        "POST",
        ALIASES,
        201,
        response=alias("pcalias", "2"),
        body={"Name": "pcalias", "FunctionVersion": "2"},
    ),
    Case(
        "rec:test_alias_lifecycle list_aliases_for_fnname",
        "GET",
        ALIASES,
        200,
        response={"Aliases": [alias("custom", "1", {"2": 0.5}), alias("pcalias", "2")]},
    ),
    # Provisioned concurrency: versions and aliases only
    Case(
        "rec:test_provisioned_concurrency_exceptions put_provisioned_latest",
        "PUT",
        PC.format("versioned"),
        400,
        "InvalidParameterValueException",
        invalid(
            "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
        ),
        body={"ProvisionedConcurrentExecutions": 1},
        query={"Qualifier": "$LATEST"},
    ),
    Case(
        "rec:test_provisioned_concurrency_exceptions get_provisioned_latest",
        "GET",
        PC.format("versioned"),
        400,
        "InvalidParameterValueException",
        invalid(NOT_ALIAS_OR_VERSION),
        query={"Qualifier": "$LATEST"},
    ),
    Case(
        "rec:test_provisioned_concurrency_exceptions delete_provisioned_latest",
        "DELETE",
        PC.format("versioned"),
        400,
        "InvalidParameterValueException",
        invalid(NOT_ALIAS_OR_VERSION),
        query={"Qualifier": "$LATEST"},
    ),
    Case(
        "rec:test_provisioned_concurrency_exceptions put_provisioned_version_doesnotexist",
        "PUT",
        PC.format("versioned"),
        404,
        "ResourceNotFoundException",
        not_found(f"Function not found: {FN}:versioned:10"),
        body={"ProvisionedConcurrentExecutions": 1},
        query={"Qualifier": "10"},
    ),
    Case(
        "rec:test_provisioned_concurrency_exceptions "
        "put_provisioned_functionname_doesnotexist_version",
        "PUT",
        PC.format("doesnotexist"),
        404,
        "ResourceNotFoundException",
        not_found(f"Function not found: {FN}:doesnotexist:1"),
        body={"ProvisionedConcurrentExecutions": 1},
        query={"Qualifier": "1"},
    ),
    Case(
        "rec:test_provisioned_concurrency_exceptions get_provisioned_config_doesnotexist",
        "GET",
        PC.format("versioned"),
        404,
        "ProvisionedConcurrencyConfigNotFoundException",
        invalid("No Provisioned Concurrency Config found for this function"),
        query={"Qualifier": "pcalias"},
    ),
    Case(
        "rec:test_lambda_provisioned_lifecycle put_provisioned_on_alias",
        "PUT",
        PC.format("versioned"),
        202,
        response={
            "AllocatedProvisionedConcurrentExecutions": 0,
            "AvailableProvisionedConcurrentExecutions": 0,
            "LastModified": ANY,
            "RequestedProvisionedConcurrentExecutions": 1,
            "Status": "IN_PROGRESS",
        },
        body={"ProvisionedConcurrentExecutions": 1},
        query={"Qualifier": "pcalias"},
    ),
    Case(
        "rec:test_lambda_provisioned_lifecycle put_provisioned_on_version_conflict",
        "PUT",
        PC.format("versioned"),
        409,
        "ResourceConflictException",
        invalid("Version is pointed by a Provisioned Concurrency alias"),
        body={"ProvisionedConcurrentExecutions": 1},
        query={"Qualifier": "2"},
    ),
    Case(
        "rec:test_lambda_provisioned_concurrency_scheduling reserved_lower_than_provisioned_exc "
        "(test_lambda.snapshot.json; 0 below 1 here, 1 below 2 there)",
        "PUT",
        "/2017-10-31/functions/versioned/concurrency",
        400,
        "InvalidParameterValueException",
        {
            "message": " ReservedConcurrentExecutions  0 should not be lower than function's total "
            "provisioned concurrency [1]."
        },
        body={"ReservedConcurrentExecutions": 0},
    ),
    Case(
        "rec:test_lambda_provisioned_lifecycle delete_provisioned_alias",
        "DELETE",
        PC.format("versioned"),
        204,
        query={"Qualifier": "pcalias"},
    ),
    Case(
        "rec:test_alias_lifecycle delete_alias_response",
        "DELETE",
        ALIASES + "/custom",
        204,
    ),
    Case(
        "rec:test_version_lifecycle (deletion of the first version)",
        "DELETE",
        "/2015-03-31/functions/versioned",
        204,
        query={"Qualifier": "1"},
    ),
    Case(
        "rec:test_version_lifecycle list_versions_result_after_deletion_of_first_version",
        "GET",
        "/2015-03-31/functions/versioned/versions",
        200,
        response={
            "Versions": [
                {
                    **{k: v for k, v in VERSIONED.items() if k not in LISTED},
                    "Description": "two",
                    "FunctionArn": f"{FN}:versioned:$LATEST",
                },
                {
                    **{k: v for k, v in VERSION_ONE.items() if k not in LISTED},
                    "Description": "two",
                    "FunctionArn": f"{FN}:versioned:2",
                    "Version": "2",
                },
            ]
        },
    ),
    Case(
        "rec:test_function_lifecycle delete_response (with its versions and aliases)",
        "DELETE",
        "/2015-03-31/functions/versioned",
        204,
    ),
]
CASES += VERSION_CASES
