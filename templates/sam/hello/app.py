import json
import os


def handler(event, context):
    """GET /hello?name=you through the HTTP API (payload format 2.0)."""
    name = (event.get("queryStringParameters") or {}).get("name", "world")
    print(f"hello invoked for {name}")
    queue = os.environ["JOBS_QUEUE_URL"].rsplit("/", 1)[-1]
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"message": f"Hello, {name}!", "queue": queue}),
    }
