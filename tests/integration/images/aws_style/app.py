import os


def handler(event, context):
    return {"from": "image", "handler": os.environ.get("_HANDLER"), "event": event}
