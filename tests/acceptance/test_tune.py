"""`lrun tune` (issue 14 item 5) on a real CPU-bound python3.13 function in real containers: more
memory is more CPU, so the warm duration falls with it; the table, the plot and the cheapest
size within a bound are printed, and bad sizes are refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.acceptance.conftest import Lrun

HANDLER = """\
def handler(event, context):
    total = 0
    for i in range(event["n"]):
        total += i * i
    return {"total": total}
"""


def project(tmp_path: Path) -> Path:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text(HANDLER)
    (tmp_path / "lrun.yaml").write_text(
        "functions:\n  crunch: {runtime: python3.13, handler: app.handler, code: ./fn, "
        "timeout: 60}\n"
    )
    return tmp_path


def test_tune_measures_sizes_and_names_the_cheapest_within_the_bound(
    lrun: Lrun, tmp_path: Path
) -> None:
    where = project(tmp_path)
    env = {"LRUN_STATE_DIR": str(tmp_path / "state")}
    payload = json.dumps({"n": 300_000})
    done = lrun("tune", "crunch", "--payload", payload, "--memory", "128,1024", "--runs", "3",
                "--json", cwd=where, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    small, large = found["sizes"]
    assert (small["memory_mb"], large["memory_mb"]) == (128, 1024)
    assert small["runs"] == large["runs"] == 3 and small["errors"] == large["errors"] == 0
    # 128 MB gets 128/1769 of a vCPU, 1024 MB 1024/1769: the same work takes far longer.
    assert small["p50_ms"] > 2 * large["p50_ms"]
    assert small["init_ms"] is not None
    assert found["cheapest_mb"] in (128, 1024)
    table = lrun("tune", "crunch", "--payload", payload, "--memory", "256,1769", "--runs", "2",
                 "--max-ms", "100000", cwd=where, env={**env, "COLUMNS": "160"})  # fmt: skip
    assert table.returncode == 0, table.stderr
    assert "$ per million" in table.stdout and "█" in table.stdout
    assert "cheapest with p50 within 100000 ms:" in table.stdout
    bad = lrun("tune", "crunch", "--memory", "64,99999", cwd=where, env=env)
    assert bad.returncode == 2 and "--memory '64,99999' is not a list of sizes" in bad.stderr
