"""Unit tests for runtime image names: the repository prefix every image lrun makes carries."""

from __future__ import annotations

import pytest

from orchestrator.errors import RuntimeImageError
from orchestrator.sandbox import images


def test_images_are_under_lrun_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LRUN_IMAGE_PREFIX", raising=False)
    rt = images.RUNTIMES["python3.13"]
    assert rt.image == "lrun/python3.13:latest"
    assert images.base_image(rt) == f"lrun/base-trixie:{images.base_digest(rt)}"


def test_the_prefix_variable_renames_runtimes_and_bases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LRUN_IMAGE_PREFIX", "lrun-rt")
    for name, rt in images.RUNTIMES.items():
        assert rt.image == f"lrun-rt/{name}:latest"
        assert images.base_image(rt) == f"lrun-rt/base-{rt.suite}:{images.base_digest(rt)}"
    monkeypatch.setenv("LRUN_IMAGE_PREFIX", "me/lrun.dev")
    assert images.RUNTIMES["provided"].image == "me/lrun.dev/provided:latest"


@pytest.mark.parametrize("bad", ["Lrun", "lrun/", "-lrun", "lrun:1", "a b", "lrun//x"])
def test_a_bad_prefix_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("LRUN_IMAGE_PREFIX", bad)
    with pytest.raises(RuntimeImageError, match="LRUN_IMAGE_PREFIX=.*is not a valid image"):
        _ = images.RUNTIMES["provided"].image
