"""Handlers behind API Gateway routes (tests/acceptance/test_gateway.py): each answers as an API
Gateway integration does, in payload format 2.0 or 1.0."""

import base64
import json
import time
import uuid

ENVIRONMENT = uuid.uuid4().hex  # one per execution environment: tells environments apart


def echo(event, context):
    """The event back as JSON, with a header and two cookies (payload 2.0's full form)."""
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "x-environment": ENVIRONMENT},
        "cookies": ["session=abc; HttpOnly", "theme=dark"],
        "body": json.dumps(event),
    }


def bare(event, context):
    """Payload 2.0's shorthand: any JSON value is a 200 JSON response."""
    return {"path": event["rawPath"], "environment": ENVIRONMENT}


def mirror(event, context):
    """The request's body back as bytes, base64 in the answer, with its content type."""
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event["isBase64Encoded"] else body.encode()
    content_type = event["headers"].get("content-type", "application/octet-stream")
    return {
        "statusCode": 200,
        "headers": {"content-type": content_type},
        "body": base64.b64encode(raw).decode(),
        "isBase64Encoded": True,
    }


def rest(event, context):
    """Payload 1.0: the event back, with headers and multiValueHeaders merged by the gateway."""
    return {
        "statusCode": 202,
        "headers": {"X-Single": "one", "X-Both": "from-headers"},
        "multiValueHeaders": {"X-Both": ["a", "b"]},
        "body": json.dumps(event),
    }


def fail(event, context):
    raise RuntimeError("the handler failed")


def malformed(event, context):
    return {"statusCode": "two hundred"}


def nap(event, context):
    """Sleeps for the ``s`` query parameter's seconds (1 by default)."""
    seconds = float((event.get("queryStringParameters") or {}).get("s", "1"))
    time.sleep(seconds)
    return {"slept": seconds, "environment": ENVIRONMENT}
