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

    def write(self, url: str, manifest: Path) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {"url": url, "pid": os.getpid(), "manifest": str(manifest)}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
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
