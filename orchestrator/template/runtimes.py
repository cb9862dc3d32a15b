"""Which of lrun's runtimes runs a function whose template names a runtime lrun has no image for.

An older release of the same language runs on the nearest newer one lrun has (python3.12 on
python3.13, nodejs18.x on nodejs20.x, provided.al2023 on provided, java17 on java21), as code
written for the older release almost always runs on the newer; the template's value is named
in a notice. A runtime newer than lrun's, or a language lrun lacks, has no stand-in.
"""

from __future__ import annotations

import re

from orchestrator.manifest import RUNTIME_NAMES

_VERSION = re.compile(r"([a-z]+)(\d+(?:\.\d+)?)(?:\.x)?")


def _version(name: str) -> tuple[str, tuple[int, ...]] | None:
    found = _VERSION.fullmatch(name)
    if found is None:
        return None
    return found[1], tuple(int(part) for part in found[2].split("."))


def stand_in(runtime: str) -> tuple[str | None, str]:
    """``(lrun's runtime, why)``: the runtime itself with no why when lrun has it; the nearest
    newer release of the same language and why; or None and what to do instead."""
    if runtime in RUNTIME_NAMES:
        return runtime, ""
    if runtime.startswith("provided.") and "provided" in RUNTIME_NAMES:
        return "provided", (
            f"runs on lrun's provided runtime (a Debian userland, not Amazon Linux's), the "
            f"stand-in for {runtime}"
        )
    wanted = _version(runtime.replace(".al2", ""))
    if wanted is not None:
        language, version = wanted
        newer = sorted(
            (found[1], name)
            for name in RUNTIME_NAMES
            if (found := _version(name)) is not None
            and found[0] == language
            and found[1] >= version
        )
        if newer:
            chosen = newer[0][1]
            return chosen, f"lrun has no {runtime} image; runs it on {chosen}, the nearest newer"
    same = sorted(n for n in RUNTIME_NAMES if wanted is not None and n.startswith(wanted[0]))
    if same:
        fix = f"lrun's {wanted[0] if wanted else runtime} runtimes are {', '.join(same)}"
    elif runtime.startswith("go"):
        fix = "build it for provided.al2023 (a bootstrap executable), which lrun runs"
    else:
        fix = f"lrun's runtimes are {', '.join(RUNTIME_NAMES)}"
    return None, f"lrun has no runtime for {runtime}; the function is not served ({fix})"
