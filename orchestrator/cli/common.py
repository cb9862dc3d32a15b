"""What every command shares: the manifest option, loading it, reaching the engine, errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from orchestrator.manifest import Manifest
    from orchestrator.sandbox.backend import Backend

F = TypeVar("F", bound=Callable[..., Any])


def err(message: str) -> None:
    click.echo(message, err=True)


def manifest_option(command: F) -> F:
    return click.option(
        "-f",
        "--file",
        "manifest_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Manifest to read (default: ./lrun.yaml).",
    )(command)


def load_manifest(path: Path | None) -> Manifest:
    from orchestrator import manifest

    return manifest.load(manifest.find(path, Path.cwd()))


def connect_backend() -> Backend:
    from orchestrator.sandbox import docker_backend

    return docker_backend.connect()
