"""CloudWatch's ``GetMetricStatistics``, ``GetMetricData`` and ``ListMetrics`` for the
``AWS/Lambda`` namespace, over lrun's metrics (``observe.metrics``), so dashboard scripts work.

Two of botocore's protocols for CloudWatch (its ``cloudwatch`` model lists
``smithy-rpc-v2-cbor``, ``json`` and ``query``): RPC v2 CBOR (``POST
/service/GraniteServiceVersion20100801/operation/<Operation>``, what boto3 sends today) and
AWS JSON 1.0 (``X-Amz-Target: GraniteServiceVersion20100801.<Operation>``). The query protocol
is a form post, which any web page can send cross-site: it is refused by the access checks.
Errors carry the model's codes (``InvalidParameterValue``, ``MissingParameter``,
``InvalidParameterCombination``; ``x-amzn-query-error`` as AWS sends it for this
query-compatible service).

Statistics come from per-minute figures of the last three hours and per-hour ones of the last
14 days (``observe.metrics``): Invocations, Errors, Duration, ColdStarts are served; Throttles and
the gauges are not kept as time series (``GET /metrics`` has them).
"""

from __future__ import annotations

import datetime
import math
import uuid
from collections.abc import Callable
from typing import Any

from orchestrator.api import cbor
from orchestrator.api.aws_json import JsonTargets
from orchestrator.errors import LrunError, ServiceError
from orchestrator.http_server import Request, Response, Router
from orchestrator.observe.metrics import MINUTES_KEPT, Metrics, Period

SERVICE = "GraniteServiceVersion20100801"
NAMESPACE = "AWS/Lambda"
METRICS = ("Invocations", "Errors", "Duration", "ColdStarts")
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
MAX_DATAPOINTS = 1440
MAX_QUERIES = 500
UNITS = {
    "Invocations": "Count",
    "Errors": "Count",
    "Duration": "Milliseconds",
    "ColdStarts": "Count",
}
Operation = Callable[[dict[str, Any]], dict[str, Any]]


def _error(code: str, message: str) -> ServiceError:
    return ServiceError(code, message)


def add_cloudwatch_routes(router: Router, targets: JsonTargets, metrics: Metrics) -> None:
    api = _CloudWatch(metrics)
    operations: dict[str, Operation] = {
        "GetMetricStatistics": api.get_metric_statistics,
        "GetMetricData": api.get_metric_data,
        "ListMetrics": api.list_metrics,
    }

    async def cbor_operation(request: Request) -> Response:
        name = request.params["operation"]
        try:
            operation = operations.get(name)
            if operation is None:
                raise _error("UnknownOperationException", f"Unknown operation {name}")
            try:
                body = cbor.loads(request.body)
            except LrunError as exc:
                raise _error("SerializationException", str(exc)) from None
            if not isinstance(body, dict):
                raise _error("SerializationException", "The request body is not a map")
            answer = operation(body)
        except ServiceError as exc:
            return _cbor_error(exc)
        return Response(200, cbor.dumps(answer), _cbor_headers())

    router.add("POST", f"/service/{SERVICE}/operation/{{operation}}", cbor_operation)
    for name, operation in operations.items():
        targets.operations[f"{SERVICE}.{name}"] = _json(operation)


def _json(operation: Operation) -> Any:
    async def run(body: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = _plain(operation(body))
        return answer

    return run


def _plain(value: Any) -> Any:
    """Timestamps as epoch seconds, for the JSON protocol."""
    if isinstance(value, cbor.Timestamp):
        return value.seconds
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _cbor_headers() -> dict[str, str]:
    return {
        "Content-Type": "application/cbor",
        "smithy-protocol": "rpc-v2-cbor",
        "x-amzn-RequestId": str(uuid.uuid4()),
    }


def _cbor_error(exc: ServiceError) -> Response:
    code = exc.code
    shape = code if code.endswith("Exception") else f"{code}Exception"
    if code == "MissingParameter":
        shape = "MissingRequiredParameterException"
    headers = {**_cbor_headers(), "x-amzn-query-error": f"{code};Sender"}
    return Response(exc.status, cbor.dumps({"__type": shape, "message": exc.message}), headers)


def _seconds(value: Any, member: str) -> float:
    if isinstance(value, cbor.Timestamp):
        return value.seconds
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    raise _error("InvalidParameterValue", f"The parameter {member} must be a timestamp.")


def _required(body: dict[str, Any], member: str) -> Any:
    if body.get(member) is None:
        raise _error("MissingParameter", f"The parameter {member} is required.")
    return body[member]


class _CloudWatch:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def _periods(
        self, name: str, dimensions: Any, start: float, end: float, period: int
    ) -> dict[int, list[Period]]:
        """The figures of ``name``'s series matching ``dimensions``, by period start."""
        if not isinstance(dimensions, list):
            dimensions = []
        wanted: dict[str, str] = {}
        for dimension in dimensions[:30]:
            if isinstance(dimension, dict):
                wanted[str(dimension.get("Name"))] = str(dimension.get("Value"))
        function = wanted.get("FunctionName")
        version = wanted.get("ExecutedVersion")
        if "Resource" in wanted:
            function, _, qualifier = wanted["Resource"].partition(":")
            version = qualifier or version
        size = 60 if period < 3600 or end - start <= MINUTES_KEPT * 60 else 3600
        found: dict[int, list[Period]] = {}
        for series in list(self.metrics.series.values()):
            if function is not None and series.function != function:
                continue
            if version is not None and series.version != version:
                continue
            for figures in list(series.periods(start, size)):
                if not start <= figures.start < end:
                    continue
                bucket = int(start + (figures.start - start) // period * period)
                found.setdefault(bucket, []).append(figures)
        return found

    def _check(self, name: Any, namespace: Any, start: float, end: float, period: Any) -> int:
        if namespace != NAMESPACE or name not in METRICS:
            return 0  # CloudWatch answers an unknown metric with no datapoints
        if not isinstance(period, int) or isinstance(period, bool) or period < 1:
            raise _error(
                "InvalidParameterValue", "The parameter Period must be a positive integer."
            )
        if period % 60:
            raise _error(
                "InvalidParameterValue",
                "The parameter Period must be a multiple of 60 for lrun's standard-resolution "
                "metrics.",
            )
        if end <= start:
            raise _error(
                "InvalidParameterValue", "The parameter StartTime must be less than EndTime."
            )
        points = math.ceil((end - start) / period)
        if points > MAX_DATAPOINTS:
            raise _error(
                "InvalidParameterCombination",
                f"You have requested up to {points:,} datapoints, which exceeds the limit of "
                f"{MAX_DATAPOINTS:,}. You may reduce the datapoints requested by increasing "
                "Period, or decreasing the time range.",
            )
        return period

    def get_metric_statistics(self, body: dict[str, Any]) -> dict[str, Any]:
        namespace = _required(body, "Namespace")
        name = _required(body, "MetricName")
        start = _seconds(_required(body, "StartTime"), "StartTime")
        end = _seconds(_required(body, "EndTime"), "EndTime")
        statistics = body.get("Statistics") or []
        if not statistics and not body.get("ExtendedStatistics"):
            raise _error(
                "MissingParameter", "Must specify either Statistics or ExtendedStatistics."
            )
        if not isinstance(statistics, list) or not set(statistics) <= set(STATISTICS):
            raise _error(
                "InvalidParameterValue",
                f"The parameter Statistics must be among {', '.join(STATISTICS)}.",
            )
        period = self._check(name, namespace, start, end, _required(body, "Period"))
        points = []
        if period:
            grouped = self._periods(name, body.get("Dimensions"), start, end, period)
            for bucket, figures in sorted(grouped.items()):
                values = _statistics(name, figures)
                if values is None:
                    continue
                point: dict[str, Any] = {"Timestamp": cbor.Timestamp(float(bucket))}
                point.update({s: values[s] for s in statistics})
                point["Unit"] = UNITS[name]
                points.append(point)
        return {"Label": name, "Datapoints": points}

    def get_metric_data(self, body: dict[str, Any]) -> dict[str, Any]:
        queries = _required(body, "MetricDataQueries")
        start = _seconds(_required(body, "StartTime"), "StartTime")
        end = _seconds(_required(body, "EndTime"), "EndTime")
        if not isinstance(queries, list) or not 1 <= len(queries) <= MAX_QUERIES:
            raise _error(
                "InvalidParameterValue",
                f"The parameter MetricDataQueries must hold 1 to {MAX_QUERIES} queries.",
            )
        descending = body.get("ScanBy", "TimestampDescending") != "TimestampAscending"
        results = []
        messages: list[dict[str, str]] = []
        for query in queries:
            if not isinstance(query, dict) or not isinstance(query.get("Id"), str):
                raise _error("InvalidParameterValue", "Every query needs an Id.")
            stat = query.get("MetricStat")
            if not isinstance(stat, dict):
                raise _error(
                    "InvalidParameterValue",
                    f"Query {query['Id']}: lrun answers MetricStat queries, not Expression.",
                )
            metric = stat.get("Metric") or {}
            name = str(metric.get("MetricName"))
            statistic = stat.get("Stat")
            if statistic not in STATISTICS:
                raise _error(
                    "InvalidParameterValue",
                    f"Query {query['Id']}: Stat {statistic!r} is not one of "
                    f"{', '.join(STATISTICS)} (percentiles are not kept).",
                )
            period = self._check(name, metric.get("Namespace"), start, end, stat.get("Period"))
            timestamps: list[cbor.Timestamp] = []
            values: list[float] = []
            if period:
                grouped = self._periods(name, metric.get("Dimensions"), start, end, period)
                for bucket, figures in sorted(grouped.items(), reverse=descending):
                    found = _statistics(name, figures)
                    if found is not None:
                        timestamps.append(cbor.Timestamp(float(bucket)))
                        values.append(found[statistic])
            if query.get("ReturnData", True):
                results.append(
                    {
                        "Id": query["Id"],
                        "Label": query.get("Label") or name,
                        "Timestamps": timestamps,
                        "Values": values,
                        "StatusCode": "Complete",
                    }
                )
        return {"MetricDataResults": results, "Messages": messages}

    def list_metrics(self, body: dict[str, Any]) -> dict[str, Any]:
        namespace = body.get("Namespace")
        if namespace not in (None, NAMESPACE):
            return {"Metrics": []}
        wanted = body.get("MetricName")
        functions = sorted({s.function for s in list(self.metrics.series.values())})
        found = [
            {
                "Namespace": NAMESPACE,
                "MetricName": name,
                "Dimensions": [{"Name": "FunctionName", "Value": function}],
            }
            for function in functions
            for name in METRICS
            if wanted in (None, name)
        ]
        return {"Metrics": found[:500]}


def _statistics(name: str, figures: list[Period]) -> dict[str, float] | None:
    invocations = sum(p.invocations for p in figures)
    if not invocations:
        return None
    if name == "Duration":
        total = sum(p.duration_sum for p in figures)
        return {
            "SampleCount": float(invocations),
            "Sum": total,
            "Average": total / invocations,
            "Minimum": min(p.duration_min for p in figures),
            "Maximum": max(p.duration_max for p in figures),
        }
    counted = {
        "Invocations": invocations,
        "Errors": sum(p.errors for p in figures),
        "ColdStarts": sum(p.cold_starts for p in figures),
    }[name]
    # Lambda emits these as 1 (or 0) per invocation: the average is a rate.
    return {
        "SampleCount": float(invocations),
        "Sum": float(counted),
        "Average": counted / invocations,
        "Minimum": 0.0 if counted < invocations else 1.0,
        "Maximum": 1.0 if counted else 0.0,
    }
