"""Handlers for the Lambda-fidelity integration tests (trace ids, memory, /tmp, /dev/shm)."""

import errno
import multiprocessing
import os
import time


def trace(event, context):
    return {"env": os.environ.get("_X_AMZN_TRACE_ID")}


def sleep(event, context):
    keep = bytearray(event.get("mb", 0) * 1024 * 1024)  # noqa: F841 - held while sleeping
    time.sleep(event.get("s", 5))


def leave(event, context):
    keep = bytearray(event.get("mb", 0) * 1024 * 1024)
    keep[::4096] = b"x" * len(keep[::4096])  # touch every page
    os._exit(3)


def fill_tmp(event, context):
    """Write ``mb`` MB to /tmp in 1 MB blocks; report how far it got and why it stopped."""
    chunk = b"x" * (1024 * 1024)
    written = 0
    stopped = None
    try:
        with open("/tmp/fill", "wb") as f:
            for _ in range(event["mb"]):
                f.write(chunk)
                written += 1
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        stopped = errno.errorcode.get(exc.errno, str(exc.errno))
    os.unlink("/tmp/fill")
    tmp = os.statvfs("/tmp")
    return {"written_mb": written, "stopped": stopped, "tmp_bytes": tmp.f_blocks * tmp.f_frsize}


def shm(event, context):
    try:
        multiprocessing.Queue()
        queue = "ok"
    except OSError as exc:
        queue = type(exc).__name__
    return {"dev_shm": os.path.exists("/dev/shm"), "queue": queue}
