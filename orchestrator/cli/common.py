"""What every command shares: the manifest option, loading it, reaching the engine, errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Wiring:
    """What commands reach outside the process. `lrun` runs with none (the Docker engine); a
    test passes its own as click's context object: ``CliRunner().invoke(main, args,
    obj=Wiring(connect=lambda: FakeBackend()))``."""

    connect: Callable[[], Backend] | None = None  # the container engine; None: Docker's


def connect_backend() -> Backend:
    context = click.get_current_context(silent=True)
    wiring = context.find_object(Wiring) if context is not None else None
    if wiring is not None and wiring.connect is not None:
        return wiring.connect()
    from orchestrator.sandbox import docker_backend

    return docker_backend.connect()
