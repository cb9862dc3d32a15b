"""What ``Ref`` and ``Fn::GetAtt`` give for each kind of resource, as CloudFormation documents it.

Pure: each value is built from the resource's physical name (for lrun: its explicit name
property, else its logical ID, made a valid local name) and lrun's one account and region. A
function's Ref is the name lrun serves it under, and a queue's ARN names the local queue lrun
makes for it, so values a template passes around (an environment variable holding a queue's
URL, an event source naming a queue's ARN) lead back to the local resource.
"""

from __future__ import annotations

import hashlib
import re

from orchestrator.aws import ACCOUNT_ID, REGION, function_arn

# The property that names a resource, when a template sets it; otherwise the logical ID is used.
NAME_PROPERTIES = {
    "AWS::Serverless::Function": "FunctionName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Serverless::SimpleTable": "TableName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Serverless::LayerVersion": "LayerName",
    "AWS::Lambda::LayerVersion": "LayerName",
    "AWS::Events::Rule": "Name",
    "AWS::Events::EventBus": "Name",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::Serverless::StateMachine": "Name",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::Kinesis::Stream": "Name",
    "AWS::SSM::Parameter": "Name",
    "AWS::SecretsManager::Secret": "Name",
    "AWS::Lambda::Alias": "Name",
}
FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
LAYER_TYPES = ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion")
_LOCAL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_INVALID = re.compile(r"[^a-zA-Z0-9_-]")


class UnknownAttribute(Exception):
    """``Fn::GetAtt`` of an attribute lrun has no value for."""


def local_name(name: str) -> str:
    """``name`` as a local function, queue or bucket name (1 to 64 letters, digits, '-', '_'):
    other characters become '-', and a longer name keeps 55 characters and a digest."""
    if _LOCAL_NAME.fullmatch(name):
        return name
    cleaned = _INVALID.sub("-", name) or "unnamed"
    if len(cleaned) <= 64:
        return cleaned
    return f"{cleaned[:55]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def api_id(logical: str) -> str:
    """A stable, API-Gateway-shaped id (10 lowercase letters and digits) for an API resource."""
    digest = hashlib.sha256(logical.encode()).digest()
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(alphabet[b % len(alphabet)] for b in digest[:10])


def queue_url(name: str) -> str:
    return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{name}"


def ref(kind: str, logical: str, name: str) -> str:
    """``Ref`` of a resource of type ``kind`` whose physical name is ``name``."""
    if kind == "lrun::Arn":  # a name SAM makes whose Ref is an ARN (Fn.Alias, Fn.Version)
        return name
    if kind in FUNCTION_TYPES:
        return name
    if kind == "AWS::SQS::Queue":
        return queue_url(name)
    if kind == "AWS::SNS::Topic":
        return f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{name}"
    if kind in LAYER_TYPES:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:layer:{name}:1"
    if kind in ("AWS::StepFunctions::StateMachine", "AWS::Serverless::StateMachine"):
        return f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{name}"
    if kind == "AWS::SecretsManager::Secret":
        return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:{name}"
    if kind in (
        "AWS::Serverless::Api",
        "AWS::Serverless::HttpApi",
        "AWS::ApiGateway::RestApi",
        "AWS::ApiGatewayV2::Api",
    ):
        return api_id(logical)
    return name


def attribute(kind: str, logical: str, name: str, attribute: str) -> str:
    """``Fn::GetAtt`` of a resource; ``UnknownAttribute`` for one lrun cannot give."""
    found = _attributes(kind, logical, name).get(attribute)
    if found is not None:
        return found
    if kind == "AWS::Lambda::Url" and attribute == "FunctionUrl":
        raise UnknownAttribute(
            "a function URL's address is chosen when lrun serve starts (it prints it, and "
            "lrun ps --urls lists it)"
        )
    if attribute == "Arn":
        service = kind.split("::")[1].lower() if kind.count("::") == 2 else "unknown"
        return f"arn:aws:{service}:{REGION}:{ACCOUNT_ID}:{name}"
    raise UnknownAttribute(f"lrun has no value for attribute {attribute!r} of a {kind}")


def _attributes(kind: str, logical: str, name: str) -> dict[str, str]:
    if kind in FUNCTION_TYPES:
        return {"Arn": function_arn(name)}
    if kind == "AWS::SQS::Queue":
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"
        return {"Arn": arn, "QueueName": name, "QueueUrl": queue_url(name)}
    if kind == "AWS::S3::Bucket":
        return {
            "Arn": f"arn:aws:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{REGION}.amazonaws.com",
            "DualStackDomainName": f"{name}.s3.dualstack.{REGION}.amazonaws.com",
            "WebsiteURL": f"http://{name}.s3-website-{REGION}.amazonaws.com",
        }
    if kind == "AWS::SNS::Topic":
        return {"TopicArn": ref(kind, logical, name), "TopicName": name}
    if kind in ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable"):
        arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"
        return {"Arn": arn, "StreamArn": f"{arn}/stream/1970-01-01T00:00:00.000"}
    if kind == "AWS::IAM::Role":
        return {"Arn": f"arn:aws:iam::{ACCOUNT_ID}:role/{name}", "RoleId": f"AROA{logical}"}
    if kind == "AWS::Events::Rule":
        return {"Arn": f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{name}"}
    if kind == "AWS::Events::EventBus":
        arn = f"arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/{name}"
        return {"Arn": arn, "Name": name}
    if kind in ("AWS::StepFunctions::StateMachine", "AWS::Serverless::StateMachine"):
        return {"Arn": ref(kind, logical, name), "Name": name}
    if kind == "AWS::Kinesis::Stream":
        return {"Arn": f"arn:aws:kinesis:{REGION}:{ACCOUNT_ID}:stream/{name}"}
    if kind == "AWS::Logs::LogGroup":
        return {"Arn": f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}:*"}
    if kind in ("AWS::Serverless::HttpApi", "AWS::ApiGatewayV2::Api"):
        return {"ApiEndpoint": f"https://{api_id(logical)}.execute-api.{REGION}.amazonaws.com"}
    if kind in ("AWS::Serverless::Api", "AWS::ApiGateway::RestApi"):
        return {"RootResourceId": api_id(logical + "/")}
    return {}
