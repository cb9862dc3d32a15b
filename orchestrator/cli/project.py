"""`lrun validate` and `lrun init`: check a manifest, start a function from a template."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from orchestrator.cli.common import find_project, project_options
from orchestrator.errors import LrunError


@click.command()
@project_options
def validate(
    manifest_path: Path | None, template_path: Path | None, parameter_overrides: tuple[str, ...]
) -> None:
    """Check a manifest or template; list every problem and exit non-zero if there are any.

    For a template, also list each thing it asks for that lrun does otherwise or not at all.
    """
    from orchestrator.sandbox.scratch import unsupported

    project = find_project(manifest_path, template_path, parameter_overrides)
    loaded = project.load()
    names = ", ".join(loaded.functions)
    click.echo(f"{project.path}: ok ({len(loaded.functions)} functions: {names})")
    if loaded.notices:
        click.echo(f"{len(loaded.notices)} notices (lrun runs the rest):")
        for notice in loaded.notices:
            click.echo(f"  {notice}")
    why = unsupported()
    if why is not None and loaded.functions:
        click.echo(
            "note: /tmp will be a tmpfs here, which counts against each function's memory "
            f"(on Lambda it is disk, apart from memory), because {why}"
        )


@click.command()
@click.argument("template", default="python")
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
def init(template: str, directory: Path) -> None:
    """Create a function from TEMPLATE (see templates/: python, nodejs, ...) in DIRECTORY.

    ``lrun init sam`` creates a SAM project (template.yaml) that lrun serve runs as it is."""
    from difflib import get_close_matches

    from orchestrator.sandbox.images import source_dir

    templates = source_dir("templates")
    names = sorted(p.name for p in templates.iterdir() if p.is_dir())
    if template not in names:
        close = get_close_matches(template, names, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise LrunError(f"unknown template {template!r}; {hint}templates: {', '.join(names)}")
    source = templates / template
    clashes = [
        directory / p.relative_to(source)
        for p in source.rglob("*")
        if (directory / p.relative_to(source)).exists() and p.is_file()
    ]
    if clashes:
        raise LrunError(
            f"{clashes[0]} already exists; choose an empty directory (lrun init {template} DIR)"
        )
    shutil.copytree(source, directory, dirs_exist_ok=True)
    where = "" if directory == Path(".") else f"cd {directory} && "
    if (source / "template.yaml").is_file():
        click.echo(
            f"created a SAM project (template.yaml: an HTTP API function, a queue consumer and "
            f"a schedule) in {directory.resolve()}"
        )
        click.echo(f"serve it with: {where}lrun serve")
        return
    click.echo(f"created a {template} function 'hello' in {directory.resolve()}")
    click.echo(f'invoke it with: {where}lrun invoke hello --payload \'{{"name": "lrun"}}\'')
