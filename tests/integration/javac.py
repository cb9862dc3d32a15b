"""Compiling Java for the java21 tests with the JDK of the runtime's own build stage.

The host needs no JDK: sources are compiled in a container of the java21 image's build base
(Debian's OpenJDK 21 JDK), against lrun's aws-lambda-java-core interfaces (runtimes/java/src,
used as a source path and not compiled into the output, as a `provided` dependency is)."""

from __future__ import annotations

import os
from pathlib import Path

import docker

from orchestrator.sandbox import images

RUNTIME_SOURCES = Path(__file__).resolve().parents[2] / "runtimes" / "java" / "src"

_SCRIPT = """set -e
javac --release 21 -encoding UTF-8 -nowarn -implicit:none -sourcepath /runtime \\
  -cp "$CLASSPATH_JARS" -d /out $(find /src -name '*.java')
"""


def _run(
    engine: docker.DockerClient, command: list[str], volumes: dict[Path, str], **env: str
) -> None:
    base = images.build_base_image(images.RUNTIMES["java21"])
    assert base is not None
    engine.containers.run(
        base,
        command,
        environment=env,
        volumes={
            str(host.resolve()): {
                "bind": inside,
                "mode": "rw" if inside in ("/out", "/target") else "ro",
            }
            for host, inside in volumes.items()
        },
        user=f"{os.getuid()}:{os.getgid()}",
        network_disabled=True,
        remove=True,
    )


def compile_java(engine: docker.DockerClient, src: Path, out: Path, jars: str = "") -> None:
    """``src``/**.java -> class files in ``out``; ``jars``: a class path of jars inside ``out``
    (seen there as /out/...)."""
    out.mkdir(parents=True, exist_ok=True)
    volumes = {src: "/src", RUNTIME_SOURCES: "/runtime", out: "/out"}
    _run(engine, ["sh", "-c", _SCRIPT], volumes, CLASSPATH_JARS=jars)


def jar(engine: docker.DockerClient, classes: Path, target: Path) -> None:
    """The classes in ``classes`` as the jar ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    command = ["jar", "--create", "--file", f"/target/{target.name}", "-C", "/classes", "."]
    _run(engine, command, {classes: "/classes", target.parent: "/target"})


FUNCTIONS = Path(__file__).parent / "functions" / "java"


def build_test_functions(engine: docker.DockerClient, work: Path) -> Path:
    """tests/integration/functions/java compiled into ``work``/code: example/*.class and
    lib/greeting.jar (a library on the class path as Lambda's lib/*.jar)."""
    code = work / "code"
    compile_java(engine, FUNCTIONS / "lib-src", work / "lib-classes")
    jar(engine, work / "lib-classes", code / "lib" / "greeting.jar")
    compile_java(engine, FUNCTIONS / "src", code, "/out/lib/greeting.jar")
    return code
