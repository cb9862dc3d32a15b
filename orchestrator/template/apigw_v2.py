"""API Gateway v2 resources (what CloudFormation templates and CDK's ``HttpApi`` and
``WebSocketApi`` constructs write) as the manifest's ``apis:`` and functions' ``http:`` and
``websocket:`` routes.

``AWS::ApiGatewayV2::Api`` is an API named by its logical ID: ``ProtocolType: WEBSOCKET`` a
WebSocket API (``RouteSelectionExpression``), ``HTTP`` an HTTP API (``CorsConfiguration``).
Its ``AWS::ApiGatewayV2::Stage`` gives the stage (the first, if several). Each
``AWS::ApiGatewayV2::Route`` whose ``Target`` is ``integrations/<Integration>`` becomes a route
of the function that integration's ``IntegrationUri`` names (a function's ARN, or API
Gateway's ``arn:aws:apigateway:...:lambda:path/.../functions/<ARN>/invocations``), with the
integration's ``PayloadFormatVersion`` and ``TimeoutInMillis``. What lrun cannot serve (a
non-Lambda integration, an authorizer, an OpenAPI body, quick create) is a notice, and a
guarded route is never served unguarded.
"""

from __future__ import annotations

import re
from typing import Any

from orchestrator.template.apis import cors_settings
from orchestrator.template.builder import Builder
from orchestrator.template.functions import lambda_name
from orchestrator.template.intrinsics import Resource
from orchestrator.template.properties import MISSING, Properties
from orchestrator.template.references import local_name

API = "AWS::ApiGatewayV2::Api"
ROUTE = "AWS::ApiGatewayV2::Route"
INTEGRATION = "AWS::ApiGatewayV2::Integration"
STAGE = "AWS::ApiGatewayV2::Stage"
DEPLOYMENT = "AWS::ApiGatewayV2::Deployment"
TYPES = (API, ROUTE, INTEGRATION, STAGE, DEPLOYMENT)
# The function ARN inside API Gateway's invocation URI, or the ARN itself.
_FUNCTION_IN_URI = re.compile(
    r"(arn:aws[\w-]*:lambda:[^:/]+:\d+:function:[^/]+?)(?:/invocations)?$"
)
_API_UNUSED = {
    "Body": "an OpenAPI body's routes are not read; lrun serves the AWS::ApiGatewayV2::Route "
    "resources",
    "BodyS3Location": "an OpenAPI body's routes are not read; lrun serves the "
    "AWS::ApiGatewayV2::Route resources",
    "Target": "quick create (Target) is not served; declare a Route and an Integration",
}


class V2:
    """The template's API Gateway v2 resources, read once every function is known."""

    def __init__(self, builder: Builder, found: list[Resource]) -> None:
        self.builder = builder
        self.resources = [r for r in found if r.kind in TYPES]
        self.apis: dict[str, str] = {}  # Ref of an API: its logical ID
        self.types: dict[str, str] = {}  # API logical ID: websocket or http
        self.integrations: dict[str, Resource] = {}  # Ref of an integration: the resource

    def read(self) -> None:
        for resource in self.resources:
            if resource.kind == API:
                self._api(resource)
        for resource in self.resources:
            if resource.kind == STAGE:
                self._stage(resource)
            elif resource.kind == INTEGRATION:
                ref = self.builder.resolver.resolve({"Ref": resource.logical})
                self.integrations[str(ref)] = resource
        for resource in self.resources:
            if resource.kind == ROUTE:
                self._route(resource)

    def _api(self, resource: Resource) -> None:
        props = Properties(self.builder, resource)
        protocol = props.text("ProtocolType", "")
        if protocol not in ("WEBSOCKET", "HTTP"):
            props.notice("ProtocolType", f"{protocol!r} is not WEBSOCKET nor HTTP; not served")
            return
        entry: dict[str, Any] = {"type": "websocket" if protocol == "WEBSOCKET" else "http"}
        if protocol == "WEBSOCKET":
            expression = props.text("RouteSelectionExpression")
            if expression is not MISSING:
                entry["route_selection"] = expression
        cors = props.value("CorsConfiguration")
        if isinstance(cors, dict):
            entry["cors"] = cors_settings(cors)
        for prop, why in _API_UNUSED.items():
            if prop in props:
                props.notice(prop, why)
        name = local_name(resource.logical)
        self.builder.put(f"apis.{name}", entry, props.origin())
        self.types[resource.logical] = entry["type"]
        self.apis[str(self.builder.resolver.resolve({"Ref": resource.logical}))] = resource.logical

    def _api_of(self, props: Properties) -> str | None:
        value = props.value("ApiId")
        logical = self.apis.get(str(value)) if value is not MISSING else None
        if logical is None and value is not MISSING:
            props.notice("ApiId", f"{value!r} is not an API lrun serves from this template")
        return logical

    def _stage(self, resource: Resource) -> None:
        props = Properties(self.builder, resource)
        api = self._api_of(props)
        stage = props.text("StageName")
        if api is None or stage is MISSING:
            return
        path = f"apis.{local_name(api)}.stage"
        if self.builder.get(path) is not None:
            props.notice("StageName", f"lrun serves one stage per API; this one ({stage}) is not")
            return
        self.builder.put(path, stage, props.origin("StageName"))

    def _route(self, resource: Resource) -> None:
        props = Properties(self.builder, resource)
        api = self._api_of(props)
        key = props.text("RouteKey")
        if api is None or key is MISSING:
            return
        auth = props.text("AuthorizationType", "NONE")
        if auth != "NONE":
            props.notice(
                "AuthorizationType",
                f"{auth} authorization of API Gateway v2 routes is not emulated; the route is "
                "not served",
            )
            return
        target = props.text("Target", "")
        integration = self.integrations.get(target.removeprefix("integrations/"))
        if not target.startswith("integrations/") or integration is None:
            props.notice("Target", f"{target!r} names no integration of this template; not served")
            return
        found = self._integration(integration)
        if found is None:
            return
        function, extra = found
        if self.types[api] == "websocket":
            entry: dict[str, Any] = {"api": local_name(api), "route": key}
            if "RouteResponseSelectionExpression" in props:
                entry["route_response"] = True
            if "timeout_ms" in extra:
                entry["timeout_ms"] = extra["timeout_ms"]
            section = "websocket"
        else:
            entry = {"api": local_name(api), "route": key, **extra}
            section = "http"
        routes = self.builder.data["functions"][function].setdefault(section, [])
        path = f"functions.{function}.{section}[{len(routes)}]"
        self.builder.origins[path] = props.origin()
        self.builder.origins[f"{path}.route"] = props.origin("RouteKey")
        routes.append(entry)

    def _integration(self, resource: Resource) -> tuple[str, dict[str, Any]] | None:
        """The function an integration invokes and its settings; None (with a notice) if it
        is not a Lambda proxy integration of a function lrun serves."""
        props = Properties(self.builder, resource)
        kind = props.text("IntegrationType", "")
        if kind != "AWS_PROXY":
            props.notice(
                "IntegrationType",
                f"{kind} integrations are not served: lrun serves Lambda proxy (AWS_PROXY) ones",
            )
            return None
        uri = props.text("IntegrationUri", "")
        matched = _FUNCTION_IN_URI.search(uri)
        function = lambda_name(self.builder, matched[1]) if matched else None
        if function is None:
            props.notice("IntegrationUri", f"{uri!r} names no function lrun serves; not served")
            return None
        extra: dict[str, Any] = {}
        version = props.text("PayloadFormatVersion")
        if version is not MISSING:
            extra["payload"] = version
        timeout = props.integer("TimeoutInMillis")
        if timeout is not MISSING:
            extra["timeout_ms"] = timeout
        qualifier = matched[1].split(":")[7] if matched and matched[1].count(":") > 6 else ""
        if qualifier:
            extra["qualifier"] = qualifier
        return function, extra
