"""WebSocket handlers as AWS's examples write them: $connect decides, a route pushes back to
the client through boto3's apigatewaymanagementapi (the endpoint from the event's domainName
and stage on AWS; LRUN_WEBSOCKET_ENDPOINT inside lrun's containers), $disconnect records."""

import json
import os

import boto3


def _client(event):
    context = event["requestContext"]
    endpoint = os.environ.get("LRUN_WEBSOCKET_ENDPOINT") or (
        f"https://{context['domainName']}/{context['stage']}"
    )
    return boto3.client("apigatewaymanagementapi", endpoint_url=endpoint)


def _post(event, data):
    _client(event).post_to_connection(
        ConnectionId=event["requestContext"]["connectionId"], Data=json.dumps(data).encode()
    )


def connect(event, context):
    query = event.get("queryStringParameters") or {}
    if query.get("token") != "letmein":
        return {"statusCode": 401, "body": "no token"}
    return {"statusCode": 200}


def echo(event, context):
    """A custom route: the event back to its client, with what GetConnection says of it."""
    client = _client(event)
    connection = event["requestContext"]["connectionId"]
    described = client.get_connection(ConnectionId=connection)
    _post(
        event,
        {
            "route": event["requestContext"]["routeKey"],
            "event": event,
            "sourceIp": described["Identity"]["SourceIp"],
            "connectedAt": described["ConnectedAt"].isoformat(),
        },
    )
    return {"statusCode": 200}


def fallback(event, context):
    _post(event, {"route": event["requestContext"]["routeKey"], "body": event["body"]})
    return {"statusCode": 200}


def gone(event, context):
    """Post to a connection that does not exist: the GoneException, as boto3 raises it."""
    client = _client(event)
    try:
        client.post_to_connection(ConnectionId="AAAAAAAAAAAAAAA=", Data=b"x")
    except client.exceptions.GoneException as exc:
        _post(event, {"gone": exc.response["ResponseMetadata"]["HTTPStatusCode"]})
    return {"statusCode": 200}


def hangup(event, context):
    client = _client(event)
    client.delete_connection(ConnectionId=event["requestContext"]["connectionId"])
    return {"statusCode": 200}


def disconnect(event, context):
    print("DISCONNECT " + json.dumps(event))
    return {"statusCode": 200}
