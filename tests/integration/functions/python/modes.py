"""One handler for each way an invocation can end, for the failure tests of every Python runtime."""

import json


def handler(event, context):
    if event.get("fail"):
        raise TypeError(f"python says no: {event['fail']}")
    if event.get("sleep"):
        import time

        time.sleep(event["sleep"])
    if event.get("hog"):
        blocks = []
        while True:
            blocks.append(bytearray(16 * 1024 * 1024))
    print("modes handler", json.dumps(event))
    return {"ok": True, "event": event}
