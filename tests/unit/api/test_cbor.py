"""The CBOR codec under CloudWatch's RPC v2 CBOR protocol: what botocore's own serializer
writes is read back, what lrun writes botocore's parser reads, and hostile bodies are refused
at their own size (DESIGN D9)."""

from __future__ import annotations

import datetime

import pytest
from botocore.loaders import Loader
from botocore.model import ServiceModel
from botocore.parsers import RpcV2CBORParser
from botocore.serialize import RpcV2CBORSerializer

from orchestrator.api import cbor

MODEL = ServiceModel(Loader().load_service_model("cloudwatch", "service-2"))


def test_botocores_request_is_read() -> None:
    when = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.UTC)
    request = RpcV2CBORSerializer().serialize_to_request(
        {
            "Namespace": "AWS/Lambda",
            "MetricName": "Duration",
            "Dimensions": [{"Name": "FunctionName", "Value": "fn"}],
            "StartTime": when,
            "EndTime": when,
            "Period": 300,
            "Statistics": ["Average", "Maximum"],
        },
        MODEL.operation_model("GetMetricStatistics"),
    )
    body = cbor.loads(request["body"])
    assert body["Dimensions"] == [{"Name": "FunctionName", "Value": "fn"}]
    assert body["StartTime"] == cbor.Timestamp(when.timestamp())
    assert body["Period"] == 300 and body["Statistics"] == ["Average", "Maximum"]


def test_lruns_answer_is_parsed_by_botocore() -> None:
    answer = {
        "Label": "Duration",
        "Datapoints": [
            {"Timestamp": cbor.Timestamp(1_764_590_400.0), "Average": 1.5, "Unit": "Milliseconds"}
        ],
    }
    parsed = RpcV2CBORParser().parse(
        {
            "status_code": 200,
            "headers": {"smithy-protocol": "rpc-v2-cbor"},
            "body": cbor.dumps(answer),
        },
        MODEL.operation_model("GetMetricStatistics").output_shape,
    )
    [point] = parsed["Datapoints"]
    assert point["Average"] == 1.5
    assert point["Timestamp"] == datetime.datetime(2025, 12, 1, 12, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    "body",
    [
        b"\x9f" * 100 + b"\x01" + b"\xff" * 100,  # arrays nested 100 deep
        b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff",  # an array that claims 2**64 items
        b"\x7a\xff\xff\xff\xff",  # a 4 GB string in five bytes
        b"\xa1\x01",  # a map without its value
        b"\x01\x02",  # bytes after the item
        b"\x63\xff\xfe\xfd",  # text that is not UTF-8
    ],
)
def test_attack_hostile_bodies_are_refused_without_work(body: bytes) -> None:
    with pytest.raises(cbor.CborError):
        cbor.loads(body)
