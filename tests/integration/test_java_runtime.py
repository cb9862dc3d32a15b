"""The java21 runtime beyond the failure modes every runtime shares (test_runtimes.py): POJO
and stream handlers, lib/*.jar on the class path, the Context, init errors as AWS's Java client
reports them, JAVA_TOOL_OPTIONS, and the template's shipped class."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import docker

from tests.conftest import FUNCTIONS
from tests.integration.conftest import load_function
from tests.integration.javac import compile_java

TEMPLATE = FUNCTIONS.parents[2] / "templates" / "java"


def manifest(write_manifest, code: Path, functions: dict[str, str]) -> Path:
    lines = [
        f"  {name}: {{runtime: java21, code: {code}, {rest}}}" for name, rest in functions.items()
    ]
    return write_manifest("functions:\n" + "\n".join(lines) + "\n")


def test_a_pojo_handler_gets_and_gives_beans_named_as_on_lambda(
    invoke, write_manifest, java_code
) -> None:
    """RequestHandler<Order, Receipt> named by its class alone; Jackson as AWS sets it up:
    standard bean names (getURL -> "URL"), unknown properties ignored, nulls left out."""
    path = manifest(write_manifest, java_code, {"order": "handler: example.OrderHandler"})
    event = {"orderId": "o-1", "quantities": [1, 2, 3], "URL": "https://x", "unknown": True}
    result = invoke(load_function(path, "order"), json.dumps(event).encode())
    assert result.function_error is None, (result.payload, result.log)
    body = json.loads(result.payload)
    assert body == {
        "orderId": "o-1",
        "total": 6,
        "paid": True,
        "URL": "https://x",
        "requestId": result.request_id,
        "greeting": "Hello from a jar in lib/, o-1!",  # lib/greeting.jar is on the class path
    }
    assert "order o-1 for order" in result.log  # context.getLogger().log(...)


def test_a_pojo_that_cannot_be_read_is_aws_s_parsing_error(
    invoke, write_manifest, java_code
) -> None:
    path = manifest(write_manifest, java_code, {"order": "handler: example.OrderHandler"})
    result = invoke(load_function(path, "order"), b'{"quantities": "many"}')
    body = json.loads(result.payload)
    assert result.function_error == "Unhandled"
    assert body["errorType"] == "java.lang.RuntimeException", body
    assert body["errorMessage"] == "An error occurred during JSON parsing"


def test_a_layers_java_lib_jars_are_on_the_class_path(
    invoke, write_manifest, java_code, tmp_path
) -> None:
    """Lambda's Java runtimes add /opt/java/lib/*.jar (a layer's java/lib) after lib/*.jar."""
    shutil.copytree(java_code, tmp_path / "code", ignore=shutil.ignore_patterns("lib"))
    (tmp_path / "layer" / "java" / "lib").mkdir(parents=True)
    shutil.copy2(java_code / "lib" / "greeting.jar", tmp_path / "layer" / "java" / "lib")
    path = write_manifest(
        "functions:\n  order: {runtime: java21, code: ./code, handler: example.OrderHandler, "
        "layers: [./layer]}\n"
    )
    event = {"orderId": "o-2", "quantities": [4]}
    result = invoke(load_function(path, "order"), json.dumps(event).encode())
    assert result.function_error is None, (result.payload, result.log)
    assert json.loads(result.payload)["greeting"] == "Hello from a jar in lib/, o-2!"


def test_a_stream_handler_gets_the_bytes_and_the_context(invoke, write_manifest, java_code) -> None:
    path = manifest(write_manifest, java_code, {"shout": "handler: example.Shout, memory: 256"})
    for _ in range(2):
        result = invoke(load_function(path, "shout"), b'"hello, java"')
        assert result.function_error is None, (result.payload, result.log)
        assert result.payload == b'"HELLO, JAVA"'
        assert "memory 256 remaining>0 true arn arn:aws:lambda:" in result.log
        # Written without a newline, unbuffered: in this invocation's log, not a later one's.
        assert "no newline from System.out" in result.log


def test_init_errors_are_reported_as_aws_s_java_client_reports_them(
    invoke, write_manifest, java_code
) -> None:
    path = manifest(
        write_manifest,
        java_code,
        {
            "static": 'handler: "example.Broken$Static::handleRequest"',
            "ctor": 'handler: "example.Broken$Constructor::handleRequest"',
            "notahandler": "handler: example.Order",
        },
    )
    static = invoke(load_function(path, "static"))
    assert json.loads(static.payload) == {
        "errorMessage": "Error loading class example.Broken$Static",
        "errorType": "java.lang.ExceptionInInitializerError",
    }
    assert "Caused by: java.lang.IllegalStateException: static init says no" in static.log
    ctor = invoke(load_function(path, "ctor"))
    assert json.loads(ctor.payload) == {
        "errorMessage": "constructor says no",
        "errorType": "java.lang.IllegalArgumentException",
    }
    wrong = invoke(load_function(path, "notahandler"))
    assert json.loads(wrong.payload) == {
        "errorMessage": "Class does not implement an appropriate handler interface: example.Order"
    }


def test_java_tool_options_reach_the_jvm_and_the_heap_follows_the_memory(
    invoke, write_manifest, java_code
) -> None:
    path = manifest(
        write_manifest,
        java_code,
        {
            "jvm": 'handler: "example.Broken$Jvm::handleRequest", memory: 512, '
            "environment: {JAVA_TOOL_OPTIONS: -Dlrun.test=picked}",
        },
    )
    result = invoke(load_function(path, "jvm"))
    assert result.function_error is None, (result.payload, result.log)
    body = json.loads(result.payload)
    assert body["property"] == "picked" and body["javaVersion"] == "21"
    assert 400 <= body["maxHeapMb"] <= 512 * 0.85  # 85 % of the memory, as Lambda's JVM
    assert "Picked up JAVA_TOOL_OPTIONS: -Dlrun.test=picked" in result.log


def test_a_full_heap_is_java_s_out_of_memory_error(invoke, write_manifest, java_code) -> None:
    """The JVM's own heap limit (85 % of the memory) stops the handler before the container's:
    the function's error is java.lang.OutOfMemoryError, and the runtime exits after it."""
    path = manifest(
        write_manifest, java_code, {"heap": 'handler: "example.Modes::handleRequest", timeout: 30'}
    )
    result = invoke(load_function(path, "heap"), b'{"heap": true}')
    body = json.loads(result.payload)
    assert body["errorType"] == "java.lang.OutOfMemoryError", body
    assert body["errorMessage"] == "Java heap space"


def test_the_templates_class_is_what_javac_makes_of_its_source(
    backend, engine: docker.DockerClient, tmp_path: Path
) -> None:
    """templates/java ships Hello.class so that `lrun init java` runs without a JDK; it must be
    the image's javac's output for Hello.java. If this fails, regenerate it: compile_java(engine,
    templates/java/hello/src, templates/java/hello)."""
    compile_java(engine, TEMPLATE / "hello" / "src", tmp_path)
    shipped = TEMPLATE / "hello" / "example" / "Hello.class"
    assert (tmp_path / "example" / "Hello.class").read_bytes() == shipped.read_bytes()
