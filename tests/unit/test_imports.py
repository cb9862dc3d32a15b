"""The dependency direction (DESIGN): the core never pulls in the engine SDK or the CLI's
libraries, and only the Docker backend imports ``docker``."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "orchestrator"
CORE = (
    "orchestrator.invoker",
    "orchestrator.manifest",
    "orchestrator.environment",
    "orchestrator.runtime_api",
    "orchestrator.sandbox",
    "orchestrator.invocation",
)
FORBIDDEN = ("docker", "click", "rich", "aiohttp")


def loaded_after_import(modules: tuple[str, ...]) -> dict[str, list[str]]:
    """In a fresh interpreter: import ``modules``, then report which FORBIDDEN ones loaded."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {list(modules)!r}:\n"
        "    importlib.import_module(name)\n"
        f"forbidden = {list(FORBIDDEN)!r}\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in forbidden)\n"
        f"print(json.dumps({{'loaded': loaded, 'core': sorted(m for m in sys.modules "
        f"if m in {list(modules)!r})}}))\n"
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


def test_the_probe_sees_a_forbidden_import() -> None:
    # The same probe on the Docker backend must report docker: the test above can fail.
    result = loaded_after_import(("orchestrator.docker_backend",))
    assert "docker" in result["loaded"]


def docker_importers() -> list[str]:
    """Modules of the package whose source imports ``docker`` (or a submodule of it)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            if any(name == "docker" or name.startswith("docker.") for name in names):
                found.append(path.relative_to(ROOT).as_posix())
                break
    return found


def test_only_the_docker_backend_imports_docker() -> None:
    assert docker_importers() == ["orchestrator/docker_backend.py"]
