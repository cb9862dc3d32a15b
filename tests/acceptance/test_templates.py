"""Real, public SAM templates and CDK apps' cdk.out, run by the real `lrun` with no manifest of
its own: each is validated, served, and one of its functions reached through its real front door
(a queue message, a schedule, a file in a bucket, an HTTP route, an asynchronous invocation).

The fixtures live in ``tests/fixtures/templates/<name>/``, each with a SOURCE file naming its
repository, path and commit (and any stand-in). Each test copies its fixture, so the local
buckets (``.lrun/buckets``) are made in the copy.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.acceptance.conftest import Lrun, LrunServer, ServerFactory

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "templates"
SAM = sorted(p.name for p in FIXTURES.iterdir() if (p / "template.yaml").is_file())
CDK = sorted(p.name for p in FIXTURES.iterdir() if (p / "cdk.out").is_dir())


def copy(name: str, tmp_path: Path) -> Path:
    project = tmp_path / name
    shutil.copytree(FIXTURES / name, project)
    return project


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: did not happen within {timeout:.0f} s")
        time.sleep(0.2)


def log(server: LrunServer, function: str) -> str:
    path = server.state_dir / "logs" / f"{function}.log"
    return path.read_text(errors="replace") if path.exists() else ""


def logged(server: LrunServer, function: str, text: str, timeout: float = 60.0) -> str:
    """The function's log once it holds ``text`` (logs are written behind invocations)."""
    return wait_for(
        f"{text!r} in {function}'s log",
        lambda: log(server, function) if text in log(server, function) else "",
        timeout,
    )


def send(lrun: Lrun, server: LrunServer, queue: str, body: str) -> None:
    done = lrun("queue", "send", queue, body, env=server.env)
    assert done.returncode == 0, done.stderr


def api_url(server: LrunServer, api: str) -> str:
    for row in server.get("/lrun/apis"):
        if row["name"] == api:
            return str(row["url"])
    raise AssertionError(f"no API {api}: {server.get('/lrun/apis')}")


def http_get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read()


def serve(serve_lrun: ServerFactory, project: Path) -> LrunServer:
    """`lrun serve` in the project's directory: it finds the template (or cdk.out) itself."""
    server = serve_lrun(project)
    assert "serving" in server.output()
    return server


@pytest.mark.parametrize("name", SAM + CDK)
def test_every_fixture_validates_with_its_source_named(
    name: str, lrun: Lrun, tmp_path: Path
) -> None:
    source = (FIXTURES / name / "SOURCE").read_text()
    assert "repository: " in source and "commit: " in source and "path: " in source
    project = copy(name, tmp_path)
    done = lrun("validate", cwd=project)
    assert done.returncode == 0, done.stderr
    assert ": ok (" in done.stdout.splitlines()[0]
    assert "Traceback" not in done.stderr


def test_sqs_lambda_python_sam_a_queue_message_reaches_the_processor(
    lrun: Lrun, serve_lrun: ServerFactory, tmp_path: Path
) -> None:
    server = serve(serve_lrun, copy("sqs-lambda-python-sam", tmp_path))
    assert "arm64 asked; lrun runs the function on this host's" in server.output()
    send(lrun, server, "ProcessingQueue", "order 17")
    logged(server, "ProcessorFunction", "Processed message: order 17")


def test_sqs_lambda_nodejs_sam_failures_are_reported_per_message(
    lrun: Lrun, serve_lrun: ServerFactory, tmp_path: Path
) -> None:
    server = serve(serve_lrun, copy("sqs-lambda-nodejs-sam", tmp_path))
    # QueueName: !Sub ${AWS::StackName}-queue, the stack named after the project's directory
    send(lrun, server, "sqs-lambda-nodejs-sam-queue", "fine")
    logged(server, "ProcessorFunction", "Processed message: fine")


def test_esm_filters_only_matching_messages_start_the_function(
    lrun: Lrun, serve_lrun: ServerFactory, tmp_path: Path
) -> None:
    server = serve(serve_lrun, copy("lambda-esm-sqs-filters-sam", tmp_path))
    assert "lrun cannot apply this filter" in server.output()  # the cidr one, left out
    send(lrun, server, "EsmSqsFilterQueuePrefix", json.dumps({"region": "eu-west-1"}))
    send(lrun, server, "EsmSqsFilterQueuePrefix", json.dumps({"region": "us-east-1"}))
    logged(server, "EsmSqsFilterFunctionPrefix", "START RequestId")
    time.sleep(2)  # the filtered-out message is deleted unseen: still one invocation
    assert log(server, "EsmSqsFilterFunctionPrefix").count("START RequestId") == 1


def test_lambda_destinations_an_async_success_reaches_the_destination_function(
    lrun: Lrun, serve_lrun: ServerFactory, tmp_path: Path
) -> None:
    project = copy("lambda-destinations-sam", tmp_path)
    server = serve(serve_lrun, project)
    payload = '{"type": "ok"}'
    done = lrun(
        "invoke", "MainLambdaFunction", "--async", "-p", payload, env=server.env, cwd=project
    )
    assert done.returncode == 0, done.stderr
    record = logged(server, "OnSuccessLambdaFunction", '"responsePayload":"hello world"')
    assert '"condition":"Success"' in record


def test_serverless_message_processing_a_valid_message_is_processed(
    lrun: Lrun, serve_lrun: ServerFactory, tmp_path: Path
) -> None:
    server = serve(serve_lrun, copy("serverless-message-processing", tmp_path))
    message = {
        "messageType": "TYPE_A",
        "payload": {"email": "someone@example.com"},
        "timestamp": "2025-01-01T00:00:00Z",
        "messageId": "m-1",
    }
    send(lrun, server, "MainQueue", json.dumps(message))
    logged(server, "ProcessMessages", "Successfully validated message: m-1")


def test_apigw_sqs_lambda_the_queue_reaches_the_function(
    lrun: Lrun, serve_lrun: ServerFactory, tmp_path: Path
) -> None:
    server = serve(serve_lrun, copy("apigw-sqs-lambda", tmp_path))
    send(lrun, server, "MySqsQueue", "from the queue")
    logged(server, "MyLambdaFunction", "from the queue")


def test_apigw_http_api_lambda_python_inline_code_behind_an_http_api(
    serve_lrun: ServerFactory, tmp_path: Path
) -> None:
    server = serve(serve_lrun, copy("apigw-http-api-lambda-python", tmp_path))
    status, body = http_get(api_url(server, "ServerlessHttpApi") + "/anything/at/all")
    assert (status, body) == (200, b"Hello World! This is the HTTP API")


def test_sam_init_hello_world_behind_the_implicit_rest_api(
    serve_lrun: ServerFactory, tmp_path: Path
) -> None:
    server = serve(serve_lrun, copy("sam-app-hello-python3.13", tmp_path))
    status, body = http_get(api_url(server, "ServerlessRestApi") + "/hello")
    assert status == 200 and json.loads(body) == {"message": "hello world"}


def test_a_zipped_code_uri_is_unpacked_and_served(
    serve_lrun: ServerFactory, tmp_path: Path
) -> None:
    # The same SAM app with its code zipped (as a build step leaves it) and the directory gone.
    project = copy("sam-app-hello-python3.13", tmp_path)
    shutil.make_archive(str(project / "hello"), "zip", project / "hello_world")
    shutil.rmtree(project / "hello_world")
    template = project / "template.yaml"
    template.write_text(template.read_text().replace("CodeUri: hello_world/", "CodeUri: hello.zip"))
    server = serve(serve_lrun, project)
    status, body = http_get(api_url(server, "ServerlessRestApi") + "/hello")
    assert status == 200 and json.loads(body) == {"message": "hello world"}
    root = server.state_dir / "template-code" / "zips"
    [first] = list(root.iterdir())
    assert (first / "app.py").is_file()
    # A new zip (the template touched, as a build step rewrites both) is unpacked anew, served,
    # and the old unpacked code is swept once no environment can use it.
    code = (project / "hello.zip").read_bytes()
    changed = project / "changed"
    shutil.unpack_archive(project / "hello.zip", changed)
    app = (changed / "app.py").read_text().replace('"hello world"', '"hello again"')
    (changed / "app.py").write_text(app)
    shutil.make_archive(str(project / "hello"), "zip", changed)
    assert (project / "hello.zip").read_bytes() != code
    template.write_text(template.read_text() + "\n")

    def answered_again() -> bool:
        status, body = http_get(api_url(server, "ServerlessRestApi") + "/hello")
        return status == 200 and json.loads(body) == {"message": "hello again"}

    wait_for("the new zip's code answering", answered_again)
    wait_for("the old unpacked code swept", lambda: not first.exists(), timeout=30)
    assert len(list(root.iterdir())) == 1


def test_a_function_url_config_answers_a_real_http_request(
    serve_lrun: ServerFactory, tmp_path: Path
) -> None:
    # The same SAM app with a function URL as SAM writes one (FunctionUrlConfig).
    project = copy("sam-app-hello-python3.13", tmp_path)
    template = project / "template.yaml"
    url_config = (
        "      FunctionUrlConfig:\n        AuthType: NONE\n"
        "        Cors: {AllowOrigins: [http://app.test], AllowMethods: [GET]}\n"
        "      Events:\n"
    )
    template.write_text(template.read_text().replace("      Events:\n", url_config, 1))
    server = serve(serve_lrun, project)
    found = re.search(
        r"function URL of HelloWorldFunction \(NONE, BUFFERED\): (http://\S+)", server.output()
    )
    assert found, server.output()
    request = urllib.request.Request(found[1] + "hello", headers={"Origin": "http://app.test"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        assert json.loads(response.read()) == {"message": "hello world"}
        assert response.headers["Access-Control-Allow-Origin"] == "http://app.test"


def test_simple_websockets_chat_app_a_websocket_client_chats_through_the_v2_routes(
    serve_lrun: ServerFactory, tmp_path: Path
) -> None:
    # AWS::ApiGatewayV2::Api (WEBSOCKET), its Stage, Routes and Integrations naming functions
    # by Fn::Sub of their Arn: the websockets client connects, sends, is answered, leaves.
    server = serve(serve_lrun, copy("simple-websockets-chat-app", tmp_path))
    found = re.search(
        r"API SimpleChatWebSocket \(websocket, 3 routes\): (ws://\S+/Prod)\b", server.output()
    )
    assert found, server.output()

    async def chat() -> str:
        async with connect(found[1], open_timeout=60) as ws:
            await ws.send(json.dumps({"message": "sendmessage", "data": "hello, chat"}))
            answer = await asyncio.wait_for(ws.recv(), 60)
            return answer if isinstance(answer, str) else answer.decode()

    assert asyncio.run(chat()) == "hello, chat"
    logged(server, "OnConnectFunction", "connected ")
    logged(server, "SendMessageFunction", "sent 11 characters to ")
    logged(server, "OnDisconnectFunction", "disconnected ")


# An HTTP API as CDK's HttpApi with an HttpLambdaIntegration synthesises it (written for this
# test): the integration names the function by Fn::GetAtt of its Arn.
HTTP_API_V2 = """
Resources:
  Items:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.13
      Handler: index.handler
      Code:
        ZipFile: |
          import json
          def handler(event, context):
              answer = [event["routeKey"], event["pathParameters"]]
              return {"statusCode": 200, "body": json.dumps(answer)}
  Http:
    Type: AWS::ApiGatewayV2::Api
    Properties: {Name: items, ProtocolType: HTTP}
  Stage:
    Type: AWS::ApiGatewayV2::Stage
    Properties: {ApiId: !Ref Http, StageName: $default, AutoDeploy: true}
  Integ:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Http
      IntegrationType: AWS_PROXY
      IntegrationUri: !GetAtt Items.Arn
      PayloadFormatVersion: "2.0"
  Route:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Http
      RouteKey: GET /items/{id}
      AuthorizationType: NONE
      Target: !Join [/, [integrations, !Ref Integ]]
"""


def test_an_api_gateway_v2_http_api_answers_a_real_http_request(
    serve_lrun: ServerFactory, tmp_path: Path
) -> None:
    project = tmp_path / "http-v2"
    project.mkdir()
    (project / "template.yaml").write_text(HTTP_API_V2.lstrip())
    server = serve(serve_lrun, project)
    status, body = http_get(api_url(server, "Http") + "/items/7")
    assert (status, json.loads(body)) == (200, ["GET /items/{id}", {"id": "7"}])


def test_s3_lambda_resizing_python_a_jpeg_in_the_bucket_starts_the_resizer(
    serve_lrun: ServerFactory, tmp_path: Path
) -> None:
    project = copy("s3-lambda-resizing-python", tmp_path)
    server = serve(serve_lrun, project)
    bucket = project / ".lrun" / "buckets" / "my-source-bucket-name"
    bucket.mkdir(parents=True, exist_ok=True)
    (bucket / "notes.txt").write_text("not a picture")  # the .jpeg suffix filter stops it
    (bucket / "dog.jpeg").write_bytes(b"\xff\xd8\xff\xe0 a picture")
    text = logged(server, "ResizerFunction", "REPORT RequestId")
    # It ran for the picture: reading it back from S3 is beyond lrun (no S3 API here).
    assert text.count("START RequestId") == 1


def test_eventbridge_scheduled_lambda_runs_on_its_schedule(
    serve_lrun: ServerFactory, tmp_path: Path
) -> None:
    server = serve(serve_lrun, copy("eventbridge-scheduled-lambda", tmp_path))
    logged(server, "ScheduledFunction", "Hello World", timeout=90)  # rate(1 minute)


# CDK apps: cdk.out found in the project's directory


def test_cdk_api_sqs_lambda_a_queue_message_reaches_the_asset_s_handler(
    lrun: Lrun, serve_lrun: ServerFactory, tmp_path: Path
) -> None:
    server = serve(serve_lrun, copy("cdk-api-sqs-lambda", tmp_path))
    send(lrun, server, "SQSQueue7674CD17", "hello cdk")
    logged(server, "SQSTriggerLambda99F71FB3", "Received Message Body from API GW: hello cdk")


def test_cdk_lambda_s3_trigger_a_new_object_is_an_s3_event(
    serve_lrun: ServerFactory, tmp_path: Path
) -> None:
    project = copy("cdk-lambda-s3-trigger", tmp_path)
    server = serve(serve_lrun, project)
    bucket = project / ".lrun" / "buckets" / "s3bucketFBFA637E"
    bucket.mkdir(parents=True, exist_ok=True)
    (bucket / "report.csv").write_text("a,b\n")
    text = logged(server, "lambdafunction45C982D3", "'key': 'report.csv'")
    assert "'eventName': 'ObjectCreated:Put'" in text


def test_cdk_lambda_layer_the_layer_asset_is_on_the_path(
    lrun: Lrun, serve_lrun: ServerFactory, tmp_path: Path
) -> None:
    project = copy("cdk-lambda-layer", tmp_path)
    server = serve(serve_lrun, project)
    done = lrun("invoke", "lambdafunction45C982D3", env=server.env, cwd=project)
    assert done.returncode == 0, done.stderr
    assert "Hello From Helper Layer!" in done.stderr


def test_a_template_edit_while_serving_is_applied(
    lrun: Lrun, serve_lrun: ServerFactory, tmp_path: Path
) -> None:
    project = copy("sqs-lambda-python-sam", tmp_path)
    server = serve(serve_lrun, project)
    template = project / "template.yaml"
    template.write_text(template.read_text().replace("MemorySize: 128", "MemorySize: 256"))
    wait_for("the reload", lambda: "reloaded" in server.output(), 30)
    rows = json.loads(lrun("functions", "ls", "--json", env=server.env).stdout)
    assert [r["MemorySize"] for r in rows if r["FunctionName"] == "ProcessorFunction"] == [256]


def test_an_unknown_template_key_is_not_a_traceback(lrun: Lrun, tmp_path: Path) -> None:
    project = copy("sqs-lambda-python-sam", tmp_path)
    template = project / "template.yaml"
    template.write_text(template.read_text().replace("Timeout: 3", "Timeout: 0"))
    done = lrun("serve", "--port", "1", cwd=project)
    assert done.returncode == 2
    assert "template.yaml:26: Resources.ProcessorFunction.Properties.Timeout: 0 is out of" in (
        done.stderr
    )


def test_the_aws_cli_sees_the_template_s_functions(
    serve_lrun: ServerFactory, tmp_path: Path
) -> None:
    from tests.acceptance.test_mappings import aws_cli

    server = serve(serve_lrun, copy("lambda-destinations-sam", tmp_path))
    listed = aws_cli(server, tmp_path)("list-functions")
    names = sorted(f["FunctionName"] for f in listed["Functions"])
    assert names == ["MainLambdaFunction", "OnSuccessLambdaFunction"]


def test_docker_is_not_needed_to_validate(lrun: Lrun, tmp_path: Path) -> None:
    project = copy("cdk-lambda-layer", tmp_path)
    done = lrun("validate", cwd=project, env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert done.returncode == 0, done.stderr


def test_lrun_init_sam_is_served_at_once(
    lrun: Lrun, serve_lrun: ServerFactory, tmp_path: Path
) -> None:
    created = lrun("init", "sam", "shop")
    assert created.returncode == 0, created.stderr
    assert "serve it with: cd shop && lrun serve" in created.stdout
    project = tmp_path / "shop"
    validated = lrun("validate", cwd=project)
    assert (
        validated.stdout == f"{project / 'template.yaml'}: ok (3 functions: Hello, Worker, Tick)\n"
    )
    server = serve(serve_lrun, project)
    status, body = http_get(api_url(server, "ServerlessHttpApi") + "/hello?name=lrun")
    assert status == 200 and json.loads(body) == {"message": "Hello, lrun!", "queue": "Jobs"}
    send(lrun, server, "Jobs", "job 1")
    logged(server, "Worker", "job done: job 1")
    logged(server, "Tick", "tick at ", timeout=90)  # rate(1 minute)
