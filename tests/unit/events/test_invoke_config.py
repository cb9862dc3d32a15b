"""Unit tests for orchestrator.invoke_config: FunctionEventInvokeConfig to and from lrun's
AsyncConfig, destination ARNs, and the settings kept in a real Store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import pytest

from orchestrator.aws import ACCOUNT_ID, REGION
from orchestrator.errors import InvalidParameterValue
from orchestrator.events.invoke_config import (
    InvokeConfigs,
    destination_arn,
    from_api,
    parse_destination,
    to_api,
)
from orchestrator.events.store import Store
from orchestrator.manifest.triggers import AsyncConfig, Destination
from tests.fakes import run

T = TypeVar("T")
LAMBDA = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function"
SQS = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}"
DECLARED = frozenset({"out/ok.jsonl", "failed.jsonl"})  # the manifest's file destinations
INVALID = (
    "The destination ARN {arn} is invalid. Use a function ARN, a queue ARN "
    f"(arn:aws:sqs:{REGION}:{ACCOUNT_ID}:NAME) or a file destination the manifest declares "
    "(declared: {declared})."
)
DECLARED_ARNS = "arn:lrun:file:::failed.jsonl, arn:lrun:file:::out/ok.jsonl"
AT_LEAST_ONE = "You must specify at least one of error handling or destination setting."

# What a manifest could have given: every setting away from its default.
BASE = AsyncConfig(
    maximum_retry_attempts=1,
    maximum_event_age=600,
    retry_delay=5.0,
    on_success=Destination("queue", "done"),
    on_failure=Destination("function", "handle-failure"),
    dead_letter_queue="dlq",
)


# from_api: Put replaces, Update merges


def test_put_replaces_every_setting_it_does_not_give_with_the_default() -> None:
    config = from_api({"MaximumRetryAttempts": 0}, BASE, merge=False)
    assert config == AsyncConfig(
        maximum_retry_attempts=0,
        maximum_event_age=21600,
        retry_delay=5.0,  # not an API setting: the manifest's stays
        on_success=None,
        on_failure=None,
        dead_letter_queue="dlq",  # not an API setting here (DeadLetterConfig is the function's)
    )


def test_put_with_destinations_only_resets_the_error_handling() -> None:
    body = {"DestinationConfig": {"OnFailure": {"Destination": f"{SQS}:failed"}}}
    config = from_api(body, BASE, merge=False)
    assert config == AsyncConfig(2, 21600, 5.0, None, Destination("queue", "failed"), "dlq")


def test_update_merges_with_the_current_settings() -> None:
    config = from_api({"MaximumEventAgeInSeconds": 60}, BASE, merge=True)
    assert config == AsyncConfig(1, 60, 5.0, BASE.on_success, BASE.on_failure, "dlq")


def test_update_changes_only_the_destinations_it_names() -> None:
    body = {"DestinationConfig": {"OnSuccess": {"Destination": f"{LAMBDA}:next-step"}}}
    config = from_api(body, BASE, merge=True)
    assert config.on_success == Destination("function", "next-step")
    assert config.on_failure == BASE.on_failure
    assert (config.maximum_retry_attempts, config.maximum_event_age) == (1, 600)


def test_update_with_an_empty_destination_removes_it() -> None:
    config = from_api({"DestinationConfig": {"OnSuccess": {}}}, BASE, merge=True)
    assert config.on_success is None
    assert config.on_failure == BASE.on_failure


def test_put_with_every_setting() -> None:
    body = {
        "MaximumRetryAttempts": 2,
        "MaximumEventAgeInSeconds": 21600,
        "DestinationConfig": {
            "OnSuccess": {"Destination": "arn:lrun:file:::out/ok.jsonl"},
            "OnFailure": {"Destination": f"{SQS}:failed"},
        },
    }
    config = from_api(body, AsyncConfig(), merge=False, files=DECLARED)
    assert config == AsyncConfig(
        2,
        21600,
        60.0,
        Destination("file", "out/ok.jsonl"),
        Destination("queue", "failed"),
        None,
    )


@pytest.mark.parametrize("merge", [False, True])
@pytest.mark.parametrize("body", [{}, {"Qualifier": "$LATEST"}, {"FunctionName": "f"}])
def test_at_least_one_setting_is_required(body: dict[str, Any], merge: bool) -> None:
    with pytest.raises(InvalidParameterValue) as caught:
        from_api(body, BASE, merge)
    assert caught.value.message == AT_LEAST_ONE
    assert caught.value.status == 400


# from_api: ranges


@pytest.mark.parametrize("value", [0, 1, 2])
def test_retry_attempts_from_0_to_2_are_taken(value: int) -> None:
    assert from_api({"MaximumRetryAttempts": value}, BASE, True).maximum_retry_attempts == value


@pytest.mark.parametrize("value", [60, 3600, 21600])
def test_event_ages_from_60_to_21600_are_taken(value: int) -> None:
    config = from_api({"MaximumEventAgeInSeconds": value}, BASE, True)
    assert config.maximum_event_age == value


@pytest.mark.parametrize(
    ("field", "value", "low", "high"),
    [
        ("MaximumRetryAttempts", -1, 0, 2),
        ("MaximumRetryAttempts", 3, 0, 2),
        ("MaximumRetryAttempts", True, 0, 2),
        ("MaximumRetryAttempts", "1", 0, 2),
        ("MaximumRetryAttempts", 1.0, 0, 2),
        ("MaximumRetryAttempts", None, 0, 2),
        ("MaximumEventAgeInSeconds", 59, 60, 21600),
        ("MaximumEventAgeInSeconds", 21601, 60, 21600),
        ("MaximumEventAgeInSeconds", 0, 60, 21600),
    ],
)
def test_out_of_range_settings_get_lambdas_validation_message(
    field: str, value: object, low: int, high: int
) -> None:
    with pytest.raises(InvalidParameterValue) as caught:
        from_api({field: value}, BASE, merge=False)
    message = caught.value.message
    assert message.startswith(f"1 validation error detected: Value '{value}' at '")
    assert message.endswith(
        f"' failed to satisfy constraint: Member must have value between {low} and {high}"
    )
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("field", "member", "value"),
    [
        ("MaximumRetryAttempts", "maximumRetryAttempts", 3),
        ("MaximumEventAgeInSeconds", "maximumEventAgeInSeconds", 59),
    ],
)
def test_the_validation_message_names_the_member_in_camel_case(
    field: str, member: str, value: int
) -> None:
    with pytest.raises(InvalidParameterValue) as caught:
        from_api({field: value}, BASE, merge=False)
    assert f"Value '{value}' at '{member}' failed to satisfy constraint" in caught.value.message


def test_a_merged_setting_out_of_range_is_refused_too() -> None:
    with pytest.raises(InvalidParameterValue):
        from_api({"MaximumRetryAttempts": 5, "MaximumEventAgeInSeconds": 60}, BASE, merge=True)


# Destinations as ARNs


@pytest.mark.parametrize(
    ("arn", "destination"),
    [
        (f"{LAMBDA}:other", Destination("function", "other")),
        (
            "arn:aws:lambda:eu-west-1:123456789012:function:my_fn-2",
            Destination("function", "my_fn-2"),
        ),
        (f"{SQS}:failed", Destination("queue", "failed")),
        ("arn:aws:sqs:eu-west-1:123456789012:jobs-dlq", Destination("queue", "jobs-dlq")),
        ("arn:lrun:file:::out/ok.jsonl", Destination("file", "out/ok.jsonl")),
    ],
)
def test_parse_destination_takes_function_queue_and_declared_file_arns(
    arn: str, destination: Destination
) -> None:
    assert parse_destination(arn, DECLARED) == destination


@pytest.mark.parametrize(
    "arn",
    [
        # Files the manifest does not declare: the attack of issue 8, and its variants.
        "arn:lrun:file:::/root/.bashrc",
        "arn:lrun:file:::../outside.jsonl",
        "arn:lrun:file:::out/../../outside.jsonl",
        "arn:lrun:file:::out/other.jsonl",
        "arn:lrun:file:::./out/ok.jsonl",
        "arn:lrun:file:::/",
        "arn:aws:sns:us-east-1:000000000000:topic",
        "arn:aws:s3:::bucket",
        "arn:aws:events:us-east-1:000000000000:event-bus/default",
        "arn:aws:lambda:us-east-1:000000000000:function:",
        "arn:aws:sqs:us-east-1:0000:short-account",
        "not an arn",
        "",
        42,
        None,
    ],
)
def test_parse_destination_refuses_anything_else_with_a_message_naming_the_kinds(
    arn: object,
) -> None:
    with pytest.raises(InvalidParameterValue) as caught:
        parse_destination(arn, DECLARED)
    shown = arn if isinstance(arn, str) and arn else repr(arn)
    assert caught.value.message == INVALID.format(arn=shown, declared=DECLARED_ARNS)
    assert caught.value.error_type == "InvalidParameterValueException"
    assert caught.value.status == 400


def test_without_declared_files_every_file_arn_is_refused() -> None:
    with pytest.raises(InvalidParameterValue) as caught:
        parse_destination("arn:lrun:file:::out/ok.jsonl", ())
    assert caught.value.message == INVALID.format(
        arn="arn:lrun:file:::out/ok.jsonl", declared="none"
    )


def test_from_api_refuses_an_unsupported_destination() -> None:
    body = {"DestinationConfig": {"OnSuccess": {"Destination": "arn:aws:sns:us-east-1:1:t"}}}
    with pytest.raises(InvalidParameterValue) as caught:
        from_api(body, BASE, merge=False, files=DECLARED)
    assert caught.value.message == INVALID.format(
        arn="arn:aws:sns:us-east-1:1:t", declared=DECLARED_ARNS
    )


def test_from_api_refuses_an_undeclared_file_in_an_update_too() -> None:
    body = {"DestinationConfig": {"OnFailure": {"Destination": "arn:lrun:file:::/etc/passwd"}}}
    with pytest.raises(InvalidParameterValue):
        from_api(body, BASE, merge=True, files=DECLARED)


@pytest.mark.parametrize(
    "destination",
    [
        Destination("function", "other"),
        Destination("queue", "failed"),
        Destination("file", "out/ok.jsonl"),
    ],
)
def test_destination_arn_round_trips(destination: Destination) -> None:
    assert parse_destination(destination_arn(destination), DECLARED) == destination


def test_destination_arns_are_lambdas_and_sqss_in_lrun_s_account() -> None:
    assert destination_arn(Destination("function", "f")) == f"{LAMBDA}:f"
    assert destination_arn(Destination("queue", "q")) == f"{SQS}:q"
    assert destination_arn(Destination("file", "x/y.jsonl")) == "arn:lrun:file:::x/y.jsonl"


def test_a_destination_config_that_is_not_an_object_is_a_parameter_error() -> None:
    with pytest.raises(InvalidParameterValue):
        from_api({"DestinationConfig": f"{SQS}:failed"}, BASE, merge=False)


# to_api


def test_to_api_has_lambdas_shape() -> None:
    config = AsyncConfig(
        1,
        3600,
        5.0,
        Destination("file", "out/ok.jsonl"),
        Destination("queue", "failed"),
        "dlq",
    )
    assert to_api("worker", config, 1_700_000_000.5) == {
        "LastModified": 1_700_000_000.5,
        "FunctionArn": f"{LAMBDA}:worker:$LATEST",
        "MaximumRetryAttempts": 1,
        "MaximumEventAgeInSeconds": 3600,
        "DestinationConfig": {
            "OnSuccess": {"Destination": "arn:lrun:file:::out/ok.jsonl"},
            "OnFailure": {"Destination": f"{SQS}:failed"},
        },
    }


def test_to_api_without_destinations() -> None:
    shown = to_api("worker", AsyncConfig(), 12.0)
    assert shown["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {}}  # as AWS shows them
    assert shown["MaximumRetryAttempts"] == 2
    assert shown["MaximumEventAgeInSeconds"] == 21600
    json.dumps(shown)  # a JSON body as it is


def test_to_api_leaves_out_the_limits_that_were_not_set() -> None:
    """AWS echoes only what was set: a Put of MaximumRetryAttempts alone shows no event age."""
    shown = to_api("worker", AsyncConfig(), 12.0, frozenset({"MaximumRetryAttempts"}))
    assert set(shown) == {
        "LastModified",
        "FunctionArn",
        "MaximumRetryAttempts",
        "DestinationConfig",
    }
    bare = to_api("worker", AsyncConfig(), 12.0, frozenset())
    assert "MaximumRetryAttempts" not in bare and "MaximumEventAgeInSeconds" not in bare


def test_to_api_then_from_api_gives_the_same_settings() -> None:
    body = to_api("worker", BASE, 1.0)
    assert from_api(body, BASE, merge=False) == BASE


# InvokeConfigs in the store


def test_put_get_and_delete(store: Store) -> None:
    async def main() -> None:
        configs = InvokeConfigs(store)
        await configs.load()
        assert configs.get("worker") is None
        modified = await configs.put("worker", BASE)
        assert configs.get("worker") == (BASE, modified)
        assert await configs.delete("worker") is True
        assert configs.get("worker") is None
        assert await configs.delete("worker") is False

    run(main())


def test_put_again_replaces_and_moves_last_modified(store: Store) -> None:
    async def main() -> None:
        configs = InvokeConfigs(store)
        first = await configs.put("worker", BASE)
        replaced = AsyncConfig(0, 60)
        second = await configs.put("worker", replaced)
        assert second >= first
        assert configs.get("worker") == (replaced, second)
        rows = await store.run(
            lambda db: db.execute("SELECT function FROM invoke_configs").fetchall()
        )
        assert rows == [("worker",)]

    run(main())


def test_settings_survive_a_new_store(store: Store, store_path: Path) -> None:
    other = AsyncConfig(0, 60, 60.0, None, Destination("file", "out/f.jsonl"), None)

    async def write() -> dict[str, float]:
        configs = InvokeConfigs(store)
        stamps = {
            "worker": await configs.put("worker", BASE),
            "other": await configs.put("other", other),
            "gone": await configs.put("gone", AsyncConfig()),
        }
        await configs.delete("gone")
        return stamps

    stamps = run(write())
    store.close()

    reopened = Store(store_path)
    reopened.open()
    try:

        async def read() -> InvokeConfigs:
            configs = InvokeConfigs(reopened)
            await configs.load()
            return configs

        configs = run(read())
        assert configs.get("worker") == (BASE, stamps["worker"])
        assert configs.get("other") == (other, stamps["other"])
        assert configs.get("gone") is None
    finally:
        reopened.close()
