"""The manifest: which functions exist and how each one is configured.

This module owns ``lrun.yaml``. ``load`` parses it once into frozen ``FunctionSpec`` values and
validates everything Lambda would (names, runtimes, limits, environment rules); nothing downstream
re-checks. Every problem found is collected, located by file, line and key path, and raised
together as one ``ManifestError``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Literal, cast

import yaml

from orchestrator.aws import function_arn as function_arn
from orchestrator.errors import ManifestError, Problem, ResourceNotFound
from orchestrator.errors import did_you_mean as _did_you_mean
from orchestrator.errors import show as _show
from orchestrator.manifest.api_reader import read_apis
from orchestrator.manifest.apis import ApiSpec
from orchestrator.manifest.layers import Layer, read_layers
from orchestrator.manifest.logging_config import (
    APPLICATION_LEVELS,
    LOG_FORMATS,
    LOG_GROUP_MAX,
    LOGGING_KEYS,
    SYSTEM_LEVELS,
    LogFormat,
    LoggingConfig,
    normalised,
)
from orchestrator.manifest.path import DEFAULT_MANIFEST as DEFAULT_MANIFEST
from orchestrator.manifest.path import find as find
from orchestrator.manifest.path import missing
from orchestrator.manifest.reader import Reader
from orchestrator.manifest.route_reader import check_routes, read_routes
from orchestrator.manifest.trigger_reader import (
    check_references,
    read_async,
    read_events,
    read_resources,
)
from orchestrator.manifest.triggers import BucketSpec, QueueSpec, Triggers
from orchestrator.manifest.url_reader import check_url_ports, read_url
from orchestrator.manifest.urls import UrlSpec
from orchestrator.manifest.websocket_reader import check_websocket_routes, read_websocket_routes

NetworkMode = Literal["public", "private"]

RUNTIME_NAMES = (
    "python3.11",
    "python3.13",
    "python3.14",
    "nodejs20.x",
    "nodejs22.x",
    "nodejs24.x",
    "ruby3.3",
    "provided",
    "java21",
)  # images: sandbox/images

_NEEDS_HANDLER = ("python", "nodejs", "java")
_HANDLER_EXAMPLES = {
    "node": ("MODULE.FUNCTION", "index.handler"),
    "java": ("CLASS::METHOD", "example.Hello::handleRequest"),
}

MEMORY_RANGE = (128, 10240)  # MB
TIMEOUT_RANGE = (1, 900)  # seconds
DEFAULT_TIMEOUT = 3  # memory and ephemeral storage default to the bottom of their range
EPHEMERAL_RANGE = (512, 10240)  # MB
ENV_SIZE_LIMIT = 4096  # characters of the variables' compact JSON
DESCRIPTION_MAX = 256
HANDLER_MAX = 128
NETWORK_MODES: tuple[NetworkMode, ...] = ("public", "private")

# Allowed top-level keys: extend this (and ``_FunctionReader.manifest``) for new resource kinds.
TOP_LEVEL_KEYS = frozenset({"functions", "queues", "buckets", "apis"})
RESERVED_ENV_NAMES = frozenset(
    "_HANDLER _X_AMZN_TRACE_ID AWS_REGION AWS_DEFAULT_REGION AWS_EXECUTION_ENV"
    " AWS_LAMBDA_FUNCTION_NAME AWS_LAMBDA_FUNCTION_MEMORY_SIZE AWS_LAMBDA_FUNCTION_VERSION"
    " AWS_LAMBDA_INITIALIZATION_TYPE AWS_LAMBDA_LOG_GROUP_NAME AWS_LAMBDA_LOG_STREAM_NAME"
    " AWS_ACCESS_KEY AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN"
    " AWS_LAMBDA_RUNTIME_API LAMBDA_TASK_ROOT LAMBDA_RUNTIME_DIR".split()
)

_FUNCTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_ENV_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_]+")
_WORD = re.compile(r"\S+")
_LOG_GROUP = re.compile(r"[\.\-_/#A-Za-z0-9]+")  # botocore's pattern
_ENV_PREFIX = (
    "Lambda was unable to configure your environment variables because the environment variables "
    "you have provided"
)
_RESERVED_TEXT = (
    "reserved keys that are currently not supported for modification. "
    "Reserved keys used in this request: "
)
_DESCRIPTION_RULE = f"description must be a string of at most {DESCRIPTION_MAX} characters"
_EXAMPLE = "functions: {hello: {runtime: python3.13, handler: app.handler, code: ./hello}}"


@dataclass(frozen=True)
class FunctionSpec:
    """One function's validated configuration; ``code`` is absolute and resolved."""

    name: str
    runtime: str | None  # None for image functions
    handler: str | None
    image: str | None
    command: tuple[str, ...] | None
    entrypoint: tuple[str, ...] | None
    code: Path | None
    memory: int
    timeout: int
    ephemeral_storage: int
    environment: Mapping[str, str]
    reserved_concurrency: int | None
    provisioned_concurrency: int
    network: NetworkMode
    description: str
    # Laid over /opt in this order, as Lambda extracts a function's layers there.
    layers: tuple[Layer, ...] = ()
    logging: LoggingConfig = LoggingConfig()

    def config_digest(self) -> str:
        """First 16 hex chars of the sha256 of a canonical JSON of every field."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["environment"] = dict(self.environment)
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)  # Path: str
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def __hash__(self) -> int:
        return hash(self.config_digest())


# A function's settings: its spec's fields, and what starts it besides a call (not part of the
# spec, so editing them does not replace its environments).
FUNCTION_KEYS = frozenset(f.name for f in fields(FunctionSpec)) - {"name"} | {
    "async",
    "events",
    "http",  # API Gateway routes to the function (orchestrator.manifest.apis)
    "websocket",  # WebSocket API routes to the function (orchestrator.manifest.websocket_reader)
    "tags",  # Lambda's tags: what ListTags shows, not part of how the function runs
    "url",  # its function URL (orchestrator.manifest.urls)
}
TAGS_MAX = 50  # per function, as on Lambda
TAG_KEY_MAX, TAG_VALUE_MAX = 128, 256


@dataclass(frozen=True)
class Manifest:
    """A loaded manifest: its absolute path and its functions, in file order."""

    path: Path
    functions: Mapping[str, FunctionSpec]
    triggers: Mapping[str, Triggers] = field(default_factory=lambda: MappingProxyType({}))
    tags: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: MappingProxyType({}))
    queues: Mapping[str, QueueSpec] = field(default_factory=lambda: MappingProxyType({}))
    buckets: Mapping[str, BucketSpec] = field(default_factory=lambda: MappingProxyType({}))
    apis: Mapping[str, ApiSpec] = field(default_factory=lambda: MappingProxyType({}))
    # What a template asked for that lrun does otherwise or not at all, one line each (a
    # manifest written for lrun has none).
    notices: tuple[Problem, ...] = ()
    urls: Mapping[str, UrlSpec] = field(default_factory=lambda: MappingProxyType({}))

    def function(self, name: str) -> FunctionSpec:
        """The function called ``name``; ``ResourceNotFound`` naming the known ones otherwise."""
        spec = self.functions.get(name)
        if spec is not None:
            return spec
        hint = _did_you_mean(name, self.functions)
        message = f"Function not found: {function_arn(name, '$LATEST')}. Functions in {self.path}: "
        raise ResourceNotFound(message + ", ".join(self.functions) + (f" ({hint})" if hint else ""))

    @property
    def directory(self) -> Path:
        """The manifest's directory: paths in it are relative to this one."""
        return self.path.parent

    @property
    def file_destinations(self) -> frozenset[str]:
        """The names of the files the manifest declares as destinations: the only ones the API
        may name (as ``arn:lrun:file:::NAME``)."""
        return frozenset(
            destination.target
            for triggers in self.triggers.values()
            for destination in (triggers.async_config.on_success, triggers.async_config.on_failure)
            if destination is not None and destination.kind == "file"
        )

    def __hash__(self) -> int:
        return hash((self.path, *(spec.config_digest() for spec in self.functions.values())))


def load(path: Path) -> Manifest:
    """Parse and validate the manifest at ``path``; ``ManifestError`` lists every problem."""
    path = Path(os.path.abspath(path))
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError([missing(path)]) from None
    except (OSError, UnicodeDecodeError) as exc:
        message = f"cannot be read ({exc}); pass a readable, UTF-8 manifest file"
        raise ManifestError([Problem(file, None, "(file)", message)]) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        if root is not None:  # build every value now, so a bad tag is one clear error
            yaml.constructor.SafeConstructor().construct_object(root, deep=True)
    except yaml.YAMLError as exc:
        raise ManifestError([_yaml_problem(file, exc)]) from None
    if root is None:
        message = f"the manifest is empty; define at least one function, e.g. {_EXAMPLE}"
        raise ManifestError([Problem(file, None, "(file)", message)])
    return build(path, root)


def build(path: Path, root: yaml.Node, notices: Sequence[Problem] = ()) -> Manifest:
    """Validate a composed manifest (``lrun.yaml``'s, or the one a template becomes: see
    ``orchestrator.template``) whose paths are relative to ``path``'s directory; ``notices``
    are kept on the result as they are."""
    reader = _FunctionReader(str(path), path.parent)
    functions = reader.manifest(root)
    check_routes(reader)
    check_websocket_routes(reader)
    check_url_ports(reader)
    check_references(reader, functions)
    if reader.problems:
        raise ManifestError(sorted(reader.problems, key=lambda p: p.line or 0))
    return Manifest(
        path=path,
        functions=MappingProxyType(functions),
        triggers=MappingProxyType(reader.triggers),
        tags=MappingProxyType(reader.tags),
        queues=MappingProxyType(reader.queues),
        buckets=MappingProxyType(reader.buckets),
        apis=MappingProxyType(reader.apis),
        notices=tuple(notices),
        urls=MappingProxyType(reader.urls),
    )


def _yaml_problem(file: str, exc: yaml.YAMLError) -> Problem:
    fix = "fix the syntax (indentation, ':' after each key, matching quotes, no tags)"
    if isinstance(exc, yaml.MarkedYAMLError) and (mark := exc.problem_mark) is not None:
        what = ", ".join(filter(None, (exc.context, exc.problem)))
        message = f"invalid YAML: {what} (column {mark.column + 1}); {fix}"
        return Problem(file, mark.line + 1, "(yaml)", message)
    return Problem(file, None, "(yaml)", f"invalid YAML: {exc}; {fix}")


class _FunctionReader(Reader):
    """Reads the top level and each function's settings."""

    def manifest(self, root: yaml.Node) -> dict[str, FunctionSpec]:
        if not isinstance(root, yaml.MappingNode):
            fix = "the manifest must be a mapping with a 'functions' key"
            self.add(root, "(top level)", f"{_show(self.value(root))} is not a mapping; {fix}")
            return {}
        items = self.items(root, "", TOP_LEVEL_KEYS)
        read_resources(self, items)
        read_apis(self, items)
        key, node = items.get("functions", (None, None))
        if not isinstance(node, yaml.MappingNode) or not node.value:
            what = "is missing" if node is None else f"{_show(self.value(node))} has no functions"
            self.add(key, "functions", f"{what}; define at least one function, e.g. {_EXAMPLE}")
            return {}
        entries = self.items(node, "functions", None).items()
        specs = {name: self.function(name, fkey, fnode) for name, (fkey, fnode) in entries}
        return {name: spec for name, spec in specs.items() if spec is not None}

    def function(self, name: str, key: yaml.Node, node: yaml.Node) -> FunctionSpec | None:
        path = self.path = f"functions.{name}"
        before = len(self.problems)
        if not _FUNCTION_NAME.fullmatch(name):
            fix = "use 1 to 64 letters, digits, hyphens or underscores"
            self.add(key, path, f"function name {name!r} is invalid; {fix}")
        if not isinstance(node, yaml.MappingNode):
            fix = "give the function's settings, e.g. runtime, handler and code"
            self.add(key, path, f"{_show(self.value(node))} is not a mapping; {fix}")
            return None
        items = self.fields = self.items(node, path, FUNCTION_KEYS)
        is_image, has_runtime = "image" in items, "runtime" in items
        if has_runtime and is_image:
            fix = "remove image to run code on a runtime, or remove runtime to run the image"
            self.add(items["image"][0], f"{path}.image", f"runtime and image are both set; {fix}")
        elif not has_runtime and not is_image:
            fix = f"set runtime (one of {', '.join(RUNTIME_NAMES)}) or image (a local image)"
            self.add(key, path, f"neither runtime nor image is set; {fix}")
        runtime = self.choice("runtime", RUNTIME_NAMES) or ""
        if is_image and not has_runtime and "handler" in items:
            fix = "use command: [app.handler] to override the image's CMD"
            message = f"handler is not allowed for image functions; {fix}"
            self.add(items["handler"][0], f"{path}.handler", message)
        elif "handler" not in items and not is_image and runtime.startswith(_NEEDS_HANDLER):
            form, example = _HANDLER_EXAMPLES.get(runtime[:4], ("MODULE.FUNCTION", "app.handler"))
            fix = f"add handler: {form}, e.g. handler: {example}"
            self.add(key, path, f"handler is required for runtime {runtime!r}; {fix}")
        if is_image and "layers" in items:
            fix = "build the layers' files into the image, as Lambda requires for image functions"
            self.add(
                items["layers"][0], f"{path}.layers", f"layers are not allowed with image; {fix}"
            )
        if "code" not in items and has_runtime and not is_image:
            fix = f"add code: the directory holding the function's files, relative to {self.base}"
            self.add(key, path, f"code is required for runtime functions; {fix}")
        handler_rule = f"use 1 to {HANDLER_MAX} characters without whitespace, e.g. app.handler"
        spec = FunctionSpec(
            name=name,
            runtime=runtime or None,
            handler=self.text("handler", HANDLER_MAX, handler_rule),
            image=self.text("image", None, "use a local image name like my-image:tag"),
            command=self.strings("command", "app.handler", is_image),
            entrypoint=self.strings("entrypoint", "/lambda-entrypoint.sh", is_image),
            code=self.code(),
            memory=self.integer("memory", *MEMORY_RANGE, "MB", MEMORY_RANGE[0]),
            timeout=self.integer("timeout", *TIMEOUT_RANGE, "seconds", DEFAULT_TIMEOUT),
            ephemeral_storage=self.integer("ephemeral_storage", *EPHEMERAL_RANGE, "MB", 512),
            environment=MappingProxyType(self.environment()),
            reserved_concurrency=self.integer("reserved_concurrency", 0, None, "", None),
            provisioned_concurrency=self.integer("provisioned_concurrency", 0, None, "", 0),
            network=cast(NetworkMode, self.choice("network", NETWORK_MODES) or "public"),
            description=self.text("description", DESCRIPTION_MAX, _DESCRIPTION_RULE) or "",
            layers=read_layers(self),
            logging=self.logging(),
        )
        reserved, provisioned = spec.reserved_concurrency, spec.provisioned_concurrency
        if reserved is not None and provisioned > reserved:
            what = f"{provisioned} is more than reserved_concurrency {reserved}"
            fix = "provisioned_concurrency must be at most reserved_concurrency"
            node = items["provisioned_concurrency"][1]
            self.add(node, f"{path}.provisioned_concurrency", f"{what}; {fix}")
        self.triggers[name] = Triggers(read_async(self), read_events(self))
        read_routes(self, name)
        read_websocket_routes(self, name)
        read_url(self, name)
        if (tags := self.function_tags()) is not None:
            self.tags[name] = MappingProxyType(tags)
        return spec if len(self.problems) == before else None

    def code(self) -> Path | None:
        if (got := self.get("code")) is None:
            return None
        node, value, where = got
        if not isinstance(value, str) or not value:
            fix = "code must be a directory path relative to the manifest, e.g. code: ./hello"
            self.add(node, where, f"{_show(value)} is not a path; {fix}")
            return None
        resolved = (self.base / Path(value).expanduser()).resolve()
        if resolved.is_dir():
            return resolved
        what = f"{value!r} {'is not a directory' if resolved.exists() else 'does not exist'}"
        fix = f"code must be a directory holding the function's files, relative to {self.base}"
        self.add(node, where, f"{what} ({resolved}); {fix}")
        return None

    def logging(self) -> LoggingConfig:
        """``logging:``, Lambda's LoggingConfig in the manifest's spelling."""
        if (got := self.get("logging")) is None:
            return LoggingConfig()
        node, _, where = got
        example = "logging: {format: JSON, application_log_level: DEBUG}"
        with self.section(node, where, LOGGING_KEYS) as ok:
            if not ok:
                return LoggingConfig()
            log_format = self.upper_choice("format", LOG_FORMATS) or "Text"
            application = self.upper_choice("application_log_level", APPLICATION_LEVELS)
            system = self.upper_choice("system_log_level", SYSTEM_LEVELS)
            group_rule = (
                f"use 1 to {LOG_GROUP_MAX} letters, digits and . - _ / #, e.g. /aws/lambda/app"
            )
            group = self.text("log_group", LOG_GROUP_MAX, group_rule)
            if group is not None and not _LOG_GROUP.fullmatch(group):
                self.add(
                    self.fields["log_group"][1],
                    f"{where}.log_group",
                    f"{group!r} is not a valid log_group; {group_rule}",
                )
                group = None
            if log_format == "Text" and (application or system):
                fix = f"set format: JSON to use log levels, e.g. {example}"
                self.add(node, where, f"log levels need the JSON format (format is Text); {fix}")
        chosen = cast(LogFormat, log_format)
        return normalised(LoggingConfig(chosen, application, system, group))

    def upper_choice(self, field: str, choices: tuple[str, ...]) -> str | None:
        """A choice among ``choices`` in any letter case, returned as Lambda spells it."""
        if (got := self.get(field)) is None:
            return None
        node, value, where = got
        if isinstance(value, str):
            for choice in choices:
                if choice.upper() == value.upper():
                    return choice
        hint = _did_you_mean(value, choices) if isinstance(value, str) else ""
        fix = f"{hint + ' ' if hint else ''}{field} must be one of: {', '.join(choices)}"
        self.add(node, where, f"unknown {field} {_show(value)}; {fix}")
        return None

    def function_tags(self) -> dict[str, str] | None:
        """``tags:``, as TagResource would take them (None when the function declares none)."""
        if (got := self.get("tags")) is None:
            return None
        node, _, where = got
        if not isinstance(node, yaml.MappingNode):
            fix = "tags must map keys to values, e.g. tags: {team: payments}"
            self.add(node, where, f"{_show(self.value(node))} is not a mapping; {fix}")
            return None
        result: dict[str, str] = {}
        for key, (key_node, value_node) in self.items(node, where, None).items():
            if not 1 <= len(key) <= TAG_KEY_MAX or key.lower().startswith("aws:"):
                fix = f"use 1 to {TAG_KEY_MAX} characters, not starting with aws: (AWS's own)"
                self.add(key_node, f"{where}.{key}", f"invalid tag key {key!r}; {fix}")
            value = self.value(value_node)
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                fix = f"quote it, e.g. {key}: '{'' if value is None else _show(value)}'"
                self.add(value_node, f"{where}.{key}", f"{_show(value)} is not a string; {fix}")
            elif len(str(value)) > TAG_VALUE_MAX:
                fix = f"use at most {TAG_VALUE_MAX} characters"
                self.add(value_node, f"{where}.{key}", f"tag value is too long; {fix}")
            else:
                result[key] = str(value)
        if len(result) > TAGS_MAX:
            self.add(node, where, f"{len(result)} tags; a function has at most {TAGS_MAX}")
        return result

    def environment(self) -> dict[str, str]:
        if (got := self.get("environment")) is None:
            return {}
        node, _, where = got
        if not isinstance(node, yaml.MappingNode):
            fix = "environment must map variable names to values, e.g. environment: {KEY: value}"
            self.add(node, where, f"{_show(self.value(node))} is not a mapping; {fix}")
            return {}
        result: dict[str, str] = {}
        for name, (name_node, value_node) in self.items(node, where, None).items():
            if name in RESERVED_ENV_NAMES:  # Lambda's words; one problem per key, to locate each
                message = f"{_ENV_PREFIX} contains {_RESERVED_TEXT}{name}"
                self.add(name_node, f"{where}.{name}", message)
            elif not _ENV_NAME.fullmatch(name):
                fix = "start with a letter, then 1 or more letters, digits or underscores"
                self.add(name_node, f"{where}.{name}", f"invalid variable name {name!r}; {fix}")
            value = self.value(value_node)
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                result[name] = str(value)
            else:
                fix = f"quote it, e.g. {name}: '{'' if value is None else _show(value)}'"
                self.add(value_node, f"{where}.{name}", f"{_show(value)} is not a string; {fix}")
        measured = json.dumps(result, separators=(",", ":"))
        if len(measured) > ENV_SIZE_LIMIT:
            message = f"{_ENV_PREFIX} exceeded the 4KB limit. String measured: {measured[:80]}..."
            self.add(self.fields["environment"][0], where, message)
        return result
