"""A function's small settings that tools read on every refresh: its code-signing config and its
recursion setting (Terraform's AWS provider reads both for ``aws_lambda_function``, and its
versions: ``version_api``).

lrun has no code-signing configurations (nothing can create one), so a function never has one and
naming one is AWS's "cannot be found".
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from orchestrator.api.function_names import resolve
from orchestrator.api.lambda_api import LambdaApi, checked, json_body, json_response
from orchestrator.errors import CodeSigningConfigNotFound
from orchestrator.events.function_meta import FunctionMeta
from orchestrator.http_server import Request, Response


class FunctionConfigs:
    def __init__(self, api: LambdaApi, meta: FunctionMeta) -> None:
        self.api = api
        self.meta = meta

    def _name(self, request: Request, operation: str) -> str:
        name, _ = resolve(request.params["function"], None, operation)
        self.api.existing(name)
        return name

    async def get_code_signing(self, request: Request) -> Response:
        checked("GetFunctionCodeSigningConfig", request)
        self._name(request, "GetFunctionCodeSigningConfig")
        return json_response(200, {})  # AWS leaves both members out when there is none

    async def put_code_signing(self, request: Request) -> Response:
        body = json_body(request)
        checked("PutFunctionCodeSigningConfig", request, body)
        raise CodeSigningConfigNotFound(
            "The code signing configuration cannot be found. Check that the provided "
            f"configuration is not deleted: {body['CodeSigningConfigArn']}."
        )

    async def delete_code_signing(self, request: Request) -> Response:
        checked("DeleteFunctionCodeSigningConfig", request)
        self._name(request, "DeleteFunctionCodeSigningConfig")
        return Response(204, b"", {"x-amzn-RequestId": str(uuid.uuid4())})

    async def get_recursion(self, request: Request) -> Response:
        checked("GetFunctionRecursionConfig", request)
        name = self._name(request, "GetFunctionRecursionConfig")
        return json_response(200, {"RecursiveLoop": self.meta.get(name).recursion})

    async def put_recursion(self, request: Request) -> Response:
        body = json_body(request)
        checked("PutFunctionRecursionConfig", request, body)
        name = self._name(request, "PutFunctionRecursionConfig")
        loop = body["RecursiveLoop"]
        await self.meta.change(name, lambda meta: replace(meta, recursion=loop))
        return json_response(200, {"RecursiveLoop": loop})


def add_function_config_routes(api: LambdaApi, meta: FunctionMeta) -> FunctionConfigs:
    configs = FunctionConfigs(api, meta)
    add = api.router.add
    csc = "/2020-06-30/functions/{function}/code-signing-config"
    add("GET", csc, configs.get_code_signing)
    add("PUT", csc, configs.put_code_signing)
    add("DELETE", csc, configs.delete_code_signing)
    recursion = "/2024-08-31/functions/{function}/recursion-config"
    add("GET", recursion, configs.get_recursion)
    add("PUT", recursion, configs.put_recursion)
    return configs
