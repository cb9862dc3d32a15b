"""Function URLs: SAM's ``FunctionUrlConfig`` and ``AWS::Lambda::Url`` as a function's ``url:``.

``AuthType``, ``InvokeMode`` and ``Cors`` become the manifest's ``auth``, ``invoke_mode`` and
``cors`` (whose rules check their values, named by the template's line). lrun serves each URL
on a port of its own (the README's Function URLs); a URL on a version or alias (``Qualifier``,
or SAM's ``FunctionUrlConfig`` beside ``AutoPublishAlias``) is served on the function itself.
"""

from __future__ import annotations

from typing import Any

from orchestrator.template.apis import cors_settings
from orchestrator.template.builder import Builder, Origin
from orchestrator.template.functions import lambda_name
from orchestrator.template.intrinsics import Resource
from orchestrator.template.properties import MISSING, Properties

URL = "AWS::Lambda::Url"
_KEYS = {"AuthType": "auth", "InvokeMode": "invoke_mode", "Cors": "cors"}


def url_settings(config: Properties) -> dict[str, Any]:
    """A ``FunctionUrlConfig`` (or an ``AWS::Lambda::Url``'s properties) as ``url:``."""
    entry: dict[str, Any] = {}
    auth = config.text("AuthType")
    if auth is not MISSING:
        entry["auth"] = auth  # absent: the manifest's rule says auth is missing, at this line
    mode = config.text("InvokeMode")
    if mode is not MISSING:
        entry["invoke_mode"] = mode
    cors = config.value("Cors")
    if isinstance(cors, dict):
        entry["cors"] = cors_settings(cors)
    elif cors is not MISSING:
        config.problem("Cors", "must be a mapping of AllowOrigins, AllowMethods, ...")
    return entry


def add_url(builder: Builder, resource: Resource) -> None:
    """An ``AWS::Lambda::Url`` on one of the template's served functions."""
    props = Properties(builder, resource)
    target = props.value("TargetFunctionArn")
    name = lambda_name(builder, target)
    if name is None:
        if target is not MISSING:
            props.notice(
                "TargetFunctionArn",
                f"{target!r} is not a function lrun serves from this template; no URL is made",
            )
        else:
            props.problem("TargetFunctionArn", "is required: the function the URL invokes")
        return
    path = f"functions.{name}.url"
    if builder.get(path) is not None:
        first = builder.origins[path]
        props.notice(
            None,
            f"function {name!r} already has the URL of {first.where}; lrun serves one URL per "
            "function, so this one is not made",
        )
        return
    qualifier = props.text("Qualifier", "")
    if qualifier:
        props.notice(
            "Qualifier",
            f"the URL of {qualifier} is served on the function itself ($LATEST): lrun's url: "
            "names no version or alias",
        )
    for key in props.values:
        if key not in _KEYS and key not in ("TargetFunctionArn", "Qualifier"):
            props.notice(key, f"{key} is not used by lrun; the URL is served without it")
    _put(builder, path, props, props.origin())


def add_function_url(builder: Builder, resource: Resource) -> None:
    """SAM's ``FunctionUrlConfig`` of a served function."""
    props = Properties(builder, resource)
    config = props.mapping("FunctionUrlConfig")
    if config is None:
        return
    for key in config.values:
        if key not in _KEYS:
            config.notice(key, f"{key} is not used by lrun; the URL is served without it")
    if "AutoPublishAlias" in props:
        config.notice(
            None,
            "SAM puts the URL on the alias; lrun serves it on the function itself ($LATEST)",
        )
    name = builder.functions[resource.logical]
    _put(builder, f"functions.{name}.url", config, props.origin("FunctionUrlConfig"))


def _put(builder: Builder, path: str, config: Properties, origin: Origin) -> None:
    """The URL's settings at ``path``, each key remembering its property's line."""
    builder.put(path, url_settings(config), origin)
    for prop, key in _KEYS.items():
        if prop in config:
            builder.origins[f"{path}.{key}"] = config.origin(prop)
