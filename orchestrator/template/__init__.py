"""SAM and CloudFormation templates, and CDK's ``cdk.out``, read as lrun's manifest.

Owns: reading a template's YAML or JSON with CloudFormation's short-form tags (``document``),
parameters (``parameters``), intrinsic functions and conditions (``intrinsics``), what Ref and
Fn::GetAtt give (``references``), the stack with SAM's Globals (``stack``), each resource kind
mapped to the manifest's keys (``functions``, ``events``, ``resources``, ``runtimes``), the
manifest being built with each entry's origin (``builder``, ``properties``), a template or a
CDK cloud assembly to a ``Manifest`` (``convert``, ``cdk``), and which file a project is
described by (``project``).
May import: ``manifest`` and the leaves. The result is the same ``Manifest`` lrun.yaml gives,
with ``notices`` saying what of the template lrun does otherwise or not at all.
"""

from orchestrator.template.parameters import parse_overrides
from orchestrator.template.project import Project, find

__all__ = ["Project", "find", "parse_overrides"]
