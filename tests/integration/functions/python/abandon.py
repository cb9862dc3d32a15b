"""Handlers for the abandoned-invocation tests: a sleeper, a fast answer, an oversized answer."""

import json
import secrets
import time

ENVIRONMENT = secrets.token_hex(8)  # one per runtime process: every pid is 1 in its container


def sleepy(event, context):
    if isinstance(event, dict) and "Records" in event:  # a queue's batch of one
        event = json.loads(event["Records"][0]["body"])
    if event.get("hold"):  # busy a moment, quietly: to warm several environments at once
        time.sleep(event["hold"])
        return {"held": True, "env": ENVIRONMENT}
    if event.get("sleep"):
        print(f"sleeping {context.aws_request_id}", flush=True)
        time.sleep(event["sleep"])
        ended = time.time()
        print(f"slept {context.aws_request_id} {ended}", flush=True)
        return {"slept": True, "env": ENVIRONMENT, "ended": ended}
    return {"fast": event.get("n"), "env": ENVIRONMENT}


def oversized(event, context):
    if event.get("big"):
        return "x" * 6_291_600  # over Lambda's 6 MB response limit: the runtime gets a 413
    return {"fast": event.get("n"), "env": ENVIRONMENT}
