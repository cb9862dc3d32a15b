"""Where a project's description lives: the names lrun looks for, and a CDK assembly's marker."""

from __future__ import annotations

from pathlib import Path

TEMPLATE_NAMES = ("template.yaml", "template.yml", "template.json")
SAM_BUILD = Path(".aws-sam") / "build" / "template.yaml"  # sam build's output
CDK_OUT = "cdk.out"
ASSEMBLY_MANIFEST = "manifest.json"


def is_assembly(directory: Path) -> bool:
    """Whether ``directory`` holds a CDK cloud assembly (what cdk synth writes)."""
    return (directory / ASSEMBLY_MANIFEST).is_file()
