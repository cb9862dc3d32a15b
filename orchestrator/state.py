"""lrun's state directory, and the file through which a running server is found."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path


def state_dir() -> Path:
    """LRUN_STATE_DIR, else ``$XDG_STATE_HOME/lrun`` (``~/.local/state/lrun``)."""
    explicit = os.environ.get("LRUN_STATE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "lrun"


@dataclass
class Announcement:
    """The state file that says where the running server listens and what it serves."""

    path: Path

    def write(self, url: str, manifest: Path, extra: dict[str, object] | None = None) -> None:
        """Announce the server; the file is its owner's only, as ``extra`` may hold the key
        pair other `lrun` commands sign their requests with."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {"url": url, "pid": os.getpid(), "manifest": str(manifest), **(extra or {})}
        tmp = self.path.with_suffix(".tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(json.dumps(record))
        tmp.replace(self.path)

    def read(self) -> dict[str, object] | None:
        try:
            record: dict[str, object] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return record

    def remove(self) -> None:
        record = self.read()
        if record is not None and str(record.get("pid")) == str(os.getpid()):
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()


def announcement() -> Announcement:
    return Announcement(state_dir() / "server.json")
