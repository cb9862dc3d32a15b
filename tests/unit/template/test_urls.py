"""Function URLs from a template: SAM's FunctionUrlConfig and AWS::Lambda::Url become the
manifest's url: (auth, CORS, invoke mode), checked by its rules at the template's lines."""

from __future__ import annotations

from pathlib import Path

from orchestrator.manifest.urls import UrlSpec
from tests.unit.template.conftest import load, notices, problems, write

SAM = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Web:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Runtime: python3.13
      FunctionUrlConfig:
        AuthType: NONE
        InvokeMode: RESPONSE_STREAM
        Cors:
          AllowOrigins: [https://app.test]
          AllowMethods: [GET, POST]
          AllowHeaders: [content-type]
          ExposeHeaders: [x-id]
          MaxAge: 300
          AllowCredentials: true
"""

CFN = """
Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.13
      Handler: index.handler
      Code: {ZipFile: "def handler(e, c): return 1"}
  Other:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.13
      Handler: index.handler
      Code: {ZipFile: "def handler(e, c): return 2"}
  FnUrl:
    Type: AWS::Lambda::Url
    Properties:
      TargetFunctionArn: !GetAtt Fn.Arn
      AuthType: AWS_IAM
  OtherUrl:
    Type: AWS::Lambda::Url
    Properties:
      TargetFunctionArn: !Ref Other
      AuthType: NONE
      Qualifier: live
"""


def test_function_url_config_is_the_function_s_url(tmp_path: Path) -> None:
    manifest = load(write(tmp_path, SAM))
    url = manifest.urls["Web"]
    assert isinstance(url, UrlSpec)
    assert (url.auth, url.invoke_mode, url.port) == ("NONE", "RESPONSE_STREAM", None)
    assert url.cors is not None
    assert url.cors.allow_origins == ("https://app.test",)
    assert url.cors.allow_methods == ("GET", "POST")
    assert (url.cors.max_age, url.cors.allow_credentials) == (300, True)
    assert manifest.notices == ()


def test_lambda_url_resources_name_their_function_by_arn_or_ref(tmp_path: Path) -> None:
    manifest = load(write(tmp_path, CFN))
    assert manifest.urls["Fn"].auth == "AWS_IAM"
    assert manifest.urls["Fn"].invoke_mode == "BUFFERED"  # Lambda's default
    assert manifest.urls["Other"].auth == "NONE"
    assert notices(manifest) == [
        "Resources.OtherUrl.Properties.Qualifier: the URL of live is served on the function "
        "itself ($LATEST): lrun's url: names no version or alias"
    ]


def test_a_url_on_a_function_lrun_does_not_serve_is_a_notice(tmp_path: Path) -> None:
    text = CFN + (
        "  Elsewhere:\n    Type: AWS::Lambda::Url\n    Properties:\n"
        "      TargetFunctionArn: arn:aws:lambda:us-east-1:123456789012:function:far\n"
        "      AuthType: NONE\n"
    )
    manifest = load(write(tmp_path, text))
    assert set(manifest.urls) == {"Fn", "Other"}
    assert (
        "Resources.Elsewhere.Properties.TargetFunctionArn: "
        "'arn:aws:lambda:us-east-1:123456789012:function:far' is not a function lrun serves"
    ) in " ".join(notices(manifest))


def test_a_second_url_for_one_function_is_a_notice(tmp_path: Path) -> None:
    text = CFN + (
        "  Again:\n    Type: AWS::Lambda::Url\n    Properties:\n"
        "      TargetFunctionArn: !GetAtt Fn.Arn\n      AuthType: NONE\n"
    )
    manifest = load(write(tmp_path, text))
    assert manifest.urls["Fn"].auth == "AWS_IAM"  # the first one
    assert "function 'Fn' already has the URL of Resources.FnUrl" in " ".join(notices(manifest))


def test_wrong_settings_are_problems_at_the_template_s_lines(tmp_path: Path) -> None:
    text = SAM.replace("AuthType: NONE", "AuthType: OPEN").replace(
        "InvokeMode: RESPONSE_STREAM", "InvokeMode: FAST"
    )
    found = problems(write(tmp_path, text))
    assert {p.file for p in found} == {str(tmp_path / "template.yaml")}
    assert all(p.line is not None and p.line >= 10 for p in found), found
    messages = " ".join(p.message for p in found)
    assert "OPEN" in messages and "FAST" in messages


def test_a_url_without_auth_type_says_so(tmp_path: Path) -> None:
    found = problems(write(tmp_path, SAM.replace("        AuthType: NONE\n", "")))
    assert [p.message.split(";")[0] for p in found] == ["auth is missing"]
    assert found[0].where.startswith("Resources.Web.Properties.FunctionUrlConfig")


def test_the_address_of_the_url_sam_makes_is_a_notice(tmp_path: Path) -> None:
    text = SAM.replace(
        "      FunctionUrlConfig:",
        "      Environment: {Variables: {SELF: !GetAtt WebUrl.FunctionUrl, KEPT: b}}\n"
        "      FunctionUrlConfig:",
    )
    manifest = load(write(tmp_path, text))
    assert manifest.function("Web").environment == {"KEPT": "b"}
    assert notices(manifest) == [
        "Resources.Web.Properties.Environment.Variables.SELF: Fn::GetAtt WebUrl.FunctionUrl: a "
        "function URL's address is chosen when lrun serve starts (it prints it, and lrun ps "
        "--urls lists it); lrun leaves SELF out"
    ]
