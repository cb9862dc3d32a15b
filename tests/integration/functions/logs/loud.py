"""Writes what the event asks for, then returns (the same as loud.mjs, for Python)."""

import sys
import threading


def handler(event, context):
    tag = event.get("tag", "")
    for i in range(-(-event.get("bytes", 0) // 1024)):
        head = f"{i} "
        sys.stdout.write(head + "x" * (1023 - len(head)) + "\n")
    for i in range(event.get("lines", 0)):
        print(f"line {i}")
    if event.get("late"):
        late = threading.Timer(event["late"] / 1000, print, [f"late line {tag}"])
        late.daemon = True
        late.start()
    print(f"last line {tag}")
    return {"ok": True}
