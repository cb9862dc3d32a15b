"""What starts the template's functions, as the manifest's event sources and async settings.

A SAM function's ``Events`` (``SQS``, ``Schedule``, ``ScheduleV2``, ``S3``; ``Api`` and
``HttpApi`` through ``orchestrator.template.apis``), its
``EventInvokeConfig`` and dead-letter queue; and the resources that do the same outside a
function: ``AWS::Lambda::EventSourceMapping`` (SQS), ``AWS::Lambda::EventInvokeConfig``,
``AWS::Events::Rule`` and ``AWS::Scheduler::Schedule`` with a schedule expression, a bucket's
``NotificationConfiguration`` (and CDK's ``Custom::S3BucketNotifications``). Event kinds lrun
does not emulate each get a notice.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.manifest.event_filter import FilterError
from orchestrator.manifest.event_filter import parse as compile_filter
from orchestrator.manifest.schedule import ScheduleError, parse
from orchestrator.template.apis import Apis
from orchestrator.template.builder import Builder
from orchestrator.template.document import Located
from orchestrator.template.functions import lambda_name
from orchestrator.template.intrinsics import Resource
from orchestrator.template.properties import MISSING, Properties, arn_parts
from orchestrator.template.resources import queue_named

_S3_EVENTS = {"s3:ObjectCreated": "created", "s3:ObjectRemoved": "removed"}
_NOT_EMULATED = {
    "SNS": "SNS is not emulated; invoke the function with an SNS event yourself",
    "EventBridgeRule": "EventBridge event buses are not emulated; invoke the function with "
    "the event yourself",
    "CloudWatchEvent": "EventBridge event buses are not emulated; invoke the function with "
    "the event yourself",
    "DynamoDB": "DynamoDB streams are not emulated",
    "Kinesis": "Kinesis streams are not emulated",
    "MSK": "Kafka is not emulated",
    "SelfManagedKafka": "Kafka is not emulated",
    "MQ": "Amazon MQ is not emulated",
    "DocumentDB": "DocumentDB streams are not emulated",
    "CloudWatchLogs": "CloudWatch Logs subscriptions are not emulated",
    "IoTRule": "IoT rules are not emulated",
    "AlexaSkill": "Alexa skills are not emulated",
    "Cognito": "Cognito triggers are not emulated",
}
_HOW = " (lrun invoke FN --payload-file event.json, or boto3's invoke)"


def add_function_triggers(builder: Builder, resource: Resource, apis: Apis) -> None:
    """The events and async settings of a served function (``builder.functions``)."""
    name = builder.functions[resource.logical]
    props = Properties(builder, resource)
    events = props.mapping("Events") if resource.kind == "AWS::Serverless::Function" else None
    if events is not None:
        for event_name in events.values:
            spec = events.mapping(event_name)
            if spec is not None:
                _event(builder, name, spec, apis)
    config = props.mapping("EventInvokeConfig")
    if config is not None:
        _invoke_config(builder, name, config)
    dead_letter = props.mapping("DeadLetterQueue") or props.mapping("DeadLetterConfig")
    if dead_letter is not None:
        _dead_letter(builder, name, dead_letter)


def _append(builder: Builder, function: str, source: dict[str, Any], props: Properties) -> None:
    events = builder.data["functions"][function].setdefault("events", [])
    builder.origins[f"functions.{function}.events[{len(events)}]"] = props.origin()
    events.append(source)


def _event(builder: Builder, function: str, spec: Properties, apis: Apis) -> None:
    kind = spec.text("Type", "")
    inner = spec.mapping("Properties")
    props = inner or Properties(builder, spec.resource, Located(), spec.at("Properties"))
    props.where = spec.where  # name the event, not its Properties
    if kind == "SQS":
        _queue_source(builder, function, props, "Queue")
    elif kind in ("Schedule", "ScheduleV2"):
        prop = "Schedule" if kind == "Schedule" else "ScheduleExpression"
        _schedule(builder, function, props, prop)
    elif kind == "S3":
        _s3_event(builder, function, props)
    elif kind in ("Api", "HttpApi"):
        route = apis.route(function, kind, props)
        if route is not None:
            routes = builder.data["functions"][function].setdefault("http", [])
            builder.origins[f"functions.{function}.http[{len(routes)}]"] = props.origin()
            routes.append(route)
    else:
        why = _NOT_EMULATED.get(kind, f"event type {kind!r} is not emulated by lrun")
        spec.notice("Type", why + _HOW)


def _queue_source(builder: Builder, function: str, props: Properties, prop: str) -> None:
    if props.flag("Enabled", True) is False:
        props.notice("Enabled", "disabled in the template; lrun does not poll the queue")
        return
    queue = queue_named(builder, props.value(prop), props, prop)
    if queue is None:
        return
    source: dict[str, Any] = {"queue": queue}
    for key, field in (
        ("BatchSize", "batch_size"),
        ("MaximumBatchingWindowInSeconds", "maximum_batching_window"),
    ):
        found = props.integer(key)
        if found is not MISSING:
            source[field] = found
    scaling = props.mapping("ScalingConfig")
    if scaling is not None and (most := scaling.integer("MaximumConcurrency")) is not MISSING:
        source["maximum_concurrency"] = most
    types = props.value("FunctionResponseTypes", [])
    if isinstance(types, list) and "ReportBatchItemFailures" in types:
        source["report_batch_item_failures"] = True
    criteria = props.mapping("FilterCriteria")
    if criteria is not None:
        patterns = []
        for index, item in enumerate(criteria.value("Filters", [])):
            pattern = item.get("Pattern") if isinstance(item, dict) else None
            try:
                patterns.append(json.loads(pattern) if isinstance(pattern, str) else pattern)
            except ValueError:
                criteria.problem(f"Filters[{index}].Pattern", "is not JSON")
        if patterns:
            try:
                for pattern in patterns:
                    compile_filter(json.dumps(pattern))
            except (FilterError, TypeError, ValueError) as exc:
                criteria.notice(
                    "Filters",
                    f"lrun cannot apply this filter ({exc}); the queue is not polled for this "
                    "function, so that no message the filter would stop reaches it",
                )
                return
            source["filter"] = patterns
    _append(builder, function, source, props)


def _schedule(
    builder: Builder, function: str, props: Properties, prop: str, state_prop: str = "State"
) -> None:
    expression = props.text(prop)
    if expression is MISSING:
        props.notice(None, f"no {prop}; the schedule is left out")
        return
    enabled = props.flag("Enabled", True)
    state = props.text(state_prop, "ENABLED")
    if enabled is False or state == "DISABLED":
        props.notice(None, "disabled in the template; lrun does not run the schedule")
        return
    try:
        parse(expression)
    except ScheduleError as exc:
        props.notice(prop, f"{exc}; lrun does not run this schedule")
        return
    zone = props.text("ScheduleExpressionTimezone", "UTC")
    if zone not in ("UTC", "Etc/UTC"):
        props.notice(
            "ScheduleExpressionTimezone", f"lrun evaluates the schedule in UTC, not {zone}"
        )
    if "Input" in props:
        props.notice(
            "Input",
            "lrun sends the scheduled event EventBridge makes, not this Input",
        )
    _append(builder, function, {"schedule": expression}, props)


def _s3_event(builder: Builder, function: str, props: Properties) -> None:
    bucket = props.value("Bucket")
    if not isinstance(bucket, str) or bucket not in builder.buckets:
        props.notice("Bucket", f"{bucket!r} is not a bucket of this template; lrun leaves it out")
        return
    events = props.value("Events", [])
    _bucket_source(builder, function, props, bucket, events, _s3_rules(props))


def _s3_rules(props: Properties) -> list[Any]:
    found = props.value("Filter", {})
    key = found.get("S3Key", {}) if isinstance(found, dict) else {}
    rules = key.get("Rules", []) if isinstance(key, dict) else []
    return rules if isinstance(rules, list) else []


def _bucket_source(
    builder: Builder,
    function: str,
    props: Properties,
    bucket: str,
    events: Any,
    rules: list[Any],
) -> None:
    kinds: list[str] = []
    for event in events if isinstance(events, list) else [events]:
        kind = next((v for k, v in _S3_EVENTS.items() if str(event).startswith(k)), None)
        if kind is None:
            props.notice("Events", f"S3 event {event} is not emulated (only created and removed)")
        elif kind not in kinds:
            kinds.append(kind)
    if not kinds:
        return
    source: dict[str, Any] = {"bucket": bucket, "events": kinds}
    for rule in rules:
        if isinstance(rule, dict):
            name = str(rule.get("Name", "")).lower()
            if name in ("prefix", "suffix"):
                source[name] = str(rule.get("Value", ""))
    _append(builder, function, source, props)


def _invoke_config(builder: Builder, function: str, config: Properties) -> None:
    entry = builder.data["functions"][function].setdefault("async", {})
    path = f"functions.{function}.async"
    builder.origins[path] = config.origin()
    for prop, field in (
        ("MaximumEventAgeInSeconds", "maximum_event_age"),
        ("MaximumRetryAttempts", "maximum_retry_attempts"),
    ):
        found = config.integer(prop)
        if found is not MISSING:
            entry[field] = found
            builder.origins[f"{path}.{field}"] = config.origin(prop)
    destinations = config.mapping("DestinationConfig")
    if destinations is None:
        return
    for prop, field in (("OnSuccess", "on_success"), ("OnFailure", "on_failure")):
        spec = destinations.mapping(prop)
        if spec is None:
            continue
        target = _destination(builder, function, spec, prop)
        if target is not None:
            entry[field] = target
            builder.origins[f"{path}.{field}"] = spec.origin()


def _destination(
    builder: Builder, function: str, spec: Properties, prop: str
) -> dict[str, str] | None:
    kind = spec.text("Type", "")
    arn = spec.value("Destination", None)
    if kind == "" and isinstance(arn, str):  # AWS::Lambda::EventInvokeConfig names by ARN
        parts = arn_parts(arn)
        kind = {"sqs": "SQS", "lambda": "Lambda"}.get(parts[0], parts[0]) if parts else ""
    if kind == "SQS":
        if arn is None:  # SAM makes a queue for it
            name = f"{function}-{prop}"
            builder.queues[name] = ""
            builder.put(f"queues.{name}", None, spec.origin())
            spec.notice("Type", f"lrun makes the local queue {name} for this destination")
            return {"queue": name}
        queue = queue_named(builder, arn, spec, "Destination")
        return {"queue": queue} if queue is not None else None
    if kind == "Lambda":
        target = lambda_name(builder, arn)
        if target is None:
            spec.notice("Destination", f"{arn} is not a function lrun serves; left out")
            return None
        return {"function": target}
    spec.notice("Type", f"{kind or 'this'} destination is not emulated (SQS and Lambda are)")
    return None


def _dead_letter(builder: Builder, function: str, spec: Properties) -> None:
    arn = spec.value("TargetArn")
    parts = arn_parts(arn) if isinstance(arn, str) else None
    if parts is None or parts[0] != "sqs":
        spec.notice("TargetArn", "only SQS dead-letter queues are emulated; left out")
        return
    queue = queue_named(builder, arn, spec, "TargetArn")
    if queue is not None:
        builder.data["functions"][function].setdefault("async", {})["dead_letter_queue"] = queue
        builder.origins[f"functions.{function}.async.dead_letter_queue"] = spec.origin()


# Resources that start functions


def _served(builder: Builder, props: Properties, prop: str, value: Any) -> str | None:
    name = lambda_name(builder, value)
    if name is None:
        props.notice(prop, f"{value} is not a function lrun serves; left out")
    return name


def add_trigger_resource(builder: Builder, resource: Resource) -> None:
    props = Properties(builder, resource)
    kind = resource.kind
    if kind == "AWS::Lambda::EventSourceMapping":
        source = props.value("EventSourceArn")
        parts = arn_parts(source) if isinstance(source, str) else None
        if parts is None or parts[0] != "sqs":
            service = parts[0] if parts else "this"
            props.notice("EventSourceArn", f"{service} event sources are not emulated (SQS is)")
            return
        function = _served(builder, props, "FunctionName", props.value("FunctionName"))
        if function is not None:
            _queue_source(builder, function, props, "EventSourceArn")
    elif kind == "AWS::Lambda::EventInvokeConfig":
        function = _served(builder, props, "FunctionName", props.value("FunctionName"))
        if function is not None:
            _invoke_config(builder, function, props)
    elif kind == "AWS::Events::Rule":
        _rule(builder, props)
    elif kind == "AWS::Scheduler::Schedule":
        target = props.mapping("Target")
        if target is not None:
            function = _served(builder, target, "Arn", target.value("Arn"))
            if function is not None:
                target.values = Located({**props.values, **target.values})
                _schedule(builder, function, target, "ScheduleExpression")
    elif kind == "AWS::S3::Bucket":
        _bucket_notifications(builder, props, builder.resolver.name_of(resource.logical))
    elif kind == "Custom::S3BucketNotifications":
        bucket = props.value("BucketName")
        if isinstance(bucket, str) and bucket in builder.buckets:
            _bucket_notifications(builder, props, bucket)


def _rule(builder: Builder, props: Properties) -> None:
    if "EventPattern" in props:
        props.notice("EventPattern", "EventBridge event buses are not emulated" + _HOW)
        return
    targets = props.value("Targets", [])
    for target in targets if isinstance(targets, list) else []:
        if not isinstance(target, dict):
            continue
        function = _served(builder, props, "Targets", target.get("Arn"))
        if function is not None:
            inner = Located({k: v for k, v in props.values.items() if k != "Targets"})
            if "Input" in target:
                inner["Input"] = target["Input"]
            schedule = Properties(builder, props.resource, inner, props.where)
            _schedule(builder, function, schedule, "ScheduleExpression")


def _bucket_notifications(builder: Builder, props: Properties, bucket: str) -> None:
    config = props.mapping("NotificationConfiguration")
    if config is None:
        return
    for prop in ("LambdaConfigurations", "LambdaFunctionConfigurations"):
        items = config.value(prop, [])
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            arn = item.get("Function", item.get("LambdaFunctionArn"))
            function = _served(builder, config, prop, arn)
            if function is None:
                continue
            events = item.get("Events", item.get("Event", []))
            key = (item.get("Filter") or {}).get("S3Key") or (item.get("Filter") or {}).get("Key")
            rules = (key or {}).get("Rules") or (key or {}).get("FilterRules") or []
            _bucket_source(builder, function, config, bucket, events, rules)
