"""Unit tests of unpacking a deployment package: every attack a hostile zip can make is
performed here and must leave nothing outside the target directory."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from orchestrator.api.code_package import MAX_UNZIPPED, MAX_ZIPPED, unpack
from orchestrator.errors import InvalidParameterValue, RequestTooLarge

UNZIP_FAILED = "Could not unzip uploaded file. Please check your file, then try to upload again."


def make_zip(*entries: tuple[str, bytes] | tuple[str, bytes, int]) -> bytes:
    """A zip of (name, data[, unix mode]) entries, written as a hostile tool would."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for entry in entries:
            name, data = entry[0], entry[1]
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = entry[2] if len(entry) == 3 else stat.S_IFREG | 0o644  # type: ignore[misc]
            info.external_attr = mode << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def link(name: str, target: str) -> tuple[str, bytes, int]:
    return (name, target.encode(), stat.S_IFLNK | 0o777)


@pytest.fixture
def place(tmp_path: Path) -> tuple[Path, Path]:
    """(target, outside): where a package goes, and a directory beside it it must not reach."""
    (tmp_path / "functions").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    return tmp_path / "functions" / "pkg", outside


def refused(data: bytes, target: Path) -> str:
    with pytest.raises(InvalidParameterValue) as caught:
        unpack(data, target, "CreateFunction")
    assert not target.exists()  # what was written is gone
    return caught.value.message


def test_a_package_is_unpacked_with_directories_modes_and_inside_links(
    place: tuple[Path, Path],
) -> None:
    target, _ = place
    data = make_zip(
        ("app.py", b"def handler(e, c): return 1\n"),
        ("bin/", b"", stat.S_IFDIR | 0o755),
        ("bin/tool", b"#!/bin/sh\n", stat.S_IFREG | 0o755),
        ("lib/deep/mod.py", b"x = 1\n"),
        link("node_modules/.bin/tool", "../../bin/tool"),
    )
    unpack(data, target, "CreateFunction")
    assert (target / "app.py").read_bytes() == b"def handler(e, c): return 1\n"
    assert os.stat(target / "bin" / "tool").st_mode & 0o111
    assert not os.stat(target / "app.py").st_mode & 0o111
    assert (target / "lib" / "deep" / "mod.py").read_text() == "x = 1\n"
    assert (target / "node_modules" / ".bin" / "tool").read_bytes() == b"#!/bin/sh\n"


@pytest.mark.parametrize("name", ["../evil.py", "a/../../evil.py", "a/b/../../../evil.py"])
def test_a_name_with_dot_dot_is_refused(place: tuple[Path, Path], name: str) -> None:
    target, outside = place
    message = refused(make_zip(("ok.py", b"1"), (name, b"owned")), target)
    assert "leads out of the package" in message
    assert not (target.parent / "evil.py").exists()
    assert not (target.parent.parent / "evil.py").exists()


def test_an_absolute_name_is_refused(place: tuple[Path, Path]) -> None:
    target, outside = place
    evil = outside / "evil.py"
    message = refused(make_zip((str(evil), b"owned")), target)
    assert "absolute path" in message
    assert not evil.exists()


@pytest.mark.parametrize("where", ["absolute", "relative"])
def test_a_link_pointing_out_is_refused(place: tuple[Path, Path], where: str) -> None:
    target, outside = place
    (outside / "secret").write_text("host secret")
    pointed = str(outside / "secret") if where == "absolute" else "../../outside/secret"
    message = refused(make_zip(("app.py", b"1"), link("leak", pointed)), target)
    assert "link leading out of the package" in message


def test_a_chain_of_links_that_looks_inside_but_leads_out_is_refused(
    place: tuple[Path, Path],
) -> None:
    target, _ = place
    # Read lexically, q/.. is the package's root; followed for real, q is "." so q/.. is its
    # parent: only resolving the links for real catches it.
    message = refused(make_zip(link("q", "."), link("p", "q/..")), target)
    assert "link leading out of the package" in message


def test_writing_through_a_link_is_refused(place: tuple[Path, Path]) -> None:
    target, outside = place
    data = make_zip(link("d", str(outside)), ("d/evil.py", b"owned"))
    message = refused(data, target)
    assert "goes through a link" in message
    assert list(outside.iterdir()) == []


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_an_entry_named_twice_is_refused(place: tuple[Path, Path]) -> None:
    target, _ = place
    message = refused(make_zip(("a.py", b"1"), ("a.py", b"2")), target)
    assert "names an entry twice" in message


def test_a_zip_bomb_is_stopped_at_lambdas_unzipped_limit(place: tuple[Path, Path]) -> None:
    target, _ = place
    # Compresses to a few hundred KB; unpacked, one byte over Lambda's limit.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("bomb.bin", "w", force_zip64=True) as out:
            chunk = bytes(1 << 20)
            left = MAX_UNZIPPED + 1
            while left:
                out.write(chunk[: min(left, len(chunk))])
                left -= min(left, len(chunk))
    data = buffer.getvalue()
    assert len(data) < 2 * 1024 * 1024
    message = refused(data, target)
    assert message == "Unzipped size must be smaller than 262144000 bytes"


def test_over_50_mb_zipped_is_request_entity_too_large(place: tuple[Path, Path]) -> None:
    target, _ = place
    with pytest.raises(RequestTooLarge) as caught:
        unpack(bytes(MAX_ZIPPED + 1), target, "UpdateFunctionCode")
    assert caught.value.message == (
        "Request must be smaller than 69905067 bytes for the UpdateFunctionCode operation"
    )
    assert not target.exists()


@pytest.mark.parametrize("data", [b"not a zip", b"PK\x03\x04" + bytes(40)])
def test_not_a_zip_is_refused_in_aws_words(place: tuple[Path, Path], data: bytes) -> None:
    target, _ = place
    assert refused(data, target) == UNZIP_FAILED


def test_a_corrupt_entry_is_refused_and_removed(place: tuple[Path, Path]) -> None:
    target, _ = place
    data = bytearray(make_zip(("a.py", os.urandom(5000))))
    data[100:120] = bytes(20)  # inside the compressed data: a bad CRC or a broken stream
    assert refused(bytes(data), target) == UNZIP_FAILED
