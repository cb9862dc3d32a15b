"""``AWS::Serverless::Function`` and ``AWS::Lambda::Function`` as manifest functions.

Each property becomes the manifest key lrun runs it by, or a notice saying what lrun does
instead. A function lrun cannot run at all (its code is only in S3, its runtime has no
stand-in, its image is not built) is left out with one notice; the others still run.
Triggers (``Events``, ``EventInvokeConfig``, dead-letter queues) are read afterwards, once every
function is known, by ``orchestrator.template.events``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any

from orchestrator.aws import ACCOUNT_ID, REGION
from orchestrator.errors import LambdaError
from orchestrator.state import state_dir
from orchestrator.template.builder import Builder
from orchestrator.template.intrinsics import Resource
from orchestrator.template.properties import MISSING, Properties, arn_parts
from orchestrator.template.runtimes import stand_in
from orchestrator.unzip import extract_file

SERVERLESS = "AWS::Serverless::Function"
LAMBDA = "AWS::Lambda::Function"

# Properties that change nothing about how a function runs here: IAM (lrun does not enforce
# it), signing and deployment bookkeeping.
ACCEPTED = frozenset(
    {
        "Role",
        "Policies",
        "PermissionsBoundary",
        "RolePath",
        "AssumeRolePolicyDocument",
        "KmsKeyArn",
        "CodeSigningConfigArn",
        "AutoPublishCodeSha256",
        "AutoPublishAliasAllProperties",
        "VersionDescription",
        "FunctionName",
        "PropagateTags",
        "RuntimeManagementConfig",
        "RecursiveLoop",
        "Connectors",
    }
)
# Read by ``events`` once every function is known.
TRIGGERS = frozenset({"Events", "EventInvokeConfig", "DeadLetterQueue", "DeadLetterConfig"})
# Packages the python images carry already (the AWS SDK for Python and what it needs).
_IN_PYTHON_IMAGES = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six"}
)
_INLINE_NAMES = {"python": "index.py", "nodejs": "index.js", "ruby": "index.rb"}


def host_architecture() -> str:
    return "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"


def add_function(builder: Builder, resource: Resource) -> None:
    """Put ``resource`` in the manifest as a function, or say why it is left out."""
    props = Properties(builder, resource)
    name = builder.resolver.name_of(resource.logical)
    if name in builder.data.get("functions", {}):
        props.problem(
            "FunctionName" if "FunctionName" in props else None,
            f"function name {name!r} is already used by another function of the template",
        )
        return
    entry: dict[str, Any] = {}
    reason = _runtime_and_code(props, entry, resource)
    if reason is not None:
        props.notice(reason[0], reason[1])
        return
    _settings(props, entry)
    for key in props.values:
        if key not in _HANDLED and key not in ACCEPTED and key not in TRIGGERS:
            props.notice(key, f"{key} is not used by lrun; the function runs without it")
    _logging(props, entry)
    path = f"functions.{name}"
    builder.put(path, entry, builder.origin(resource.line, f"Resources.{resource.logical}"))
    for key, (prop, _) in _ORIGINS.items():
        if key in entry:
            builder.origins[f"{path}.{key}"] = props.origin(prop)
    builder.functions[resource.logical] = name


_ORIGINS = {
    "runtime": ("Runtime", None),
    "handler": ("Handler", None),
    "code": ("CodeUri", None),
    "memory": ("MemorySize", None),
    "timeout": ("Timeout", None),
    "ephemeral_storage": ("EphemeralStorage", None),
    "environment": ("Environment", None),
    "reserved_concurrency": ("ReservedConcurrentExecutions", None),
    "provisioned_concurrency": ("ProvisionedConcurrencyConfig", None),
    "description": ("Description", None),
    "layers": ("Layers", None),
    "tags": ("Tags", None),
    "logging": ("LoggingConfig", None),
    "image": ("ImageUri", None),
    "command": ("ImageConfig", None),
    "entrypoint": ("ImageConfig", None),
}
_HANDLED = frozenset(
    {
        "Runtime",
        "Handler",
        "CodeUri",
        "InlineCode",
        "Code",
        "PackageType",
        "ImageUri",
        "ImageConfig",
        "MemorySize",
        "Timeout",
        "EphemeralStorage",
        "Environment",
        "ReservedConcurrentExecutions",
        "ProvisionedConcurrencyConfig",
        "AutoPublishAlias",
        "Description",
        "Layers",
        "Tags",
        "Architectures",
        "VpcConfig",
        "FileSystemConfigs",
        "Tracing",
        "TracingConfig",
        "SnapStart",
        "DeploymentPreference",
        "FunctionUrlConfig",
        "LoggingConfig",
    }
)


def _runtime_and_code(
    props: Properties, entry: dict[str, Any], resource: Resource
) -> tuple[str | None, str] | None:
    """Fill runtime, handler and code (or image); ``(property, why)`` if the function cannot run."""
    package = props.text("PackageType", "Zip")
    if package == "Image":
        return _image(props, entry, resource)
    runtime = props.text("Runtime")
    if runtime is MISSING:
        return "Runtime", "no Runtime; give the function one (e.g. Runtime: python3.13)"
    chosen, why = stand_in(runtime)
    if chosen is None:
        return "Runtime", why
    if why:
        props.notice("Runtime", why)
    entry["runtime"] = chosen
    handler = props.text("Handler")
    if handler is not MISSING:
        entry["handler"] = handler
    code, reason = _code(props, resource, chosen, handler if handler is not MISSING else "")
    if code is None:
        return reason
    entry["code"] = str(code)
    _dependencies(props, code, chosen)
    return None


def _image(
    props: Properties, entry: dict[str, Any], resource: Resource
) -> tuple[str | None, str] | None:
    code = props.mapping("Code")
    uri = props.text("ImageUri")
    if uri is MISSING and code is not None:
        uri = code.text("ImageUri")
    if uri is MISSING:
        context = resource.metadata.get("DockerContext")
        how = (
            f"build it (docker build -t NAME {context}) and set ImageUri: NAME"
            if isinstance(context, str)
            else "set ImageUri to a local image"
        )
        return "PackageType", f"an image function without ImageUri is not served; {how}"
    entry["image"] = uri
    config = props.mapping("ImageConfig")
    if config is not None:
        for prop, key in (("Command", "command"), ("EntryPoint", "entrypoint")):
            found = config.value(prop)
            if isinstance(found, list) and all(isinstance(v, str) for v in found):
                entry[key] = found
            elif found is not MISSING:
                config.problem(prop, "must be a list of text")
        if "WorkingDirectory" in config:
            config.notice(
                "WorkingDirectory", "lrun starts the image in its own WORKDIR; set it there"
            )
    return None


def _code(
    props: Properties, resource: Resource, runtime: str, handler: str
) -> tuple[Path | None, tuple[str | None, str]]:
    builder = props.builder
    asset = resource.metadata.get("aws:asset:path")
    if isinstance(asset, str) and resource.metadata.get("aws:asset:property") == "Code":
        return _local(props, "Code", asset, builder.base)
    if "InlineCode" in props:
        return _inline(props, "InlineCode", props.text("InlineCode"), runtime, handler)
    if resource.kind == SERVERLESS:
        if "CodeUri" not in props:
            return None, ("CodeUri", "no CodeUri; give the directory of the function's code")
        raw = props.value("CodeUri")
        if isinstance(raw, str) and not raw.startswith("s3://"):
            return _local(props, "CodeUri", raw, builder.base)
        where = raw if isinstance(raw, str) else _s3_text(raw)
        return None, ("CodeUri", _in_s3(where))
    code = props.mapping("Code")
    if code is None:
        return None, ("Code", "no Code; give ZipFile, S3Bucket and S3Key, or ImageUri")
    if "ZipFile" in code:
        return _inline(code, "ZipFile", code.text("ZipFile"), runtime, handler)
    key = code.text("S3Key", "")
    if key in builder.cdk_assets:
        return _local(props, "Code", str(builder.cdk_assets[key]), builder.base)
    bucket = code.text("S3Bucket", "")
    return None, ("Code", _in_s3(f"s3://{bucket}/{key}"))


def _s3_text(value: Any) -> str:
    if isinstance(value, dict):
        return f"s3://{value.get('Bucket', '?')}/{value.get('Key', '?')}"
    return repr(value)


def _in_s3(where: str) -> str:
    return (
        f"the code is in S3 ({where}), not on this machine; the function is not served (point "
        "it at a local directory, or serve sam build's output: -t .aws-sam/build/template.yaml)"
    )


def _local(
    props: Properties, prop: str, value: str, base: Path
) -> tuple[Path | None, tuple[str | None, str]]:
    path = (base / value).resolve()
    if path.is_dir():
        return path, (None, "")
    if path.is_file() and path.suffix.lower() in (".zip", ".jar"):
        return _unzipped(path, prop, value)
    if path.is_file():
        what = (
            f"{value} is a file, not a directory nor a .zip; point {prop} at the code's directory"
        )
        return None, (prop, f"{what}; the function is not served")
    return None, (prop, f"{value} does not exist ({path}); the function is not served")


def unpacked_zips() -> Path:
    """Where templates' zipped code is unpacked (swept by the server of what it no longer
    serves: ``orchestrator.unzip.sweep``)."""
    return state_dir() / "template-code" / "zips"


def _unzipped(path: Path, prop: str, value: str) -> tuple[Path | None, tuple[str | None, str]]:
    """A zipped package, unpacked as Lambda unpacks one (hostile input: ``orchestrator.unzip``)
    into a directory of lrun's state named by the zip's digest, never one the template names."""
    try:
        return extract_file(path, unpacked_zips()), (None, "")
    except LambdaError as exc:
        why = exc.message.rstrip(".")
        return None, (prop, f"{value} cannot be unpacked: {why}; the function is not served")


def _inline(
    props: Properties, prop: str, source: Any, runtime: str, handler: str
) -> tuple[Path | None, tuple[str | None, str]]:
    """Inline code, written where lrun keeps such code (a directory named by its digest), in
    the file CloudFormation would write it to (``index.py``, ``index.js``)."""
    if source is MISSING:
        return None, (prop, "the inline code cannot be read; the function is not served")
    language = next((k for k in _INLINE_NAMES if runtime.startswith(k)), None)
    if language is None:
        return None, (prop, f"inline code is for Python, Node.js and Ruby, not {runtime}")
    file = _INLINE_NAMES[language]
    digest = hashlib.sha256(f"{file}\0{source}".encode()).hexdigest()[:32]
    directory = state_dir() / "template-code" / digest
    if not (directory / file).is_file():
        staging = directory.with_name(f"{digest}.{os.getpid()}.tmp")
        staging.mkdir(parents=True, exist_ok=True, mode=0o755)
        (staging / file).write_text(source, encoding="utf-8")
        (staging / file).chmod(0o644)
        try:
            staging.rename(directory)
        except OSError:  # made meanwhile by another lrun: the same content
            (staging / file).unlink(missing_ok=True)
            staging.rmdir()
    if handler and not handler.startswith("index."):
        props.notice(
            "Handler", f"inline code is written to {file}, so the handler should be index.*"
        )
    return directory, (None, "")


def _dependencies(props: Properties, code: Path, runtime: str) -> None:
    """Say so when the code lists dependencies that are not installed beside it: lrun runs the
    code as it is and builds nothing."""
    prop = "CodeUri" if "CodeUri" in props else "Code"
    method = props.resource.metadata.get("BuildMethod")
    if isinstance(method, str) and method not in ("makefile",):
        props.notice(
            prop,
            f"Metadata BuildMethod {method}: lrun does not build code; run sam build and serve "
            "its output (-t .aws-sam/build/template.yaml)",
        )
        return
    if runtime.startswith("python"):
        wanted = _requirements(code / "requirements.txt") - _IN_PYTHON_IMAGES
        if wanted and not any(code.glob("*.dist-info")):
            listed = ", ".join(sorted(wanted)[:4]) + (", ..." if len(wanted) > 4 else "")
            props.notice(
                prop,
                f"requirements.txt lists {listed}, which lrun does not install; install them "
                f"beside the code (pip install -r requirements.txt -t {code}) or serve sam "
                "build's output (-t .aws-sam/build/template.yaml)",
            )
    elif runtime.startswith("nodejs") and not (code / "node_modules").is_dir():
        try:
            package = json.loads((code / "package.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        dependencies = package.get("dependencies") if isinstance(package, dict) else None
        if isinstance(dependencies, dict) and dependencies:
            listed = ", ".join(sorted(dependencies)[:4])
            props.notice(
                prop,
                f"package.json depends on {listed}{', ...' if len(dependencies) > 4 else ''}, "
                f"and {code} has no node_modules; run npm install there or serve sam build's "
                "output (the AWS SDK for JavaScript is not in lrun's images: see the README)",
            )


def _requirements(path: Path) -> set[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return set()
    names = set()
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name = line.replace(" ", "")
            for stop in "<>=!~[;@":
                name = name.split(stop, 1)[0]
            names.add(name.lower().replace("_", "-"))
    return names


def _settings(props: Properties, entry: dict[str, Any]) -> None:
    for prop, key in (
        ("MemorySize", "memory"),
        ("Timeout", "timeout"),
        ("ReservedConcurrentExecutions", "reserved_concurrency"),
    ):
        found = props.integer(prop)
        if found is not MISSING:
            entry[key] = found
    storage = props.mapping("EphemeralStorage")
    if storage is not None and (size := storage.integer("Size")) is not MISSING:
        entry["ephemeral_storage"] = size
    provisioned = props.mapping("ProvisionedConcurrencyConfig")
    if provisioned is not None:
        count = provisioned.integer("ProvisionedConcurrentExecutions")
        if count is not MISSING:
            entry["provisioned_concurrency"] = count
    description = props.text("Description")
    if description is not MISSING:
        entry["description"] = description
    environment = _environment(props)
    if environment:
        entry["environment"] = environment
    layers = _layers(props)
    if layers:
        entry["layers"] = layers
    tags = _tags(props)
    if tags:
        entry["tags"] = tags
    _not_emulated(props)


def _environment(props: Properties) -> dict[str, str]:
    environment = props.mapping("Environment")
    if environment is None:
        return {}
    variables = environment.mapping("Variables")
    if variables is None:
        return {}
    result: dict[str, str] = {}
    for name in variables.values:
        value = variables.value(name)
        if value is MISSING:
            continue
        if isinstance(value, bool):
            result[name] = str(value).lower()
        elif isinstance(value, int | float | str):
            result[name] = str(value)
        else:
            variables.problem(name, "must be text (CloudFormation takes text only)")
    return result


def _layers(props: Properties) -> list[str]:
    found = props.value("Layers", [])
    if not isinstance(found, list):
        props.problem("Layers", "must be a list of layer ARNs")
        return []
    layers: list[str] = []
    for arn in found:
        content = props.builder.layers.get(arn) if isinstance(arn, str) else None
        if content is not None:
            layers.append(str(content))
        elif isinstance(arn, str) and _published_here(arn):
            layers.append(arn)  # a layer version published to lrun (PublishLayerVersion)
        else:
            props.notice(
                "Layers",
                f"layer {arn} is not a layer of this template with local content, nor one "
                "published to lrun; the function runs without it (give it as an "
                "AWS::Serverless::LayerVersion with a local ContentUri, or publish it to lrun)",
            )
    return layers


def _published_here(arn: str) -> bool:
    """Whether ``arn`` names a layer version in lrun's own account and region."""
    from orchestrator.manifest.layers import LAYER_VERSION_ARN

    found = LAYER_VERSION_ARN.fullmatch(arn)
    return found is not None and (found["region"], found["account"]) == (REGION, ACCOUNT_ID)


def _tags(props: Properties) -> dict[str, str]:
    found = props.value("Tags")
    if found is MISSING:
        return {}
    if isinstance(found, dict):
        return {str(k): str(v) for k, v in found.items()}
    if isinstance(found, list) and all(isinstance(t, dict) and "Key" in t for t in found):
        return {str(t["Key"]): str(t.get("Value", "")) for t in found}
    props.problem("Tags", "must map keys to values, or be a list of {Key, Value}")
    return {}


def _not_emulated(props: Properties) -> None:
    architectures = props.value("Architectures")
    here = host_architecture()
    if isinstance(architectures, list) and architectures and architectures[0] != here:
        props.notice(
            "Architectures",
            f"{architectures[0]} asked; lrun runs the function on this host's {here}",
        )
    if "VpcConfig" in props:
        props.notice(
            "VpcConfig",
            "lrun does not join VPCs: the function runs on lrun's public network and cannot "
            "reach the VPC's private resources",
        )
    if "FileSystemConfigs" in props:
        props.notice("FileSystemConfigs", "EFS file systems are not mounted by lrun")
    tracing = props.text("Tracing", "")
    mode = tracing
    config = props.mapping("TracingConfig")
    if config is not None:
        mode = config.text("Mode", "")
    if mode == "Active":
        prop = "Tracing" if tracing else "TracingConfig"
        props.notice(
            prop,
            "active tracing: lrun gives each invocation an X-Ray trace header "
            "(_X_AMZN_TRACE_ID) but records no traces",
        )
    snap = props.mapping("SnapStart")
    if snap is not None and snap.text("ApplyOn", "None") != "None":
        props.notice("SnapStart", "SnapStart is not emulated: every cold start runs init")
    if "DeploymentPreference" in props:
        props.notice(
            "DeploymentPreference",
            "gradual deployments are not emulated: lrun serves the function as it is now",
        )
    if "AutoPublishAlias" in props:
        props.notice(
            "AutoPublishAlias",
            "versions and aliases are not published from a template: lrun serves $LATEST, and "
            "a call naming the alias is refused (publish with PublishVersion and CreateAlias)",
        )


# LoggingConfig's properties and the manifest's logging: keys (which check the values).
_LOGGING = {
    "LogFormat": "format",
    "ApplicationLogLevel": "application_log_level",
    "SystemLogLevel": "system_log_level",
    "LogGroup": "log_group",
}


def _logging(props: Properties, entry: dict[str, Any]) -> None:
    """LoggingConfig as the manifest's ``logging:``: lrun writes JSON logs as Lambda does."""
    config = props.mapping("LoggingConfig")
    if config is None:
        return
    logging = {key: config.text(prop) for prop, key in _LOGGING.items() if prop in config}
    if logging:
        entry["logging"] = logging


def lambda_name(builder: Builder, value: Any) -> str | None:
    """The served function a value names: a function's name or ARN (a qualified ARN names its
    function); None if it is not one of the template's served functions."""
    if not isinstance(value, str):
        return None
    name = value
    parts = arn_parts(value)
    if parts is not None:
        service, rest = parts
        if service != "lambda" or not rest.startswith("function:"):
            return None
        name = rest.split(":")[1]
    return name if name in builder.functions.values() else None
