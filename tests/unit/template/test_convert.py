"""A template becomes the manifest lrun.yaml would give: functions, queues, buckets, triggers and
async settings, with notices for what lrun does otherwise and problems named by the template."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.aws import ACCOUNT_ID, REGION
from orchestrator.manifest.triggers import (
    AsyncConfig,
    BucketSource,
    Destination,
    QueueSource,
    QueueSpec,
    ScheduleSource,
)
from orchestrator.template.convert import stack_name
from orchestrator.template.functions import host_architecture
from tests.unit.template.conftest import load, notices, problems, write

APP = """
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage: {Type: String, Default: dev, AllowedValues: [dev, prod]}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
Mappings:
  Sizes: {dev: {Memory: 256}, prod: {Memory: 1024}}
Globals:
  Function:
    Runtime: python3.13
    Timeout: 10
    Environment:
      Variables: {STAGE: !Ref Stage, SHARED: yes}
    Tags: {team: shop}
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 60
      RedrivePolicy: {deadLetterTargetArn: !GetAtt OrdersDlq.Arn, maxReceiveCount: 3}
  OrdersDlq:
    Type: AWS::SQS::Queue
  Uploads:
    Type: AWS::S3::Bucket
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      MemorySize: !FindInMap [Sizes, !Ref Stage, Memory]
      Environment:
        Variables:
          QUEUE_URL: !Ref Orders
          TABLE: !If [IsProd, prod-table, !Ref AWS::NoValue]
          FLAG: false
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt Orders.Arn
            BatchSize: 5
            MaximumBatchingWindowInSeconds: 2
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig: {MaximumConcurrency: 4}
            FilterCriteria:
              Filters: [{Pattern: '{"body": {"kind": ["order"]}}'}]
        Tick:
          Type: Schedule
          Properties: {Schedule: rate(5 minutes)}
        Upload:
          Type: S3
          Properties:
            Bucket: !Ref Uploads
            Events: s3:ObjectCreated:*
            Filter: {S3Key: {Rules: [{Name: prefix, Value: in/}, {Name: suffix, Value: .csv}]}}
      EventInvokeConfig:
        MaximumRetryAttempts: 1
        MaximumEventAgeInSeconds: 120
        DestinationConfig:
          OnSuccess: {Type: Lambda, Destination: !GetAtt Audit.Arn}
          OnFailure: {Type: SQS, Destination: !GetAtt OrdersDlq.Arn}
      DeadLetterQueue: {Type: SQS, TargetArn: !GetAtt OrdersDlq.Arn}
  Audit:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: !Sub "${AWS::StackName}-audit"
      CodeUri: src/
      Handler: app.handler
      Timeout: 20
      Environment: {Variables: {SHARED: "no"}}
      Tags: {owner: ops}
  ProdOnly:
    Type: AWS::Serverless::Function
    Condition: IsProd
    Properties: {CodeUri: src/, Handler: app.handler}
"""


def test_functions_with_globals_parameters_and_conditions(tmp_path: Path) -> None:
    manifest = load(write(tmp_path, APP))
    assert list(manifest.functions) == ["Worker", f"{stack_name(tmp_path)}-audit"]
    worker = manifest.function("Worker")
    assert (worker.runtime, worker.handler, worker.code) == (
        "python3.13",
        "app.handler",
        tmp_path / "src",
    )
    assert (worker.memory, worker.timeout) == (256, 10)
    assert dict(worker.environment) == {
        "STAGE": "dev",
        "SHARED": "true",  # YAML's yes, as CloudFormation writes a boolean
        "QUEUE_URL": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/Orders",
        "FLAG": "false",
    }
    audit = manifest.function(f"{stack_name(tmp_path)}-audit")
    assert audit.timeout == 20  # the resource's own value wins over Globals
    assert dict(audit.environment) == {"STAGE": "dev", "SHARED": "no"}  # mappings merge
    assert dict(manifest.tags[audit.name]) == {"team": "shop", "owner": "ops"}


def test_parameter_overrides_change_the_manifest(tmp_path: Path) -> None:
    manifest = load(write(tmp_path, APP), Stage="prod")
    assert "ProdOnly" in manifest.functions
    worker = manifest.function("Worker")
    assert worker.memory == 1024 and worker.environment["TABLE"] == "prod-table"


def test_queues_buckets_and_every_trigger(tmp_path: Path) -> None:
    manifest = load(write(tmp_path, APP))
    assert dict(manifest.queues) == {
        "Orders": QueueSpec("Orders", 60, 3, "OrdersDlq"),
        "OrdersDlq": QueueSpec("OrdersDlq"),
    }
    assert manifest.buckets["Uploads"].path == tmp_path / ".lrun" / "buckets" / "Uploads"
    triggers = manifest.triggers["Worker"]
    assert triggers.events == (
        QueueSource("Orders", 5, 2, 4, True, ('{"body": {"kind": ["order"]}}',)),
        ScheduleSource("rate(5 minutes)"),
        BucketSource("Uploads", ("created",), "in/", ".csv"),
    )
    assert triggers.async_config == AsyncConfig(
        maximum_retry_attempts=1,
        maximum_event_age=120,
        on_success=Destination("function", f"{stack_name(tmp_path)}-audit"),
        on_failure=Destination("queue", "OrdersDlq"),
        dead_letter_queue="OrdersDlq",
    )


def test_a_bucket_is_a_local_directory_and_says_where(tmp_path: Path) -> None:
    manifest = load(write(tmp_path, APP))
    path = tmp_path / ".lrun" / "buckets" / "Uploads"
    assert (
        f"Resources.Uploads: a local bucket: the directory {path}; files put there are its objects"
        in notices(manifest)
    )


FUNCTION = """
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Runtime: {runtime}
      {extra}
"""


def one_function(tmp_path: Path, runtime: str = "python3.13", extra: str = "") -> Path:
    return write(tmp_path, FUNCTION.format(runtime=runtime, extra=extra))


@pytest.mark.parametrize(
    ("runtime", "served", "message"),
    [
        ("python3.12", "python3.13", "lrun has no python3.12 image; runs it on python3.13"),
        ("python3.9", "python3.11", "lrun has no python3.9 image; runs it on python3.11"),
        ("nodejs18.x", "nodejs20.x", "lrun has no nodejs18.x image; runs it on nodejs20.x"),
        ("java17", "java21", "lrun has no java17 image; runs it on java21"),
        ("ruby3.2", "ruby3.3", "lrun has no ruby3.2 image; runs it on ruby3.3"),
        ("provided.al2023", "provided", "runs on lrun's provided runtime"),
    ],
)
def test_an_older_runtime_runs_on_the_nearest_newer_with_a_notice(
    tmp_path: Path, runtime: str, served: str, message: str
) -> None:
    manifest = load(one_function(tmp_path, runtime))
    assert manifest.function("Fn").runtime == served
    [notice] = manifest.notices
    assert notice.where == "Resources.Fn.Properties.Runtime" and notice.line == 7
    assert notice.message.startswith(message)


@pytest.mark.parametrize(
    ("runtime", "extra", "where", "message"),
    [
        ("dotnet8", "", "Runtime", "lrun has no runtime for dotnet8; the function is not served"),
        ("go1.x", "", "Runtime", "build it for provided.al2023"),
        ("python3.13", "CodeUri: s3://bucket/key.zip", "CodeUri", "the code is in S3"),
        ("python3.13", "CodeUri: {Bucket: b, Key: k}", "CodeUri", "the code is in S3 (s3://b/k)"),
        ("python3.13", "CodeUri: missing/", "CodeUri", "missing/ does not exist"),
    ],
)
def test_a_function_lrun_cannot_run_is_left_out_with_one_notice(
    tmp_path: Path, runtime: str, extra: str, where: str, message: str
) -> None:
    path = one_function(tmp_path, runtime, extra)
    text = path.read_text()
    if extra.startswith("CodeUri"):  # the later key replaces src/
        path.write_text(text.replace("      CodeUri: src/\n", ""))
    path.write_text(
        path.read_text() + "  Other:\n    Type: AWS::Serverless::Function\n"
        "    Properties: {CodeUri: src/, Handler: app.handler, Runtime: python3.13}\n"
    )
    manifest = load(path)
    assert list(manifest.functions) == ["Other"]  # the rest still runs
    [notice] = manifest.notices
    assert notice.where == f"Resources.Fn.Properties.{where}"
    assert message in notice.message, notice.message


def test_nothing_served_is_an_error_that_shows_why(tmp_path: Path) -> None:
    found = problems(one_function(tmp_path, "dotnet8"))
    assert [p.where for p in found] == ["Resources", "Resources.Fn.Properties.Runtime"]
    assert found[0].message == (
        "no function of the template can be served by lrun (the notices say why)"
    )


@pytest.mark.parametrize(
    ("extra", "where", "message"),
    [
        ("VpcConfig: {SubnetIds: [a]}", "VpcConfig", "lrun does not join VPCs"),
        ("Architectures: [{other}]", "Architectures", "asked; lrun runs the function on this host"),
        ("Tracing: Active", "Tracing", "lrun gives each invocation an X-Ray trace header"),
        ("FileSystemConfigs: [{Arn: a, LocalMountPath: /mnt/x}]", "FileSystemConfigs", "EFS"),
        ("SnapStart: {ApplyOn: PublishedVersions}", "SnapStart", "SnapStart is not emulated"),
        ("Layers: [arn:aws:lambda:us-east-1:1:layer:x:1]", "Layers", "runs without it"),
        ("Weird: 1", "Weird", "Weird is not used by lrun; the function runs without it"),
        (
            "Environment: {Variables: {A: !ImportValue shared}}",
            "Environment.Variables.A",
            "Fn::ImportValue 'shared' reads another stack's export",
        ),
    ],
)
def test_what_lrun_does_not_do_is_one_notice_and_the_function_runs(
    tmp_path: Path, extra: str, where: str, message: str
) -> None:
    other = "x86_64" if host_architecture() == "arm64" else "arm64"
    manifest = load(one_function(tmp_path, extra=extra.replace("{other}", other)))
    assert "Fn" in manifest.functions
    [notice] = manifest.notices
    assert (notice.where, notice.line) == (f"Resources.Fn.Properties.{where}", 8)
    assert message in notice.message, notice.message


def test_lrun_s_own_rules_name_the_template_s_line_and_property(tmp_path: Path) -> None:
    found = problems(one_function(tmp_path, extra="MemorySize: 20000\n      Timeout: 0"))
    assert [(p.line, p.where) for p in found] == [
        (8, "Resources.Fn.Properties.MemorySize"),
        (9, "Resources.Fn.Properties.Timeout"),
    ]
    assert found[0].file == str(tmp_path / "template.yaml")
    assert found[0].message.startswith("20000 is out of range")


def test_template_mistakes_are_problems_at_their_line(tmp_path: Path) -> None:
    found = problems(one_function(tmp_path, extra="Environment: {Variables: {A: !Ref Nope}}"))
    assert [(p.line, p.where) for p in found] == [
        (8, "Resources.Fn.Properties.Environment.Variables.A")
    ]
    assert found[0].message.startswith("Ref 'Nope' names no parameter or resource")


def test_inline_code_is_written_where_cloudformation_would_put_it(
    tmp_path: Path, state: Path
) -> None:
    text = FUNCTION.format(
        runtime="python3.13", extra="InlineCode: |\n        def handler(e, c): return 1"
    )
    path = write(
        tmp_path, text.replace("      CodeUri: src/\n", "").replace("app.handler", "index.handler")
    )
    code = load(path).function("Fn").code
    assert code is not None and code.parent == state / "template-code"
    assert (code / "index.py").read_text() == "def handler(e, c): return 1\n"
    assert load(path).function("Fn").code == code  # the same content, the same directory


def test_undeclared_queues_are_made_local_with_a_notice(tmp_path: Path) -> None:
    extra = (
        "Events:\n        E:\n          Type: SQS\n          Properties:\n"
        f"            Queue: arn:aws:sqs:{REGION}:123456789012:external"
    )
    manifest = load(one_function(tmp_path, extra=extra))
    assert "external" in manifest.queues
    assert manifest.triggers["Fn"].events == (QueueSource("external"),)
    assert "lrun makes a local queue external for it" in manifest.notices[0].message


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ("Type: SNS\n          Properties: {Topic: t}", "SNS is not emulated"),
        ("Type: Kinesis\n          Properties: {Stream: s}", "Kinesis streams are not emulated"),
        ("Type: EventBridgeRule\n          Properties: {Pattern: {}}", "EventBridge event buses"),
        (
            "Type: Schedule\n          Properties: {Schedule: rate(1 minute), Enabled: false}",
            "disabled in the template",
        ),
        (
            "Type: ScheduleV2\n          Properties:\n"
            "            ScheduleExpression: 'at(2030-01-01T00:00:00)'",
            "lrun does not run this schedule",
        ),
    ],
)
def test_events_lrun_does_not_emulate_are_notices(tmp_path: Path, event: str, message: str) -> None:
    manifest = load(one_function(tmp_path, extra=f"Events:\n        E:\n          {event}"))
    assert manifest.triggers["Fn"].events == ()
    assert any(message in n.message for n in manifest.notices), notices(manifest)


RESOURCES = """
Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.13
      Handler: index.handler
      Code: {ZipFile: "def handler(e, c): return e"}
      Layers: [!Ref Shared]
      DeadLetterConfig: {TargetArn: !GetAtt Dlq.Arn}
  Shared:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: layer/}
  Dlq: {Type: AWS::SQS::Queue}
  Jobs: {Type: AWS::SQS::Queue}
  Mapping:
    Type: AWS::Lambda::EventSourceMapping
    Properties: {FunctionName: !Ref Fn, EventSourceArn: !GetAtt Jobs.Arn, BatchSize: 2}
  Config:
    Type: AWS::Lambda::EventInvokeConfig
    Properties: {FunctionName: !Ref Fn, Qualifier: $LATEST, MaximumRetryAttempts: 0}
  Nightly:
    Type: AWS::Events::Rule
    Properties:
      ScheduleExpression: cron(0 3 * * ? *)
      Targets: [{Arn: !GetAtt Fn.Arn, Id: t}]
  Every:
    Type: AWS::Scheduler::Schedule
    Properties:
      ScheduleExpression: rate(10 minutes)
      FlexibleTimeWindow: {Mode: "OFF"}
      Target: {Arn: !GetAtt Fn.Arn, RoleArn: r}
  Pattern:
    Type: AWS::Events::Rule
    Properties: {EventPattern: {source: [x]}, Targets: [{Arn: !GetAtt Fn.Arn, Id: t}]}
  Table: {Type: AWS::DynamoDB::Table}
  Table2: {Type: AWS::DynamoDB::Table}
  Role: {Type: AWS::IAM::Role}
  Thing: {Type: Custom::Thing}
"""


def test_cloudformation_resources_that_start_functions(tmp_path: Path) -> None:
    (tmp_path / "layer" / "python").mkdir(parents=True)
    manifest = load(write(tmp_path, RESOURCES))
    spec = manifest.function("Fn")
    assert spec.layers and spec.layers[0].source.endswith("layer")
    triggers = manifest.triggers["Fn"]
    assert triggers.events == (
        QueueSource("Jobs", 2),
        ScheduleSource("cron(0 3 * * ? *)"),
        ScheduleSource("rate(10 minutes)"),
    )
    assert triggers.async_config == AsyncConfig(maximum_retry_attempts=0, dead_letter_queue="Dlq")
    assert notices(manifest) == [
        "Resources.Pattern.Properties.EventPattern: EventBridge event buses are not emulated "
        "(lrun invoke FN --payload-file event.json, or boto3's invoke)",
        "Resources (Table, Table2): AWS::DynamoDB::Table: functions get its name and ARN, but "
        "no table exists; point them at a local DynamoDB through an environment variable",
        "Resources.Thing: Custom::Thing: custom resources are not run; Fn::GetAtt of their "
        "attributes has no value",
    ]


def test_json_templates_are_read_the_same(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "template.json").write_text(
        '{"Resources": {"Fn": {"Type": "AWS::Serverless::Function", "Properties": '
        '{"CodeUri": "src", "Handler": "app.handler", "Runtime": "python3.13", '
        '"Environment": {"Variables": {"REGION": {"Fn::Sub": "${AWS::Region}"}}}}}}}'
    )
    manifest = load(tmp_path / "template.json")
    assert manifest.function("Fn").environment["REGION"] == REGION


def test_logging_config_is_the_manifests_logging(tmp_path: Path) -> None:
    """LoggingConfig runs as Lambda's (lrun writes JSON logs), and its values are checked as the
    manifest's, at the template's line."""
    extra = "LoggingConfig: {LogFormat: JSON, ApplicationLogLevel: DEBUG, LogGroup: /t/fn}"
    manifest = load(one_function(tmp_path, extra=extra))
    assert manifest.notices == ()
    assert manifest.functions["Fn"].logging.wire("Fn") == {
        "LogFormat": "JSON",
        "ApplicationLogLevel": "DEBUG",
        "SystemLogLevel": "INFO",
        "LogGroup": "/t/fn",
    }
    [problem] = problems(one_function(tmp_path, extra="LoggingConfig: {LogFormat: XML}"))
    assert problem.where == "Resources.Fn.Properties.LoggingConfig"
    assert "format must be one of: Text, JSON" in problem.message


def test_a_zipped_layer_and_a_layer_published_to_lrun_are_kept(tmp_path: Path) -> None:
    import zipfile

    with zipfile.ZipFile(tmp_path / "layer.zip", "w") as archive:
        archive.writestr("python/common.py", "X = 1\n")
    published = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:layer:sdk:3"
    elsewhere = "arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3:7"
    extra = f"Layers: [!Ref Zipped, {published}, {elsewhere}]"
    path = one_function(tmp_path, extra=extra)
    path.write_text(
        path.read_text()
        + "  Zipped:\n    Type: AWS::Serverless::LayerVersion\n"
        + "    Properties: {ContentUri: layer.zip}\n"
    )
    manifest = load(path)
    layers = manifest.function("Fn").layers
    assert [(layer.kind, layer.source) for layer in layers] == [
        ("zip", str(tmp_path / "layer.zip")),
        ("arn", published),
    ]
    [notice] = manifest.notices
    assert f"layer {elsewhere} is not a layer of this template" in notice.message


def test_auto_publish_alias_refs_resolve_and_the_alias_is_a_notice(tmp_path: Path) -> None:
    extra = "AutoPublishAlias: live\n      Environment: {Variables: {SELF: !Ref Fn.Alias}}"
    manifest = load(one_function(tmp_path, extra=extra))
    assert manifest.function("Fn").environment["SELF"] == (
        f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:Fn:live"
    )
    [notice] = manifest.notices
    assert notice.where == "Resources.Fn.Properties.AutoPublishAlias"
    assert "versions and aliases are not published from a template" in notice.message
