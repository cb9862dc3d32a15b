"""A template (or a CDK app's templates) to lrun's ``Manifest``: the same values ``lrun.yaml``
gives, so everything downstream runs them unchanged.

Order matters only where one resource names another: queues first (a redrive policy names its
dead-letter queue), then buckets and layers, then functions (which name layers), then what
starts functions (which names functions, queues and buckets), APIs among them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import orchestrator.template.apigw_v2 as apigw_v2
import orchestrator.template.events as events
import orchestrator.template.functions as functions
import orchestrator.template.resources as resources
import orchestrator.template.urls as urls
from orchestrator.errors import ManifestError, Problem
from orchestrator.manifest import Manifest
from orchestrator.manifest.functions import build
from orchestrator.template.apis import HTTP, REST, Apis
from orchestrator.template.builder import Builder, merge, relocate, to_node
from orchestrator.template.document import read
from orchestrator.template.intrinsics import Resource
from orchestrator.template.stack import Stack, open_stack

_TRIGGER_TYPES = (
    "AWS::Lambda::EventSourceMapping",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::Events::Rule",
    "AWS::Scheduler::Schedule",
    "AWS::S3::Bucket",
    "Custom::S3BucketNotifications",
)
_READ_TYPES = (
    resources.QUEUE,
    resources.BUCKET,
    functions.SERVERLESS,
    functions.LAMBDA,
    urls.URL,
    *apigw_v2.TYPES,
    "AWS::Serverless::LayerVersion",
    "AWS::Lambda::LayerVersion",
    REST,
    HTTP,
)


def stack_name(directory: Path) -> str:
    """``AWS::StackName`` for a template: its directory's name, as a stack name is spelled."""
    cleaned = re.sub(r"[^A-Za-z0-9-]", "-", directory.name).strip("-")
    return cleaned if cleaned[:1].isalpha() else f"lrun-{cleaned or 'stack'}"


def load_template(path: Path, overrides: Mapping[str, str]) -> Manifest:
    """The manifest a SAM or CloudFormation template at ``path`` becomes."""
    path = Path(os.path.abspath(path))
    document = read(path)
    stack = open_stack(document, str(path), stack_name(path.parent), overrides)
    builder = build_stack(stack, path.parent, path.parent, {})
    return finish(path, [builder])


def build_stack(stack: Stack, base: Path, root: Path, assets: Mapping[str, Path]) -> Builder:
    """One stack's entries: ``base`` is where its code paths are relative to, ``root`` the
    project directory (local buckets live in it), ``assets`` CDK's S3 keys to asset paths."""
    builder = Builder(stack.file, base, stack.resolver, cdk_assets=dict(assets))
    builder.problems.extend(stack.problems)
    builder.notices.extend(stack.notices)
    found: list[Resource] = list(stack.resources.values())
    for resource in found:
        if resource.kind == resources.QUEUE:
            resources.add_queue_names(builder, resource)
    for resource in found:
        if resource.kind == resources.QUEUE:
            resources.add_queue(builder, resource)
        elif resource.kind == resources.BUCKET:
            resources.add_bucket(builder, resource, root)
        elif resources.is_layer(resource):
            resources.add_layer(builder, resource)
    for resource in found:
        if resource.kind in (functions.SERVERLESS, functions.LAMBDA):
            functions.add_function(builder, resource)
    for resource in found:
        if resource.logical in builder.functions:
            urls.add_function_url(builder, resource)
    for resource in found:
        if resource.kind == urls.URL:
            urls.add_url(builder, resource)
    apis = Apis(builder, stack.globals)
    for resource in found:
        if resource.kind in (REST, HTTP):
            apis.add(resource)
    apigw_v2.V2(builder, found).read()
    for resource in found:
        if resource.logical in builder.functions:
            events.add_function_triggers(builder, resource, apis)
        if resource.kind in _TRIGGER_TYPES:
            events.add_trigger_resource(builder, resource)
    others = [r for r in found if r.kind not in _READ_TYPES]
    resources.note_other(builder, others)
    return builder


def finish(path: Path, builders: list[Builder]) -> Manifest:
    """Validate the stacks' entries with the manifest's own rules; problems name the template."""
    problems = [p for b in builders for p in b.problems]
    notices = [n for b in builders for n in b.notices]
    data, origins, clashes = merge(builders)
    problems += clashes
    if not data.get("functions") and not problems:
        fix = "no function of the template can be served by lrun (the notices say why)"
        problems.append(Problem(str(path), None, "Resources", fix))
        problems += notices
    if problems:
        raise ManifestError(_ordered(problems))
    root = to_node(data, "", origins, None)
    try:
        return build(path, root, _ordered(notices))
    except ManifestError as exc:
        moved = [relocate(p, origins, str(path)) for p in exc.problems]
        raise ManifestError(_ordered(moved)) from None


def _ordered(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.file, p.line or 0))
