"""API Gateway v2 resources (what CloudFormation and CDK's HttpApi and WebSocketApi write) as
the manifest's apis: and the functions' http: and websocket: routes."""

from __future__ import annotations

from pathlib import Path

from orchestrator.manifest.apis import RouteKey
from tests.unit.template.conftest import load, notices, problems, write

FUNCTIONS = """
Resources:
  Chat:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: src/, Handler: app.handler, Runtime: python3.13}
  Items:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.13
      Handler: index.handler
      Code: {ZipFile: "def handler(e, c): return 1"}
"""

WEBSOCKET = """
  Socket:
    Type: AWS::ApiGatewayV2::Api
    Properties: {Name: s, ProtocolType: WEBSOCKET, RouteSelectionExpression: $request.body.op}
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties: {ApiId: !Ref Socket, StageName: Prod}
  Integ:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Socket
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub
        arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Chat.Arn}/invocations
      TimeoutInMillis: 5000
  Connect:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Socket
      RouteKey: $connect
      AuthorizationType: NONE
      Target: !Join [/, [integrations, !Ref Integ]]
  Echo:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Socket
      RouteKey: echo
      RouteResponseSelectionExpression: $default
      Target: !Sub integrations/${Integ}
"""

# As CDK's HttpApi with an HttpLambdaIntegration synthesises it.
HTTP = """
  Http:
    Type: AWS::ApiGatewayV2::Api
    Properties:
      Name: http
      ProtocolType: HTTP
      CorsConfiguration: {AllowOrigins: [https://app.test], AllowMethods: [GET]}
  HttpStage:
    Type: AWS::ApiGatewayV2::Stage
    Properties: {ApiId: !Ref Http, StageName: $default, AutoDeploy: true}
  HttpInteg:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Http
      IntegrationType: AWS_PROXY
      IntegrationUri: !GetAtt Items.Arn
      PayloadFormatVersion: "1.0"
  GetItems:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Http
      RouteKey: GET /items/{id}
      AuthorizationType: NONE
      Target: !Join ["", [integrations/, !Ref HttpInteg]]
"""


def test_a_websocket_api_its_stage_and_routes(tmp_path: Path) -> None:
    manifest = load(write(tmp_path, FUNCTIONS + WEBSOCKET))
    api = manifest.apis["Socket"]
    assert (api.type, api.stage, api.route_selection) == ("websocket", "Prod", "$request.body.op")
    routes = {r.key: r for r in api.websocket_routes}
    assert set(routes) == {"$connect", "echo"}
    assert all(r.function == "Chat" and r.timeout_ms == 5000 for r in routes.values())
    assert routes["echo"].route_response and not routes["$connect"].route_response
    assert manifest.notices == ()


def test_an_http_api_as_cdk_writes_it(tmp_path: Path) -> None:
    manifest = load(write(tmp_path, FUNCTIONS + HTTP))
    api = manifest.apis["Http"]
    assert (api.type, api.stage) == ("http", "$default")
    assert api.cors is not None and api.cors.allow_origins == ("https://app.test",)
    [route] = api.routes
    assert (route.function, route.key, route.payload) == (
        "Items",
        RouteKey.parse("GET /items/{id}"),
        "1.0",
    )
    assert manifest.notices == ()


def test_what_lrun_cannot_serve_is_a_notice_and_never_served_unguarded(tmp_path: Path) -> None:
    text = (
        FUNCTIONS
        + HTTP
        + (
            "  Guarded:\n    Type: AWS::ApiGatewayV2::Route\n    Properties:\n"
            "      ApiId: !Ref Http\n      RouteKey: POST /items\n      AuthorizationType: JWT\n"
            "      Target: !Join ['', [integrations/, !Ref HttpInteg]]\n"
            "  Proxy:\n    Type: AWS::ApiGatewayV2::Integration\n    Properties:\n"
            "      ApiId: !Ref Http\n      IntegrationType: HTTP_PROXY\n"
            "      IntegrationUri: https://example.com\n"
            "  ToProxy:\n    Type: AWS::ApiGatewayV2::Route\n    Properties:\n"
            "      ApiId: !Ref Http\n      RouteKey: GET /proxy\n"
            "      Target: !Join ['', [integrations/, !Ref Proxy]]\n"
            "  Nowhere:\n    Type: AWS::ApiGatewayV2::Route\n    Properties:\n"
            "      ApiId: !Ref Http\n      RouteKey: GET /none\n      Target: integrations/abc\n"
        )
    )
    manifest = load(write(tmp_path, text))
    assert [r.key.path for r in manifest.apis["Http"].routes] == ["/items/{id}"]
    said = notices(manifest)
    assert (
        "Resources.Guarded.Properties.AuthorizationType: JWT authorization of API Gateway v2 "
        "routes is not emulated; the route is not served"
    ) in said
    assert (
        "Resources.Proxy.Properties.IntegrationType: HTTP_PROXY integrations are not served: "
        "lrun serves Lambda proxy (AWS_PROXY) ones"
    ) in said
    assert (
        "Resources.Nowhere.Properties.Target: 'integrations/abc' names no integration of this "
        "template; not served"
    ) in said


def test_an_integration_of_a_function_lrun_does_not_serve_is_a_notice(tmp_path: Path) -> None:
    text = (FUNCTIONS + HTTP).replace(
        "IntegrationUri: !GetAtt Items.Arn",
        "IntegrationUri: arn:aws:lambda:us-east-1:123456789012:function:far",
    )
    manifest = load(write(tmp_path, text))
    assert manifest.apis["Http"].routes == ()
    assert any("names no function lrun serves" in n for n in notices(manifest))


def test_a_bad_route_key_is_a_problem_at_the_route_s_line(tmp_path: Path) -> None:
    path = write(tmp_path, FUNCTIONS + HTTP.replace("GET /items/{id}", "FETCH /x"))
    found = problems(path)
    assert [p.where for p in found] == ["Resources.GetItems.Properties.RouteKey"]
    line = path.read_text().splitlines().index("      RouteKey: FETCH /x") + 1
    assert found[0].line == line and "FETCH" in found[0].message
