"""`lrun runtimes`: build and list runtime images; build one on demand for other commands."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from orchestrator.cli.common import connect_backend, err
from orchestrator.errors import RuntimeImageError

if TYPE_CHECKING:
    from orchestrator.manifest import FunctionSpec
    from orchestrator.sandbox.backend import Backend


@click.group()
def runtimes() -> None:
    """Build and list the runtime images (made offline from Debian packages)."""


@runtimes.command("build")
@click.argument("names", nargs=-1)
@click.option("--force", is_flag=True, help="Rebuild even if the image is current.")
def runtimes_build(names: tuple[str, ...], force: bool) -> None:
    """Build the images of NAMES (default: all runtimes)."""
    from orchestrator.manifest import RUNTIME_NAMES

    for name in names:
        check_runtime_name(name)
    backend = connect_backend()
    for name in names or RUNTIME_NAMES:
        build_image(backend, name, force)


def check_runtime_name(name: str) -> None:
    from difflib import get_close_matches

    from orchestrator.manifest import RUNTIME_NAMES

    if name not in RUNTIME_NAMES:
        close = get_close_matches(name, RUNTIME_NAMES, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise RuntimeImageError(
            f"unknown runtime {name!r}; {hint}known runtimes: {', '.join(RUNTIME_NAMES)}"
        )


def build_image(backend: Backend, name: str, force: bool = False) -> None:
    from rich.console import Console

    from orchestrator.sandbox import images as rt

    console = Console(stderr=True)
    if not force and rt.is_current(backend, name):
        console.print(f"{name}: image {rt.RUNTIMES[name].image} is current")
        return
    with console.status(f"{name}: building") as status:

        def progress(step: str) -> None:
            status.update(f"{name}: {step}")
            if not console.is_terminal:
                console.print(f"{name}: {step}")

        rt.build(backend, name, progress, force=force)
    console.print(f"{name}: built {rt.RUNTIMES[name].image}")


@runtimes.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def runtimes_ls(as_json: bool) -> None:
    """Show each runtime and whether its image is built and current."""
    from orchestrator.sandbox import images as rt

    backend = connect_backend()
    rows: list[dict[str, object]] = []
    for name, definition in rt.RUNTIMES.items():
        info = backend.image(definition.image)
        rows.append(
            {
                "runtime": name,
                "image": definition.image,
                "state": rt.image_state(backend, definition),
                "size_mb": round(info.size / 1e6) if info else None,
                "debian": definition.suite,
                "sdk": rt.sdk_versions(definition),
            }
        )
    if as_json:
        click.echo(json.dumps(rows))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("runtime", "image", "state", "size", "base", "AWS SDK")
    for row in rows:
        style = {"current": "green", "outdated": "yellow", "missing": "red"}[str(row["state"])]
        size_text = f"{row['size_mb']} MB" if row["size_mb"] is not None else "-"
        table.add_row(
            str(row["runtime"]),
            str(row["image"]),
            f"[{style}]{row['state']}[/]",
            size_text,
            f"Debian {row['debian']}",
            _sdk_text(row),
        )
    Console().print(table)
    if any(row["state"] != "current" for row in rows):
        err("build the missing ones with: lrun runtimes build")


def _sdk_text(row: dict[str, object]) -> str:
    sdk = row["sdk"]
    assert isinstance(sdk, dict)
    if sdk:
        return ", ".join(f"{name} {version}" for name, version in sdk.items())
    return "as a layer" if str(row["runtime"]).startswith("nodejs") else "-"


def ensure_image(backend: Backend, spec: FunctionSpec) -> None:
    from orchestrator.sandbox import images as rt

    if spec.runtime is not None:
        if not rt.is_current(backend, spec.runtime):
            err(f"{spec.runtime}: the runtime image is missing or outdated; building it now")
            build_image(backend, spec.runtime)
    elif spec.image is not None and backend.image(spec.image) is None:
        raise RuntimeImageError(
            f"function {spec.name!r}: image {spec.image!r} is not in the local Docker engine; "
            f"build or load it first (docker build -t {spec.image} .)"
        )
