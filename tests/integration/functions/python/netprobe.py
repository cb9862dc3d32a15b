"""Network probes for the isolation tests: a listener that outlives its invocation, and an
attacker that tries to connect to addresses it is given."""

import os
import socket
import threading

PORT = 7000
BANNER = b"lrun-netprobe\n"
LISTENING = []


def _accept(server):
    while True:
        conn, _ = server.accept()
        try:
            conn.sendall(BANNER)
        finally:
            conn.close()


def own_address():
    """The address this container has on its network (the one facing the Runtime API)."""
    gateway = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")[0]
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect((gateway, 9))  # UDP: no packet is sent
        return probe.getsockname()[0]
    finally:
        probe.close()


def listen(event, context):
    """Listen on every address of the container (once), and say where."""
    if not LISTENING:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("0.0.0.0", PORT))
        server.listen(16)
        threading.Thread(target=_accept, args=(server,), daemon=True).start()
        LISTENING.append(server)
    return {"address": own_address(), "port": PORT}


def connect(event, context):
    """Try each {"host", "port"} target; say for each whether a connection was made."""
    results = []
    for target in event["targets"]:
        conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        conn.settimeout(event.get("timeout", 3))
        try:
            conn.connect((target["host"], target["port"]))
            received = conn.recv(64).decode(errors="replace")
            results.append({**target, "connected": True, "received": received})
        except OSError as exc:
            results.append({**target, "connected": False, "error": repr(exc)})
        finally:
            conn.close()
    return {"address": own_address(), "results": results}
