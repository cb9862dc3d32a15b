"""Which file describes a project, and CDK cloud assemblies read with their assets as code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import LrunError, ManifestError
from orchestrator.template import Project, find
from orchestrator.template.cdk import load_assembly
from tests.unit.template.conftest import write

SAM = """
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: src/, Handler: app.handler, Runtime: python3.13}
"""


def test_lrun_yaml_comes_first_then_sam_build_then_templates_then_cdk_out(
    tmp_path: Path,
) -> None:
    (tmp_path / "cdk.out").mkdir()
    (tmp_path / "cdk.out" / "manifest.json").write_text("{}")
    assert find(None, None, tmp_path) == Project(tmp_path / "cdk.out", "cdk")
    write(tmp_path, SAM, "template.json")
    assert find(None, None, tmp_path) == Project(tmp_path / "template.json", "template")
    write(tmp_path, SAM, "template.yaml")
    assert find(None, None, tmp_path).path == tmp_path / "template.yaml"
    built = tmp_path / ".aws-sam" / "build"
    built.mkdir(parents=True)
    write(built, SAM, "template.yaml")
    assert find(None, None, tmp_path).path == built / "template.yaml"
    (tmp_path / "lrun.yaml").write_text("functions: {}\n")
    assert find(None, None, tmp_path) == Project(tmp_path / "lrun.yaml", "manifest")


def test_t_names_a_template_a_directory_or_a_cdk_out(tmp_path: Path) -> None:
    write(tmp_path, SAM, "infra.yaml")
    assert find(None, Path("infra.yaml"), tmp_path).path == tmp_path / "infra.yaml"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "manifest.json").write_text("{}")
    assert find(None, Path("out"), tmp_path) == Project(tmp_path / "out", "cdk")
    assert find(None, Path("out/manifest.json"), tmp_path).kind == "cdk"
    write(tmp_path, SAM)
    project = find(None, Path("."), tmp_path, {"Stage": "dev"})
    assert project.kind == "template" and dict(project.parameters) == {"Stage": "dev"}


@pytest.mark.parametrize(
    ("manifest", "template", "parameters", "message"),
    [
        (Path("lrun.yaml"), Path("t.yaml"), {}, "give the manifest (-f lrun.yaml) or the template"),
        (Path("lrun.yaml"), None, {"A": "1"}, "--parameter-overrides are for templates"),
        (None, Path("nope.yaml"), {}, "no such file; pass an existing template"),
        (None, None, {}, "no lrun.yaml, template.yaml or cdk.out/ found in"),
    ],
)
def test_wrong_choices_are_one_clear_line(
    tmp_path: Path,
    manifest: Path | None,
    template: Path | None,
    parameters: dict[str, str],
    message: str,
) -> None:
    (tmp_path / "lrun.yaml").write_text("functions: {}\n")
    where = tmp_path if manifest is not None else tmp_path / "empty"
    where.mkdir(exist_ok=True)
    with pytest.raises(LrunError) as caught:
        find(manifest, template, where, parameters)
    assert message in str(caught.value)


def assembly(root: Path, template: dict[str, object], assets: dict[str, object]) -> Path:
    out = root / "cdk.out"
    out.mkdir(parents=True)
    (out / "manifest.json").write_text(
        json.dumps(
            {
                "version": "52.0.0",
                "artifacts": {
                    "App.assets": {
                        "type": "cdk:asset-manifest",
                        "properties": {"file": "App.assets.json"},
                    },
                    "App": {
                        "type": "aws:cloudformation:stack",
                        "properties": {"templateFile": "App.template.json"},
                    },
                },
            }
        )
    )
    (out / "App.template.json").write_text(json.dumps(template))
    (out / "App.assets.json").write_text(json.dumps({"version": "52.0.0", "files": assets}))
    return out


CODE = {"S3Bucket": {"Fn::Sub": "cdk-assets-${AWS::AccountId}"}, "S3Key": "abc.zip"}


def test_cdk_assets_are_the_functions_and_layers_code(tmp_path: Path) -> None:
    template = {
        "Resources": {
            "HandlerA1B2": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Code": CODE,
                    "Handler": "index.handler",
                    "Runtime": "python3.13",
                    "Layers": [{"Ref": "LayerC3"}],
                },
            },
            "LayerC3": {
                "Type": "AWS::Lambda::LayerVersion",
                "Properties": {"Content": {"S3Bucket": "b", "S3Key": "other.zip"}},
                "Metadata": {"aws:asset:path": "asset.layer", "aws:asset:property": "Content"},
            },
        }
    }
    assets = {
        "abc": {
            "source": {"path": "asset.abc", "packaging": "zip"},
            "destinations": {"current": {"bucketName": "b", "objectKey": "abc.zip"}},
        }
    }
    out = assembly(tmp_path, template, assets)
    (out / "asset.abc").mkdir()
    (out / "asset.layer" / "python").mkdir(parents=True)
    manifest = load_assembly(out, {})
    spec = manifest.function("HandlerA1B2")
    assert spec.code == out / "asset.abc"
    assert [layer.source for layer in spec.layers] == [str(out / "asset.layer")]
    assert manifest.path == out / "manifest.json"


def test_an_assembly_naming_files_outside_itself_is_refused(tmp_path: Path) -> None:
    out = assembly(tmp_path, {"Resources": {}}, {})
    data = json.loads((out / "manifest.json").read_text())
    data["artifacts"]["App"]["properties"]["templateFile"] = "../elsewhere.json"
    (out / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="outside the assembly"):
        load_assembly(out, {})


def test_cdk_out_edits_that_reload_are_its_own_files(tmp_path: Path) -> None:
    directory, describes = Project(tmp_path / "cdk.out", "cdk").watched()
    assert directory == tmp_path / "cdk.out"
    assert describes(str(directory / "manifest.json"))
    assert describes(str(directory / "App.template.json"))
    assert not describes(str(directory / "asset.abc" / "index.py"))
    directory, describes = Project(tmp_path / "template.yaml", "template").watched()
    assert directory == tmp_path and describes(str(tmp_path / "template.yaml"))
    assert not describes(str(tmp_path / "lrun.yaml"))
