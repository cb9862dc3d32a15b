"""The dependency direction (DESIGN): one way, no cycles; the core never pulls in the engine SDK,
the CLI's libraries or the HTTP server, and only the Docker backend imports ``docker``."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "orchestrator"
CORE = (
    "orchestrator.pool",
    "orchestrator.served",
    "orchestrator.manifest",
    "orchestrator.template",
    "orchestrator.sandbox.invoker",
    "orchestrator.sandbox.environment",
    "orchestrator.sandbox.runtime_api",
    "orchestrator.sandbox.container",
    "orchestrator.sandbox.invocation",
    "orchestrator.gateway.routes",
    "orchestrator.gateway.payload_v1",
    "orchestrator.gateway.payload_v2",
)
FORBIDDEN = ("docker", "click", "rich", "aiohttp")
LEAVES = ("errors", "state", "aws", "http_server", "http_stream", "trace", "unzip")
# What each part may import of the package, besides the leaves (DESIGN's layout).
ALLOWED: dict[str, set[str]] = {
    "manifest": set(),
    "template": {"manifest"},
    "sandbox": {"manifest"},
    "pool": set(),
    "served": {"pool", "manifest"},
    "service": {"pool", "served", "sandbox", "manifest"},
    "logbook": set(),
    # What a user sees of their functions (logs by group and stream, metrics, cost): fed by the
    # log book's writer, read by api and cli.
    "observe": {"logbook", "sandbox", "manifest"},
    "events": {"service", "served", "pool", "sandbox", "manifest"},
    # API Gateway's front doors: below api (which starts them and lends its Host check).
    "gateway": {"service", "served", "pool", "logbook", "sandbox", "manifest"},
    "api": {
        "observe",
        "gateway",
        "service",
        "served",
        "pool",
        "logbook",
        "events",
        "sandbox",
        "manifest",
        "template",
    },
    "cli": {
        "observe",
        "api",
        "gateway",
        "service",
        "served",
        "pool",
        "logbook",
        "events",
        "sandbox",
        "manifest",
        "template",
    },
}


def loaded_after_import(modules: tuple[str, ...]) -> dict[str, list[str]]:
    """In a fresh interpreter: import ``modules``, then report which FORBIDDEN ones loaded."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {list(modules)!r}:\n"
        "    importlib.import_module(name)\n"
        f"forbidden = {list(FORBIDDEN)!r}\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in forbidden)\n"
        "server = 'orchestrator.http_server' in sys.modules\n"
        f"print(json.dumps({{'loaded': loaded, 'server': server, 'core': sorted(m for m in "
        f"sys.modules if m in {list(modules)!r})}}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, list[str]] = json.loads(done.stdout)
    return result


def test_core_modules_do_not_import_engine_or_cli_libraries() -> None:
    result = loaded_after_import(CORE)
    assert result["core"] == sorted(CORE)  # the imports really happened
    assert result["loaded"] == []


def test_the_pure_core_loads_no_http_server() -> None:
    result = loaded_after_import(("orchestrator.pool", "orchestrator.manifest"))
    assert result["server"] is False


def test_the_probe_sees_a_forbidden_import() -> None:
    # The same probe on the Docker backend must report docker: the test above can fail.
    result = loaded_after_import(("orchestrator.sandbox.docker_backend",))
    assert "docker" in result["loaded"]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Absolute module names ``path`` imports, at any depth (lazy imports count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            if node.module == "orchestrator" or node.module.startswith("orchestrator."):
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def package_graph() -> dict[str, set[str]]:
    """Each module of the package -> the package's modules it imports."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in imports_of(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def part(module: str) -> str:
    """The layer a module belongs to: its subpackage, or its own name at the top."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def violations(graph: dict[str, set[str]]) -> list[str]:
    found = []
    for module, targets in graph.items():
        mine = part(module)
        for target in targets:
            theirs = part(target)
            if theirs in ("", mine, "__main__") or theirs in LEAVES:
                continue
            if mine in LEAVES:
                found.append(f"{module} (a leaf) imports {target}")
            elif mine in ALLOWED and theirs not in ALLOWED[mine]:
                found.append(f"{module} imports {target}")
    return sorted(found)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every module that can reach itself through top-level or lazy imports, with its path."""
    found = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for target in graph.get(node, ()):
                if target == start:
                    found.append([*path, start])
                elif target not in seen:
                    seen.add(target)
                    stack.append((target, [*path, target]))
    return found


def test_the_layers_import_only_downwards() -> None:
    graph = package_graph()
    assert set(ALLOWED) | set(LEAVES) >= {part(m) for m in graph} - {"", "__main__"}, (
        "a new part of the package: give it a rule in ALLOWED"
    )
    assert violations(graph) == []


def test_no_module_imports_itself_through_others() -> None:
    assert cycles(package_graph()) == []


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"orchestrator.sandbox.x": {"orchestrator.api.y"}}, ["orchestrator.sandbox.x imports"]),
        ({"orchestrator.errors": {"orchestrator.pool"}}, ["orchestrator.errors (a leaf) imports"]),
    ],
)
def test_the_layer_check_sees_a_wrong_import(
    graph: dict[str, set[str]], expected: list[str]
) -> None:
    assert [v[: len(expected[0])] for v in violations(graph)] == expected


def test_the_cycle_check_sees_a_cycle() -> None:
    graph = {"orchestrator.a": {"orchestrator.b"}, "orchestrator.b": {"orchestrator.a"}}
    assert cycles(graph) == [
        ["orchestrator.a", "orchestrator.b", "orchestrator.a"],
        ["orchestrator.b", "orchestrator.a", "orchestrator.b"],
    ]


def docker_importers() -> list[str]:
    """Modules of the package whose source imports ``docker`` (or a submodule of it)."""
    return [
        path.relative_to(ROOT).as_posix()
        for path in sorted(PACKAGE.rglob("*.py"))
        if any(m == "docker" or m.startswith("docker.") for m in imports_of(path))
    ]


def test_only_the_docker_backend_imports_docker() -> None:
    assert docker_importers() == ["orchestrator/sandbox/docker_backend.py"]
