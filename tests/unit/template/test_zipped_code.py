"""A zipped ``CodeUri`` (what ``sam package`` or a build step leaves) is unpacked as Lambda
unpacks a deployment package, into lrun's state directory, with the same hostile-zip rules:
an entry leading out, a link leading out or a package past the size bound leaves the function
unserved with a notice, and nothing written outside."""

from __future__ import annotations

import io
import os
import stat
import time
import zipfile
from pathlib import Path

import pytest

from orchestrator import unzip
from tests.unit.template.conftest import load, write

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Zipped:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: build/app.zip, Handler: app.handler, Runtime: python3.13}
  Plain:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: src/, Handler: app.handler, Runtime: python3.13}
"""


def zip_of(*entries: tuple[str, bytes, int]) -> bytes:
    """A zip of ``(name, content, unix mode)`` entries."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content, mode in entries:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            archive.writestr(info, content)
    return buffer.getvalue()


def project(tmp_path: Path, data: bytes, name: str = "app.zip") -> Path:
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / name).write_bytes(data)
    return write(tmp_path, TEMPLATE.replace("app.zip", name))


APP = (b"def handler(event, context):\n    return 'zipped'\n", stat.S_IFREG | 0o644)


def test_a_zipped_code_uri_is_unpacked_into_the_state_directory(
    tmp_path: Path, state: Path
) -> None:
    path = project(tmp_path, zip_of(("app.py", *APP), ("lib/", b"", stat.S_IFDIR | 0o755)))
    manifest = load(path)
    code = manifest.function("Zipped").code
    assert code is not None and code.parent == state / "template-code" / "zips"
    assert (code / "app.py").read_bytes() == APP[0]
    assert manifest.notices == ()
    assert load(path).function("Zipped").code == code  # unchanged zip, the same directory
    assert [p.name for p in code.parent.iterdir()] == [code.name]


def test_a_jar_is_unpacked_as_lambda_unpacks_one(tmp_path: Path) -> None:
    code = load(project(tmp_path, zip_of(("app.py", *APP)), "app.jar")).function("Zipped").code
    assert code is not None and (code / "app.py").is_file()


@pytest.mark.parametrize(
    ("entries", "why"),
    [
        ((("../../escaped.py", b"x", stat.S_IFREG | 0o644),), "leads out of the package (..)"),
        ((("/tmp/abs.py", b"x", stat.S_IFREG | 0o644),), "its name is an absolute path"),
        (
            (("out", b"../../../..", stat.S_IFLNK | 0o777),),
            "it is a link leading out of the package",
        ),
        (
            (("d", b"/", stat.S_IFLNK | 0o777), ("d/etc/x", b"x", stat.S_IFREG | 0o644)),
            "it goes through a link or a file",
        ),
    ],
)
def test_a_hostile_zip_leaves_its_function_unserved_and_nothing_written(
    tmp_path: Path, state: Path, entries: tuple[tuple[str, bytes, int], ...], why: str
) -> None:
    manifest = load(project(tmp_path, zip_of(*entries)))
    assert list(manifest.functions) == ["Plain"]  # the rest still runs
    [notice] = manifest.notices
    assert notice.where == "Resources.Zipped.Properties.CodeUri"
    assert notice.message.startswith("build/app.zip cannot be unpacked: Could not unzip"), notice
    assert why in notice.message
    assert notice.message.endswith("the function is not served")
    assert not (tmp_path / "escaped.py").exists() and not (state.parent / "escaped.py").exists()
    assert list((state / "template-code" / "zips").iterdir()) == []  # nothing half-unpacked


def test_a_zip_past_lambdas_bounds_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(unzip, "MAX_UNZIPPED", 100)
    manifest = load(project(tmp_path, zip_of(("app.py", b"x" * 101, stat.S_IFREG | 0o644))))
    [notice] = manifest.notices
    assert "Unzipped size must be smaller than 100 bytes" in notice.message
    assert list(manifest.functions) == ["Plain"]


def test_a_broken_zip_is_a_notice_not_a_traceback(tmp_path: Path) -> None:
    manifest = load(project(tmp_path, b"PK\x03\x04 not really a zip"))
    [notice] = manifest.notices
    assert notice.message == (
        "build/app.zip cannot be unpacked: Could not unzip uploaded file. Please check your "
        "file, then try to upload again; the function is not served"
    )


def test_a_file_that_is_no_zip_still_says_what_to_do(tmp_path: Path) -> None:
    manifest = load(project(tmp_path, b"print(1)", "app.py"))
    [notice] = manifest.notices
    assert notice.message == (
        "build/app.py is a file, not a directory nor a .zip; point CodeUri at the code's "
        "directory; the function is not served"
    )


def test_the_sweep_keeps_what_is_used_and_an_unpack_under_way(tmp_path: Path, state: Path) -> None:
    path = project(tmp_path, zip_of(("app.py", *APP)))
    first = load(path).function("Zipped").code
    assert first is not None
    (tmp_path / "build" / "app.zip").write_bytes(zip_of(("app.py", b"# changed\n", 0o100644)))
    second = load(path).function("Zipped").code
    assert second is not None and second != first
    root = first.parent
    fresh, stale = root / ("a" * 32 + ".partial"), root / ("b" * 32 + ".partial")
    fresh.mkdir()
    stale.mkdir()
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    (root / "not-ours").mkdir()
    unzip.sweep(root, {first})
    assert sorted(p.name for p in root.iterdir()) == sorted([first.name, fresh.name, "not-ours"])
