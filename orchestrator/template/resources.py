"""The template's queues, buckets and layers as lrun's local ones, and every other resource type
named once in a notice saying what lrun does about it.

``AWS::SQS::Queue`` resources are local queues (visibility timeout and redrive policy kept);
``AWS::S3::Bucket`` resources are local buckets: directories under ``.lrun/buckets/`` beside
the template, whose files are the bucket's objects; layer versions with local content (a
directory or a zip) are laid over ``/opt``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from orchestrator.template.builder import Builder
from orchestrator.template.intrinsics import Resource
from orchestrator.template.properties import MISSING, Properties, arn_parts
from orchestrator.template.references import LAYER_TYPES, local_name

QUEUE = "AWS::SQS::Queue"
BUCKET = "AWS::S3::Bucket"
BUCKETS_DIRECTORY = Path(".lrun") / "buckets"
# Types that change nothing here: permissions (lrun enforces no IAM), policies on resources,
# CDK's bookkeeping, and what lrun reads through other resources.
SILENT_PREFIXES = ("AWS::IAM::",)
SILENT = frozenset(
    {
        "AWS::Lambda::Permission",
        "AWS::CDK::Metadata",
        "AWS::SQS::QueuePolicy",
        "AWS::SNS::TopicPolicy",
        "AWS::S3::BucketPolicy",
        "AWS::Logs::LogGroup",
        "AWS::Lambda::EventInvokeConfig",
        "AWS::Lambda::EventSourceMapping",
        "AWS::Events::Rule",
        "AWS::Scheduler::Schedule",
        "Custom::S3BucketNotifications",
    }
)
_WHAT_INSTEAD = {
    "AWS::DynamoDB::Table": "functions get its name and ARN, but no table exists; point them at "
    "a local DynamoDB through an environment variable",
    "AWS::Serverless::SimpleTable": "functions get its name and ARN, but no table exists; point "
    "them at a local DynamoDB through an environment variable",
    "AWS::SNS::Topic": "not emulated: nothing is delivered to its subscribers; invoke them "
    "directly (lrun invoke FN --payload-file event.json)",
    "AWS::SNS::Subscription": "not emulated: SNS delivers nothing locally",
    "AWS::Serverless::StateMachine": "Step Functions are not emulated; invoke the functions "
    "directly",
    "AWS::StepFunctions::StateMachine": "Step Functions are not emulated; invoke the functions "
    "directly",
    "AWS::Serverless::Application": "nested applications are not loaded; run their template "
    "with its own lrun serve",
    "AWS::CloudFormation::Stack": "nested stacks are not loaded; run their template with its "
    "own lrun serve",
    "AWS::Lambda::Version": "versions are not published from a template: lrun serves $LATEST "
    "(publish with PublishVersion through the Lambda API)",
    "AWS::Lambda::Alias": "aliases are not made from a template: lrun serves $LATEST (make one "
    "with CreateAlias through the Lambda API)",
}


def add_queue_names(builder: Builder, resource: Resource) -> None:
    """First pass: every queue's local name, so redrive policies and events can name any."""
    name = builder.resolver.name_of(resource.logical)
    builder.queues[name] = resource.logical
    origin = builder.origin(resource.line, f"Resources.{resource.logical}")
    builder.put(f"queues.{name}", None, origin)


def add_queue(builder: Builder, resource: Resource) -> None:
    props = Properties(builder, resource)
    name = builder.resolver.name_of(resource.logical)
    entry: dict[str, Any] = {}
    timeout = props.integer("VisibilityTimeout")
    if timeout is not MISSING:
        entry["visibility_timeout"] = timeout
        builder.origins[f"queues.{name}.visibility_timeout"] = props.origin("VisibilityTimeout")
    redrive = props.value("RedrivePolicy")
    if isinstance(redrive, str):
        try:
            redrive = json.loads(redrive)
        except ValueError:
            props.problem("RedrivePolicy", "is not JSON")
            redrive = MISSING
    if isinstance(redrive, dict):
        target = queue_named(builder, redrive.get("deadLetterTargetArn"), props, "RedrivePolicy")
        count = redrive.get("maxReceiveCount")
        if isinstance(count, str) and count.isdigit():
            count = int(count)
        if target is not None:
            entry["dead_letter_queue"] = target
            entry["max_receive_count"] = count
            builder.origins[f"queues.{name}.dead_letter_queue"] = props.origin("RedrivePolicy")
    for prop in ("FifoQueue", "DelaySeconds"):
        value = props.value(prop, None)
        if value not in (None, False, "false", 0, "0"):
            props.notice(prop, f"{prop} is not emulated by lrun's local queues")
    builder.put(f"queues.{name}", entry or None, props.origin())


def queue_named(builder: Builder, value: Any, props: Properties, prop: str) -> str | None:
    """The local queue an SQS ARN or URL names; one is made (with a notice) for a queue the
    template does not declare. None, with a notice, for anything else."""
    name: str | None = None
    if isinstance(value, str):
        parts = arn_parts(value)
        if parts is not None and parts[0] == "sqs":
            name = parts[1]
        elif value.startswith("https://sqs.") or value.startswith("http"):
            name = urlsplit(value).path.rstrip("/").rsplit("/", 1)[-1] or None
    if name is None:
        props.notice(prop, f"{value!r} is not an SQS queue; lrun leaves it out")
        return None
    local = local_name(name)
    if local not in builder.queues:
        builder.queues[local] = ""
        builder.put(f"queues.{local}", None, props.origin(prop))
        props.notice(
            prop,
            f"queue {name} is not declared in this template; lrun makes a local queue {local} "
            f"for it (send to it with: lrun queue send {local} BODY)",
        )
    return local


def add_bucket(builder: Builder, resource: Resource, root: Path) -> None:
    name = builder.resolver.name_of(resource.logical)
    path = root / BUCKETS_DIRECTORY / name
    builder.buckets[name] = resource.logical
    origin = builder.origin(resource.line, f"Resources.{resource.logical}")
    builder.put(f"buckets.{name}", {"path": str(path)}, origin)
    builder.notice(
        resource.line,
        f"Resources.{resource.logical}",
        f"a local bucket: the directory {path}; files put there are its objects",
    )
    props = Properties(builder, resource)
    notifications = props.mapping("NotificationConfiguration")
    if notifications is not None:
        for prop in ("QueueConfigurations", "TopicConfigurations", "EventBridgeConfiguration"):
            if prop in notifications:
                notifications.notice(prop, "S3 sends only to functions here; this is not sent")


def add_layer(builder: Builder, resource: Resource) -> None:
    """A layer version whose content is on this machine, by the ARN its Ref gives."""
    props = Properties(builder, resource)
    arn = builder.resolver.resolve({"Ref": resource.logical})
    asset = resource.metadata.get("aws:asset:path")
    if isinstance(asset, str) and resource.metadata.get("aws:asset:property") == "Content":
        where, content = "Content", asset
    elif resource.kind == "AWS::Serverless::LayerVersion":
        where, content = "ContentUri", props.value("ContentUri")
    else:
        where = "Content"
        code = props.mapping("Content")
        key = code.text("S3Key", "") if code is not None else ""
        content = str(builder.cdk_assets[key]) if key in builder.cdk_assets else MISSING
    if not isinstance(content, str) or content.startswith("s3://"):
        props.notice(
            where,
            "the layer's content is not on this machine; functions using it run without it",
        )
        return
    path = (builder.base / content).resolve()
    zipped = path.is_file() and path.suffix in (".zip", ".jar")
    if not path.is_dir() and not zipped:
        what = "is not a directory nor a zip" if path.exists() else "is missing"
        props.notice(where, f"{content} {what}; functions using the layer run without it")
        return
    method = resource.metadata.get("BuildMethod")
    if isinstance(method, str):
        props.notice(
            where,
            f"Metadata BuildMethod {method}: lrun does not build layers; {content} is laid over "
            "/opt as it is (serve sam build's output for the built layer)",
        )
    builder.layers[arn] = path


def note_other(builder: Builder, resources: list[Resource]) -> None:
    """One notice per resource type lrun neither runs nor ignores harmlessly, naming them all."""
    by_kind: dict[str, list[Resource]] = {}
    for resource in resources:
        if resource.kind in SILENT or resource.kind.startswith(SILENT_PREFIXES):
            continue
        by_kind.setdefault(resource.kind, []).append(resource)
    for kind, found in by_kind.items():
        names = ", ".join(r.logical for r in found)
        if kind.startswith("Custom::") or kind == "AWS::CloudFormation::CustomResource":
            what = "custom resources are not run; Fn::GetAtt of their attributes has no value"
        else:
            what = _WHAT_INSTEAD.get(kind, "not emulated by lrun; nothing is made for it")
        where = f"Resources.{found[0].logical}" if len(found) == 1 else f"Resources ({names})"
        builder.notice(found[0].line, where, f"{kind}: {what}")


def is_layer(resource: Resource) -> bool:
    return resource.kind in LAYER_TYPES
