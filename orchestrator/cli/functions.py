"""`lrun functions ls|get|delete`: the running server's functions, the manifest's and those
created through Lambda's API together, as tables or JSON.

They go through the running `lrun serve` (it owns API-created functions and their store); heavy
modules are imported inside the commands, so `lrun --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from orchestrator.cli.common import find_project, project_options
from orchestrator.errors import ServerUnavailable

if TYPE_CHECKING:
    from orchestrator.api.client import ServerClient
    from orchestrator.template import Project


def _server() -> ServerClient:
    from orchestrator.api import client

    server = client.find()
    if server is None:
        raise ServerUnavailable(
            "no `lrun serve` is running; functions created through the API live in it: start "
            "one with: lrun serve"
        )
    return server


@click.group()
def functions() -> None:
    """Functions served: the manifest's and those created through the API (CreateFunction)."""


@functions.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@project_options
def list_functions(
    as_json: bool,
    manifest_path: Path | None,
    template_path: Path | None,
    parameter_overrides: tuple[str, ...],
) -> None:
    """List every function, with where it comes from.

    With -f or -t: the functions of that manifest or template, as the server serving it has
    them, or as they would be served when no server serves it.
    """
    if manifest_path is None and template_path is None:
        rows = _server().functions()
    else:
        rows = _project_rows(find_project(manifest_path, template_path, parameter_overrides))
    if as_json:
        click.echo(json.dumps(rows))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "function",
        "from",
        "runtime",
        "handler / image",
        "memory",
        "timeout",
        "state",
        "layers",
        "versions",
        "aliases",
    )
    for row in rows:
        table.add_row(
            row["FunctionName"],
            _source(row["Source"]),
            row.get("Runtime", "-"),
            row.get("Handler") or row.get("ImageUri") or "-",
            f"{row['MemorySize']} MB",
            f"{row['Timeout']} s",
            _state(row),
            str(len(row.get("LayerSources", []))),
            ", ".join(row.get("Versions", [])) or "-",
            ", ".join(
                f"{name} -> {_route(target['FunctionVersion'], target['Weights'])}"
                for name, target in row.get("Aliases", {}).items()
            )
            or "-",
        )
    Console().print(table)


@functions.command("get")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print GetFunction's JSON for scripts.")
def get_function(name: str, as_json: bool) -> None:
    """Show one function (or ``NAME:VERSION``, ``NAME:ALIAS``) as GetFunction answers for it,
    with the function's versions and aliases."""
    server = _server()
    found = server.function(name)
    function = found["Configuration"]["FunctionName"]
    found["Versions"] = server.versions(function)
    found["Aliases"] = server.aliases(function)
    if as_json:
        click.echo(json.dumps(found))
        return
    from rich.console import Console
    from rich.table import Table

    config: dict[str, Any] = found["Configuration"]
    table = Table("setting", "value", title=config["FunctionName"])
    for key in (
        "FunctionArn",
        "PackageType",
        "Runtime",
        "Handler",
        "Role",
        "MemorySize",
        "Timeout",
        "EphemeralStorage",
        "Description",
        "State",
        "LastUpdateStatus",
        "LastModified",
        "CodeSize",
        "CodeSha256",
        "RevisionId",
    ):
        if key in config:
            value = config[key]
            table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    variables = config.get("Environment", {}).get("Variables", {})
    for variable, value in variables.items():
        table.add_row(f"Environment {variable}", value)
    for layer in config.get("Layers", []):
        table.add_row("Layer", f"{layer['Arn']} ({layer['CodeSize']} bytes)")
    code = found.get("Code", {})
    table.add_row("Code", code.get("Location") or code.get("ImageUri") or "-")
    for tag, value in found.get("Tags", {}).items():
        table.add_row(f"Tag {tag}", value)
    for version in found["Versions"]:
        if version["Version"] != "$LATEST":
            described = f" ({version['Description']})" if version.get("Description") else ""
            table.add_row(f"Version {version['Version']}", version["LastModified"] + described)
    for alias in found["Aliases"]:
        weights = alias.get("RoutingConfig", {}).get("AdditionalVersionWeights", {})
        table.add_row(f"Alias {alias['Name']}", _route(alias["FunctionVersion"], weights))
    Console().print(table)


@functions.command("delete")
@click.argument("name")
def delete_function(name: str) -> None:
    """Delete a function created through the API (manifest functions are the manifest's)."""
    _server().delete_function(name)
    click.echo(f"deleted {name}")


def _project_rows(project: Project) -> list[dict[str, Any]]:
    """The project's functions from the server serving it, else as it would serve them."""
    from orchestrator.api import client

    server = client.find(project.path)
    if server is not None:
        try:
            return server.functions()
        except client.ServerGone:
            pass
    loaded = project.load()
    return [
        {
            "FunctionName": spec.name,
            "Source": str(project.path),
            **({"Runtime": spec.runtime} if spec.runtime else {}),
            **({"Handler": spec.handler} if spec.handler else {}),
            **({"ImageUri": spec.image} if spec.image else {}),
            "MemorySize": spec.memory,
            "Timeout": spec.timeout,
            "State": "not served",
            "LayerSources": [layer.source for layer in spec.layers],
        }
        for spec in loaded.functions.values()
    ]


def _source(source: str) -> str:
    from orchestrator.manifest.path import DEFAULT_MANIFEST

    if source == "api":
        return "API"
    return "manifest" if Path(source).name == DEFAULT_MANIFEST else "template"


def _state(row: dict[str, Any]) -> str:
    """``Active``, or what an update in progress or failed adds to it."""
    update = row.get("LastUpdateStatus")
    return str(row["State"]) + ("" if update in (None, "Successful") else f" ({update})")


def _route(version: str, weights: dict[str, float]) -> str:
    """Where an alias sends invocations: ``2``, or ``1 (2: 10%)`` with a second version."""
    if not weights:
        return version
    shares = ", ".join(f"{v}: {w * 100:g}%" for v, w in weights.items())
    return f"{version} ({shares})"
