"""Extract from botocore's service model for Lambda what lrun's validation needs, for the
operations lrun implements; ``python -m tests.unit.api.model_extract`` writes
``orchestrator/api/lambda_model.py`` (lrun never imports botocore at run time) and the test beside
this proves the checked-in module is what botocore's model says."""

from __future__ import annotations

import pprint
import subprocess
import sys
from pathlib import Path
from typing import Any

OPERATIONS = (
    "AddLayerVersionPermission",
    "AddPermission",
    "CreateAlias",
    "CreateFunction",
    "CreateFunctionUrlConfig",
    "DeleteAlias",
    "DeleteFunction",
    "DeleteFunctionCodeSigningConfig",
    "DeleteFunctionConcurrency",
    "DeleteFunctionEventInvokeConfig",
    "DeleteFunctionUrlConfig",
    "DeleteLayerVersion",
    "DeleteProvisionedConcurrencyConfig",
    "GetAccountSettings",
    "GetAlias",
    "GetFunction",
    "GetFunctionCodeSigningConfig",
    "GetFunctionConcurrency",
    "GetFunctionConfiguration",
    "GetFunctionEventInvokeConfig",
    "GetFunctionRecursionConfig",
    "GetFunctionUrlConfig",
    "GetLayerVersion",
    "GetLayerVersionByArn",
    "GetLayerVersionPolicy",
    "GetPolicy",
    "GetProvisionedConcurrencyConfig",
    "Invoke",
    "InvokeWithResponseStream",
    "ListAliases",
    "ListFunctionEventInvokeConfigs",
    "ListFunctionUrlConfigs",
    "ListFunctions",
    "ListLayerVersions",
    "ListLayers",
    "ListProvisionedConcurrencyConfigs",
    "ListTags",
    "ListVersionsByFunction",
    "PublishLayerVersion",
    "PublishVersion",
    "PutFunctionCodeSigningConfig",
    "PutFunctionConcurrency",
    "PutFunctionEventInvokeConfig",
    "PutFunctionRecursionConfig",
    "PutProvisionedConcurrencyConfig",
    "RemoveLayerVersionPermission",
    "RemovePermission",
    "TagResource",
    "UntagResource",
    "UpdateAlias",
    "UpdateFunctionCode",
    "UpdateFunctionConfiguration",
    "UpdateFunctionEventInvokeConfig",
    "UpdateFunctionUrlConfig",
)
TARGET = Path(__file__).resolve().parents[3] / "orchestrator" / "api" / "lambda_model.py"
HEADER = '''"""Lambda's request constraints, from botocore's service model (generated: do not edit).

Written by ``python -m tests.unit.api.model_extract`` from botocore {version}; the unit test
``tests/unit/api/test_lambda_model.py`` fails when this differs from the installed botocore's model,
so it cannot drift. lrun reads it at run time without botocore. Per operation: the HTTP method,
request URI and success status, and each input member in model order with where it travels
(``uri``, ``querystring``, ``header`` or ``body``), its wire name, type and constraints.
"""

# ruff: noqa: E501  (the model's patterns are kept whole)

from __future__ import annotations

from typing import Any

'''


def _shape(shape: Any, depth: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {"type": shape.type_name}
    for key in ("min", "max", "pattern", "enum"):
        if key in shape.metadata:
            out[key] = shape.metadata[key]
    if shape.type_name == "structure" and depth < 4:
        out["members"] = {
            name: {**_shape(member, depth + 1), "required": name in shape.required_members}
            for name, member in shape.members.items()
        }
    elif shape.type_name == "list":
        out["member"] = _shape(shape.member, depth + 1)
    elif shape.type_name == "map":
        out["key"] = _shape(shape.key, depth + 1)
        out["value"] = _shape(shape.value, depth + 1)
    return out


def extract() -> dict[str, Any]:
    import botocore.session

    model = botocore.session.get_session().get_service_model("lambda")
    operations: dict[str, Any] = {}
    for name in OPERATIONS:
        op = model.operation_model(name)
        members: dict[str, Any] = {}
        shape = op.input_shape
        for member_name, member in shape.members.items() if shape is not None else []:
            members[member_name] = {
                "location": member.serialization.get("location", "body"),
                "wire": member.serialization.get("name", member_name),
                "required": member_name in shape.required_members,
                **_shape(member),
            }
        operations[name] = {
            "method": op.http["method"],
            "uri": op.http["requestUri"],
            "status": op.http.get("responseCode", 200),
            "members": members,
        }
    return operations


def main() -> None:
    import botocore

    text = HEADER.format(version=botocore.__version__)
    text += "OPERATIONS: dict[str, Any] = " + pprint.pformat(extract(), width=96, sort_dicts=False)
    TARGET.write_text(text + "\n")
    ruff = Path(sys.executable).parent / "ruff"
    subprocess.run([str(ruff), "format", str(TARGET)], check=True)


if __name__ == "__main__":
    main()
