"""The `lrun` group imports a command's module only when that command runs (one-shot
`lrun invoke` pays for no other command's imports), and still lists every command."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner

from orchestrator.cli import COMMANDS, main


def test_running_invoke_imports_no_other_commands_module() -> None:
    code = (
        "import json, sys\n"
        "from orchestrator.cli import main\n"
        "main.get_command(None, 'invoke')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('orchestrator.cli.'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(done.stdout))
    assert "orchestrator.cli.invoke" in loaded
    others = {f"orchestrator.cli.{m}" for m in COMMANDS.values()} - {
        "orchestrator.cli.invoke",
        "orchestrator.cli.runtimes",  # invoke builds a missing image
    }
    assert loaded.isdisjoint(others), loaded & others


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    listed = result.output.split("Commands:")[1]
    for name in COMMANDS:
        assert f"  {name} " in listed
