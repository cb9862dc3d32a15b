"""SAM's APIs as the manifest's ``apis:`` and functions' ``http:`` routes.

``AWS::Serverless::Api`` is a REST API (payload 1.0), ``AWS::Serverless::HttpApi`` an HTTP API
(payload 2.0), each named by its logical ID; a function's ``Api``/``HttpApi`` event without
``RestApiId``/``ApiId`` joins the API SAM makes for it (``ServerlessRestApi``, stage ``Prod``,
or ``ServerlessHttpApi``, stage ``$default``), with ``Globals.Api``/``Globals.HttpApi`` applied.
Each API listens on a port lrun picks (``lrun serve`` prints its base URL).

Authorizers: Lambda authorizers map as they are (``FunctionArn``, TOKEN or REQUEST, identity,
``ReauthorizeEvery``); a JWT authorizer needs its issuer's keys, which lrun reads from
``.lrun/jwks/<Authorizer>.json`` beside the template: without that file, the routes it guards
are not served (lrun never serves a guarded route unguarded). Cognito and IAM authorizers are
not emulated, with the same consequence. Routes in an OpenAPI ``DefinitionBody`` are not read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.template.builder import Builder
from orchestrator.template.document import Located
from orchestrator.template.functions import lambda_name
from orchestrator.template.intrinsics import Resource
from orchestrator.template.properties import MISSING, Properties
from orchestrator.template.references import api_id, local_name

REST = "AWS::Serverless::Api"
HTTP = "AWS::Serverless::HttpApi"
IMPLICIT = {"Api": ("ServerlessRestApi", REST), "HttpApi": ("ServerlessHttpApi", HTTP)}
JWKS_DIRECTORY = Path(".lrun") / "jwks"
_UNUSED = ("DefinitionBody", "DefinitionUri")


class Apis:
    """The template's APIs and their authorizers, read once every function is known."""

    def __init__(self, builder: Builder, globals_: dict[str, Located]) -> None:
        self.builder = builder
        self.globals = globals_
        self.kinds: dict[str, str] = {}  # API logical ID: its type
        self.refused: dict[tuple[str, str], str] = {}  # (api, authorizer): why it is not served
        self.defaults: dict[str, str] = {}  # API: its default authorizer

    def add(self, resource: Resource) -> None:
        """An explicit ``AWS::Serverless::Api`` or ``HttpApi``."""
        props = Properties(self.builder, resource)
        self._api(resource.logical, resource.kind, props)

    def implicit(self, event_type: str, spec: Properties) -> str:
        """The API SAM makes for events that name none (made on first use)."""
        logical, kind = IMPLICIT[event_type]
        if logical not in self.kinds:
            section = self.globals.get(event_type, Located())
            resource = Resource(logical, kind, section, spec.resource.line)
            where = f"Globals.{event_type}"
            self._api(logical, kind, Properties(self.builder, resource, section, where))
        return logical

    def _api(self, logical: str, kind: str, props: Properties) -> None:
        rest = kind == REST
        name = local_name(logical)
        self.kinds[logical] = kind
        entry: dict[str, Any] = {"type": "rest" if rest else "http"}
        stage = props.text("StageName")
        if stage is not MISSING:
            entry["stage"] = stage
        elif rest:
            entry["stage"] = "Prod"
        cors = _cors(props, rest)
        if cors is not None:
            entry["cors"] = cors
        binary = props.value("BinaryMediaTypes")
        if rest and isinstance(binary, list) and binary:
            entry["binary_media_types"] = [str(b).replace("~1", "/") for b in binary]
        authorizers = self._authorizers(logical, props, rest)
        if authorizers:
            entry["authorizers"] = authorizers
        for prop in _UNUSED:
            if prop in props:
                props.notice(
                    prop,
                    "routes and integrations of an OpenAPI definition are not read; lrun serves "
                    "the routes of the functions' Api/HttpApi events",
                )
        self.builder.put(f"apis.{name}", entry, props.origin())

    def _authorizers(self, api: str, props: Properties, rest: bool) -> dict[str, Any]:
        auth = props.mapping("Auth")
        if auth is None:
            return {}
        default = auth.text("DefaultAuthorizer")
        if default is not MISSING:
            self.defaults[api] = default
        found = auth.mapping("Authorizers")
        result: dict[str, Any] = {}
        for name in found.values if found is not None else ():
            spec = found.mapping(name) if found is not None else None
            if spec is None:
                continue
            entry = self._authorizer(api, name, spec, rest)
            if entry is not None:
                result[local_name(name)] = entry
        return result

    def _authorizer(
        self, api: str, name: str, spec: Properties, rest: bool
    ) -> dict[str, Any] | None:
        if "JwtConfiguration" in spec:
            return self._jwt(api, name, spec)
        if "UserPoolArn" in spec:
            self._refuse(api, name, spec, "Cognito user pool authorizers are not emulated")
            return None
        function = lambda_name(self.builder, spec.value("FunctionArn", None))
        if function is None:
            self._refuse(api, name, spec, "its FunctionArn is not a function lrun serves")
        identity = spec.mapping("Identity")
        entry: dict[str, Any] = {"function": function}
        sources: list[str] = []
        prefix = "method.request" if rest else "$request"
        if rest and spec.text("FunctionPayloadType", "TOKEN") == "TOKEN":
            entry["type"] = "token"
            header = identity.text("Header", "Authorization") if identity else "Authorization"
            sources.append(f"{prefix}.header.{header}")
            check = identity.text("ValidationExpression") if identity is not None else MISSING
            if check is not MISSING:
                entry["validation"] = check
        else:
            entry["type"] = "request"
            if not rest:
                entry["payload"] = spec.text("AuthorizerPayloadFormatVersion", "2.0")
                if spec.flag("EnableSimpleResponses", False):
                    entry["simple_responses"] = True
            for prop, part in (("Headers", "header"), ("QueryStrings", "querystring")):
                values = identity.value(prop, []) if identity is not None else []
                sources += [f"{prefix}.{part}.{v}" for v in values if isinstance(v, str)]
        ttl = identity.integer("ReauthorizeEvery", 300) if identity is not None else 300
        entry["ttl"] = ttl if sources or entry["type"] == "token" else 0
        if sources:
            entry["identity_source"] = sources
        return entry

    def _jwt(self, api: str, name: str, spec: Properties) -> dict[str, Any] | None:
        config = spec.mapping("JwtConfiguration")
        issuer = config.text("issuer") if config is not None else MISSING
        audience = config.value("audience", []) if config is not None else []
        keys = self.builder.base / JWKS_DIRECTORY / f"{name}.json"
        if not keys.is_file():
            self._refuse(
                api,
                name,
                spec,
                f"a JWT authorizer's tokens are checked against its issuer's keys: put them "
                f"(a JWKS document) in {keys} to serve the routes it guards",
            )
            return None
        if issuer is MISSING:
            self._refuse(api, name, spec, "its JwtConfiguration has no issuer")
            return None
        source = spec.text("IdentitySource", "$request.header.Authorization")
        return {
            "type": "jwt",
            "issuer": issuer,
            "audience": [str(a) for a in audience] if isinstance(audience, list) else [],
            "jwks": str(keys),
            "identity_source": [source],
        }

    def _refuse(self, api: str, name: str, spec: Properties, why: str) -> None:
        self.refused[(api, name)] = why
        spec.notice(None, f"{why}; the routes it guards are not served")

    # A function's events

    def route(self, function: str, event_type: str, spec: Properties) -> dict[str, Any] | None:
        """One function's ``Api``/``HttpApi`` event as an ``http:`` entry (None: left out)."""
        rest = event_type == "Api"
        prop = "RestApiId" if rest else "ApiId"
        api = self._api_named(spec, prop) if prop in spec else self.implicit(event_type, spec)
        if api is None:
            return None
        path, method = spec.text("Path", MISSING), spec.text("Method", MISSING)
        if rest and (path is MISSING or method is MISSING):
            spec.notice(None, "an Api event needs Path and Method; left out")
            return None
        if path is MISSING and method is MISSING:
            key = "$default"
        else:
            verb = "ANY" if method in (MISSING, "any", "x-amazon-apigateway-any-method") else method
            key = f"{str(verb).upper()} {path if path is not MISSING else '/'}"
        entry: dict[str, Any] = {"api": local_name(api), "route": key}
        auth = spec.mapping("Auth")
        authorizer = auth.text("Authorizer", MISSING) if auth is not None else MISSING
        if authorizer is MISSING:
            authorizer = self.defaults.get(api, MISSING)
        if authorizer == "AWS_IAM":
            spec.notice("Auth", "IAM authorization is not emulated; the route is not served")
            return None
        if authorizer not in (MISSING, "NONE"):
            why = self.refused.get((api, str(authorizer)))
            if why is not None:
                spec.notice("Auth", f"authorizer {authorizer}: {why}; the route is not served")
                return None
            entry["authorizer"] = local_name(str(authorizer))
            scopes = auth.value("AuthorizationScopes", []) if auth is not None else []
            if isinstance(scopes, list) and scopes:
                entry["scopes"] = [str(s) for s in scopes]
        if not rest:
            version = spec.text("PayloadFormatVersion", MISSING)
            if version is not MISSING:
                entry["payload"] = version
            timeout = spec.integer("TimeoutInMillis", MISSING)
            if timeout is not MISSING:
                entry["timeout_ms"] = timeout
        return entry

    def _api_named(self, spec: Properties, prop: str) -> str | None:
        raw = spec.values.get(prop)
        if isinstance(raw, dict) and isinstance(raw.get("Ref"), str) and raw["Ref"] in self.kinds:
            return str(raw["Ref"])
        value = spec.value(prop, None)
        for logical in self.kinds:
            if value in (logical, api_id(logical)):
                return logical
        spec.notice(prop, f"{value!r} is not an API of this template; the route is left out")
        return None


def _cors(props: Properties, rest: bool) -> dict[str, Any] | None:
    prop = "Cors" if rest else "CorsConfiguration"
    if prop not in props:
        return None
    if rest:
        props.notice(
            prop,
            "lrun answers CORS preflights for HTTP APIs only; on a REST API answer OPTIONS in "
            "a function (the headers are not added)",
        )
        return None
    value = props.value(prop)
    if value is True:
        return {"allow_origins": ["*"], "allow_methods": ["*"], "allow_headers": ["*"]}
    if not isinstance(value, dict):
        return None
    return cors_settings(value)


def cors_settings(value: dict[str, Any]) -> dict[str, Any]:
    """CORS settings in CloudFormation's shape (an HTTP API's ``CorsConfiguration``, a function
    URL's ``Cors``: the same keys) as the manifest's ``cors:``."""
    result: dict[str, Any] = {}
    for key, field in (
        ("AllowOrigins", "allow_origins"),
        ("AllowMethods", "allow_methods"),
        ("AllowHeaders", "allow_headers"),
        ("ExposeHeaders", "expose_headers"),
    ):
        if isinstance(value.get(key), list):
            result[field] = [str(v) for v in value[key]]
    if isinstance(value.get("MaxAge"), int):
        result["max_age"] = value["MaxAge"]
    if isinstance(value.get("AllowCredentials"), bool):
        result["allow_credentials"] = value["AllowCredentials"]
    return result
