"""Layers in real containers: several merged at /opt file by file as Lambda extracts them, from
directories and zips of the project, on the paths the runtimes search (/opt/python and its
site-packages, /opt/nodejs/node_modules and /opt/nodejs/nodeNN/node_modules, /opt/bin on PATH,
/opt/lib on LD_LIBRARY_PATH), and read-only."""

from __future__ import annotations

import asyncio
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

from orchestrator.api.code_package import Packages
from orchestrator.api.layer_refs import LayerCatalog
from orchestrator.events.layer_versions import LayerVersions
from orchestrator.events.store import Store
from orchestrator.manifest import FunctionSpec, load


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if name.startswith("bin/"):
            path.chmod(0o755)
    return root


def write_zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o755 if name.startswith("bin/") else 0o644) << 16
            archive.writestr(info, text)
    return path


def resolved(manifest: Path, name: str, state: Path) -> FunctionSpec:
    """The function as `lrun serve` runs it: its zips unpacked, every layer found."""
    versions = LayerVersions(Store(state / "lrun.db"))
    catalog = LayerCatalog(versions, Packages(state / "layers"), state / "layers" / "local")
    return asyncio.run(catalog.resolve_manifest(load(manifest))).function(name)


PYTHON_HANDLER = """\
import os
import subprocess

import alpha  # layer a: /opt/python/lib/python3.13/site-packages
import beta  # layer b (a zip): /opt/python
import shared  # in both: the later layer's


def handler(event, context):
    try:
        open("/opt/python/new.py", "w").close()
        written = "yes"
    except OSError as exc:
        written = type(exc).__name__
    return {
        "alpha": [alpha.VALUE, alpha.__file__],
        "beta": [beta.VALUE, beta.__file__],
        "shared": shared.VALUE,
        "tool": subprocess.run(["greet"], capture_output=True, text=True).stdout.strip(),
        "ld_library_path": os.environ["LD_LIBRARY_PATH"].split(":"),
        "lib": sorted(os.listdir("/opt/lib")),
        "written": written,
    }
"""


def test_python_modules_from_two_merged_layers(
    invoke: Callable[..., object], write_manifest: Callable[[str], Path], tmp_path: Path
) -> None:
    write_tree(tmp_path / "code", {"app.py": PYTHON_HANDLER})
    write_tree(
        tmp_path / "layer-a",
        {
            "python/lib/python3.13/site-packages/alpha/__init__.py": "VALUE = 'alpha'\n",
            "python/shared.py": "VALUE = 'from a'\n",
            "bin/greet": "#!/bin/sh\necho hello from /opt/bin\n",
            "lib/liba.txt": "a",
        },
    )
    write_zip(
        tmp_path / "layer-b.zip",
        {"python/beta.py": "VALUE = 'beta'\n", "python/shared.py": "VALUE = 'from b'\n"},
    )
    path = write_manifest(
        "functions:\n  f: {runtime: python3.13, handler: app.handler, code: ./code,\n"
        "      layers: [./layer-a, ./layer-b.zip]}\n"
    )
    result = invoke(resolved(path, "f", tmp_path / "state"))
    assert result.function_error is None, (result.payload, result.log)  # type: ignore[attr-defined]
    seen = json.loads(result.payload)  # type: ignore[attr-defined]
    assert seen["alpha"] == [
        "alpha",
        "/opt/python/lib/python3.13/site-packages/alpha/__init__.py",
    ]
    assert seen["beta"] == ["beta", "/opt/python/beta.py"]
    assert seen["shared"] == "from b"
    assert seen["tool"] == "hello from /opt/bin"
    assert "/opt/lib" in seen["ld_library_path"] and seen["lib"] == ["liba.txt"]
    assert seen["written"] == "OSError"  # /opt is read-only, as on Lambda


NODE_HANDLER = """\
const left = require('left');  // layer a: /opt/nodejs/node_modules
const right = require('right');  // layer b: the same directory, merged
const pinned = require('pinned');  // layer b: /opt/nodejs/node20/node_modules

exports.handler = async () => ({
  left, right, pinned,
  leftFile: require.resolve('left'),
  pinnedFile: require.resolve('pinned'),
  esm: (await import('right')).default,
});
"""


def test_node_modules_from_two_merged_layers(
    invoke: Callable[..., object], write_manifest: Callable[[str], Path], tmp_path: Path
) -> None:
    write_tree(tmp_path / "code", {"index.js": NODE_HANDLER})
    write_tree(
        tmp_path / "layer-a",
        {"nodejs/node_modules/left/index.js": "module.exports = 'left';\n"},
    )
    write_zip(
        tmp_path / "layer-b.zip",
        {
            "nodejs/node_modules/right/index.js": "module.exports = 'right';\n",
            "nodejs/node20/node_modules/pinned/index.js": "module.exports = 'pinned';\n",
        },
    )
    path = write_manifest(
        "functions:\n  f: {runtime: nodejs20.x, handler: index.handler, code: ./code,\n"
        "      layers: [./layer-a, ./layer-b.zip]}\n"
    )
    result = invoke(resolved(path, "f", tmp_path / "state"))
    assert result.function_error is None, (result.payload, result.log)  # type: ignore[attr-defined]
    assert json.loads(result.payload) == {  # type: ignore[attr-defined]
        "left": "left",
        "right": "right",
        "pinned": "pinned",
        "leftFile": "/opt/nodejs/node_modules/left/index.js",
        "pinnedFile": "/opt/nodejs/node20/node_modules/pinned/index.js",
        "esm": "right",
    }
