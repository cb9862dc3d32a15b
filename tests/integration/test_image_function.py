"""Container-image functions: any local image whose entrypoint starts a Lambda runtime client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from orchestrator.sandbox.docker_backend import DockerBackend
from tests.integration.conftest import load_function

IMAGE = "lrun-test/aws-style:latest"
CONTEXT = Path(__file__).parent / "images" / "aws_style"


@pytest.fixture(scope="module")
def aws_style_image(backend: DockerBackend, engine: docker.DockerClient) -> Iterator[str]:
    """An image laid out like AWS's base images: /lambda-entrypoint.sh with CMD the handler."""
    engine.images.build(path=str(CONTEXT), tag=IMAGE, pull=False, rm=True)
    yield IMAGE
    engine.images.remove(IMAGE, force=True)


def test_an_aws_style_image_runs_with_its_own_entrypoint_and_cmd(
    aws_style_image: str, invoke, write_manifest
) -> None:
    path = write_manifest(f"functions:\n  boxed: {{image: {aws_style_image}, memory: 512}}\n")
    result = invoke(load_function(path, "boxed"), b'{"k": "v"}')
    assert result.function_error is None, result.payload
    assert json.loads(result.payload) == {
        "from": "image",
        "handler": "app.handler",
        "event": {"k": "v"},
    }


def test_command_overrides_the_images_cmd(aws_style_image: str, invoke, write_manifest) -> None:
    path = write_manifest(
        f"functions:\n  boxed: {{image: {aws_style_image}, command: [app.nothere]}}\n"
    )
    result = invoke(load_function(path, "boxed"))
    assert result.function_error == "Unhandled"
    assert json.loads(result.payload)["errorType"] == "Runtime.HandlerNotFound"
