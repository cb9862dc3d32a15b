"""`lrun validate`, `functions ls` and `invoke` on a SAM template, in-process (no Docker)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from orchestrator.cli import main
from tests.unit.cli.test_commands import lrun, one_line_error

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage: {Type: String, Default: dev}
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Runtime: python3.12
      Environment: {Variables: {STAGE: !Ref Stage}}
      VpcConfig: {SubnetIds: [subnet-1]}
  Legacy:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: s3://bucket/legacy.zip, Handler: app.handler, Runtime: python3.13}
"""


def project(directory: Path, text: str = TEMPLATE, name: str = "template.yaml") -> Path:
    (directory / "src").mkdir(exist_ok=True)
    (directory / "src" / "app.py").write_text("def handler(event, context):\n    return event\n")
    (directory / name).write_text(text)
    return directory / name


def test_validate_finds_the_template_and_lists_every_notice(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = project(tmp_path)
    done = lrun(runner, "validate")
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert lines[0] == f"{path}: ok (1 functions: Hello)"
    assert lines[1] == "3 notices (lrun runs the rest):"
    assert lines[2].startswith(f"  {path}:10: Resources.Hello.Properties.Runtime: lrun has no ")
    assert lines[3].startswith(f"  {path}:12: Resources.Hello.Properties.VpcConfig: lrun does")
    assert lines[4].startswith(f"  {path}:15: Resources.Legacy.Properties.CodeUri: the code is ")


def test_validate_t_with_parameter_overrides(runner: CliRunner, tmp_path: Path) -> None:
    project(tmp_path, name="infra.yaml")
    done = lrun(runner, "validate", "-t", "infra.yaml", "--parameter-overrides", "Stage=prod")
    assert done.exit_code == 0, done.output
    done = lrun(runner, "validate", "-t", "infra.yaml", "--parameter-overrides", "Stag=prod")
    assert "--parameter-overrides gives 'Stag', which the template does not declare" in (
        done.stderr
    )
    assert done.exit_code == 2


def test_validate_names_the_template_line_of_a_bad_value(runner: CliRunner, tmp_path: Path) -> None:
    text = TEMPLATE.replace("Runtime: python3.12", "Runtime: python3.12\n      MemorySize: 64")
    path = project(tmp_path, text)
    done = lrun(runner, "validate")
    assert done.exit_code == 2 and done.stdout == ""
    assert done.stderr == (
        f"error: {path}:11: Resources.Hello.Properties.MemorySize: 64 is out of range; memory "
        "must be an integer number of MB from 128 to 10240\n"
    )


def test_a_malformed_override_is_a_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    project(tmp_path)
    done = lrun(runner, "validate", "--parameter-overrides", "Stage")
    assert done.exit_code == 2
    assert "'Stage' is not KEY=VALUE; write e.g. --parameter-overrides Stage=dev" in done.stderr


def test_functions_ls_t_lists_a_template_no_server_serves(
    runner: CliRunner, tmp_path: Path
) -> None:
    project(tmp_path)
    done = lrun(runner, "functions", "ls", "-t", "template.yaml", "--json")
    assert done.exit_code == 0, done.output
    [row] = json.loads(done.stdout)
    assert row["FunctionName"] == "Hello" and row["Runtime"] == "python3.13"
    assert row["State"] == "not served"
    table = lrun(runner, "functions", "ls", "-t", "template.yaml")
    assert table.exit_code == 0 and "Hello" in table.stdout


def test_invoke_names_the_template_s_functions(runner: CliRunner, tmp_path: Path) -> None:
    project(tmp_path)
    line = one_line_error(lrun(runner, "invoke", "Legacy"), 2)
    assert line == (
        "error: ResourceNotFoundException: Function not found: "
        "arn:aws:lambda:us-east-1:000000000000:function:Legacy:"
        f"$LATEST. Functions in {tmp_path / 'template.yaml'}: Hello\n"
    )


def test_init_sam_makes_a_project_validate_accepts(runner: CliRunner, tmp_path: Path) -> None:
    created = lrun(runner, "init", "sam", "shop")
    assert created.exit_code == 0, created.output
    assert created.stdout.splitlines()[1] == "serve it with: cd shop && lrun serve"
    runner_dir = tmp_path / "shop"
    done = runner.invoke(main, ["validate", "-t", str(runner_dir)], prog_name="lrun")
    assert done.stdout == f"{runner_dir / 'template.yaml'}: ok (3 functions: Hello, Worker, Tick)\n"
