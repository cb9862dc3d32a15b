"""SAM's Api and HttpApi events and resources as the manifest's APIs and routes."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.manifest.apis import AuthorizerSpec, CorsSpec, RouteKey
from orchestrator.manifest.logging_config import LoggingConfig
from tests.unit.template.conftest import load, notices, write

IMPLICIT = """
Globals:
  HttpApi:
    CorsConfiguration: {AllowOrigins: ["https://shop.example"], AllowMethods: [GET], MaxAge: 60}
Resources:
  Web:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Runtime: python3.13
      Events:
        Hello: {Type: HttpApi, Properties: {Path: /hello, Method: get}}
        Anything: {Type: HttpApi}
        Items: {Type: Api, Properties: {Path: "/items/{id}", Method: any}}
"""


def test_events_without_an_api_join_the_ones_sam_makes(tmp_path: Path) -> None:
    manifest = load(write(tmp_path, IMPLICIT))
    http, rest = manifest.apis["ServerlessHttpApi"], manifest.apis["ServerlessRestApi"]
    assert (http.type, http.stage, http.port) == ("http", "$default", None)
    assert (rest.type, rest.stage) == ("rest", "Prod")
    assert http.cors == CorsSpec(("https://shop.example",), ("GET",), (), (), 60, False)
    assert [(str(r.key), r.function, r.payload) for r in http.routes] == [
        ("GET /hello", "Web", "2.0"),
        ("$default", "Web", "2.0"),
    ]
    assert [(r.key, r.payload, r.timeout_ms) for r in rest.routes] == [
        (RouteKey.parse("ANY /items/{id}"), "1.0", 29_000)
    ]


EXPLICIT = """
Resources:
  Shop:
    Type: AWS::Serverless::HttpApi
    Properties:
      StageName: v1
      DefinitionBody: {openapi: "3.0"}
      Auth:
        DefaultAuthorizer: Gate
        Authorizers:
          Gate:
            FunctionArn: !GetAtt Auth.Arn
            AuthorizerPayloadFormatVersion: "2.0"
            EnableSimpleResponses: true
            Identity: {Headers: [Authorization], ReauthorizeEvery: 60}
          Tokens:
            JwtConfiguration: {issuer: "https://issuer.example", audience: [shop]}
            IdentitySource: $request.header.Authorization
  Legacy:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      Cors: "'*'"
      Auth:
        Authorizers:
          Token: {FunctionArn: !GetAtt Auth.Arn, Identity: {ValidationExpression: "^Bearer.+$"}}
          Pool: {UserPoolArn: arn:aws:cognito-idp:us-east-1:1:userpool/x}
  Auth:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: src/, Handler: app.handler, Runtime: python3.13}
  Api:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Runtime: python3.13
      Events:
        Guarded: {Type: HttpApi, Properties: {ApiId: !Ref Shop, Path: /orders, Method: post}}
        Open:
          Type: HttpApi
          Properties: {ApiId: !Ref Shop, Path: /health, Method: get, Auth: {Authorizer: NONE}}
        Jwt:
          Type: HttpApi
          Properties:
            ApiId: !Ref Shop
            Path: /me
            Method: get
            Auth: {Authorizer: Tokens, AuthorizationScopes: [read]}
        Old:
          Type: Api
          Properties: {RestApiId: !Ref Legacy, Path: /old, Method: get, Auth: {Authorizer: Token}}
        Pooled:
          Type: Api
          Properties: {RestApiId: !Ref Legacy, Path: /pool, Method: get, Auth: {Authorizer: Pool}}
"""


def test_explicit_apis_with_lambda_authorizers(tmp_path: Path) -> None:
    manifest = load(write(tmp_path, EXPLICIT))
    shop, legacy = manifest.apis["Shop"], manifest.apis["Legacy"]
    assert shop.stage == "v1" and legacy.stage == "prod"
    assert shop.authorizers == {
        "Gate": AuthorizerSpec(
            "Gate", "request", ("$request.header.Authorization",), "Auth", 60, "2.0", True
        )
    }
    assert legacy.authorizers["Token"] == AuthorizerSpec(
        "Token",
        "token",
        ("method.request.header.Authorization",),
        "Auth",
        300,
        "1.0",
        validation="^Bearer.+$",
    )
    routes = {str(r.key): r.authorizer for r in shop.routes}
    assert routes == {"POST /orders": "Gate", "GET /health": None}  # the JWT one: no keys
    assert [(str(r.key), r.authorizer) for r in legacy.routes] == [("GET /old", "Token")]
    found = notices(manifest)
    keys = tmp_path / ".lrun" / "jwks" / "Tokens.json"
    assert any(f"put them (a JWKS document) in {keys}" in n for n in found), found
    assert any("Cognito user pool authorizers are not emulated" in n for n in found), found
    assert any("routes and integrations of an OpenAPI definition are not read" in n for n in found)
    assert any("lrun answers CORS preflights for HTTP APIs only" in n for n in found)


def test_a_jwt_authorizer_is_served_once_its_keys_are_there(tmp_path: Path) -> None:
    keys = tmp_path / ".lrun" / "jwks" / "Tokens.json"
    keys.parent.mkdir(parents=True)
    keys.write_text(json.dumps({"keys": []}))
    manifest = load(write(tmp_path, EXPLICIT))
    tokens = manifest.apis["Shop"].authorizers["Tokens"]
    assert (tokens.type, tokens.issuer, tokens.audience, tokens.jwks) == (
        "jwt",
        "https://issuer.example",
        ("shop",),
        keys,
    )
    [route] = [r for r in manifest.apis["Shop"].routes if str(r.key) == "GET /me"]
    assert (route.authorizer, route.scopes) == ("Tokens", ("read",))


def test_logging_config_is_the_manifest_s_logging(tmp_path: Path) -> None:
    text = IMPLICIT.replace(
        "      Events:",
        "      LoggingConfig: {LogFormat: JSON, ApplicationLogLevel: DEBUG}\n      Events:",
    )
    spec = load(write(tmp_path, text)).function("Web")
    assert spec.logging == LoggingConfig("JSON", "DEBUG", "INFO")
