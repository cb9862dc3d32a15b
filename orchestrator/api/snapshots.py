"""Copies of a manifest function's code and layers, made when a version of it is published, so the
version stays what it was when the files under the project change (a published version is
immutable, as on Lambda).

A copy goes into a directory lrun names under the state directory (``versions/<token>``). It
never follows a link (a link is copied as a link, as the function's environment would see it),
skips what is not a file, a directory or a link, and stops at Lambda's 250 MB unzipped limit
for code and layers together, removing what it wrote. Blocking: call it in a thread.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import replace
from pathlib import Path

from orchestrator.api.code_package import MAX_UNZIPPED
from orchestrator.errors import InvalidParameterValue
from orchestrator.manifest.layers import Layer

_CHUNK = 1 << 20


def copy_version(
    root: Path, token: str, code: Path | None, layers: tuple[Layer, ...], kept: Path
) -> tuple[Path | None, tuple[Layer, ...]]:
    """Copy ``code`` and each layer's directory not already under ``kept`` (lrun's own
    immutable directories: published layer versions, unpacked zips) into ``root/token``;
    returns what the version runs from."""
    target = root / token
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    target.mkdir(mode=0o755)
    budget = [MAX_UNZIPPED]
    try:
        copied_code = None
        if code is not None:
            copied_code = target / "code"
            _copy_tree(code, copied_code, budget)
        copied_layers = []
        for index, layer in enumerate(layers):
            if layer.directory is None or layer.directory.is_relative_to(kept):
                copied_layers.append(layer)
                continue
            copy = target / f"layer-{index}"
            _copy_tree(layer.directory, copy, budget)
            copied_layers.append(replace(layer, directory=copy))
        return copied_code, tuple(copied_layers)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise


def remove_version_copy(root: Path, token: str) -> None:
    shutil.rmtree(root / token, ignore_errors=True)


def _copy_tree(source: Path, target: Path, budget: list[int]) -> None:
    target.mkdir(mode=0o755)
    for directory, dirs, files in os.walk(source, followlinks=False):
        relative = os.path.relpath(directory, source)
        here = target if relative == "." else target / relative
        for name in [*dirs, *files]:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                os.symlink(os.readlink(path), here / name)
            elif stat.S_ISDIR(info.st_mode):
                (here / name).mkdir(mode=0o755)
            elif stat.S_ISREG(info.st_mode):
                _copy_file(path, here / name, info.st_mode, budget)
        dirs[:] = [d for d in dirs if stat.S_ISDIR(os.lstat(os.path.join(directory, d)).st_mode)]


def _copy_file(source: str, target: Path, mode: int, budget: list[int]) -> None:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    with open(os.open(source, flags), "rb") as reader, open(target, "xb") as writer:
        while chunk := reader.read(_CHUNK):
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise InvalidParameterValue(
                    f"Unzipped size must be smaller than {MAX_UNZIPPED} bytes"
                )
            writer.write(chunk)
    os.chmod(target, stat.S_IMODE(mode) & 0o755 | 0o444)
