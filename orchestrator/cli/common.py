"""What every command shares: the manifest and template options, loading them, reaching the
engine, errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from orchestrator.manifest import Manifest
    from orchestrator.sandbox.backend import Backend
    from orchestrator.template import Project

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


def project_options(command: F) -> F:
    """``-f`` (lrun.yaml), ``-t`` (a SAM/CloudFormation template or cdk.out) and the template's
    ``--parameter-overrides``; with neither file, the current directory's is found."""
    command = click.option(
        "--parameter-overrides",
        "parameter_overrides",
        multiple=True,
        metavar="KEY=VALUE ...",
        help="Template parameters, as sam deploy takes them (Key=Value, space-separated).",
    )(command)
    command = click.option(
        "-t",
        "--template",
        "template_path",
        type=click.Path(path_type=Path),
        default=None,
        help="SAM/CloudFormation template or cdk.out to read (default: ./template.yaml, "
        "./cdk.out when there is no lrun.yaml).",
    )(command)
    return manifest_option(command)


def find_project(
    manifest_path: Path | None, template_path: Path | None, parameter_overrides: tuple[str, ...]
) -> Project:
    """The project the options name (or the current directory holds)."""
    from orchestrator.template import find, parse_overrides

    try:
        parameters = parse_overrides(parameter_overrides)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--parameter-overrides") from None
    return find(manifest_path, template_path, Path.cwd(), parameters)


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
