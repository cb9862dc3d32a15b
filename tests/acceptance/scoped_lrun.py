"""`lrun` with its start-up clean-up limited to the containers a test planted (a shared engine).

`lrun serve` starts by removing every container labelled ``lrun.managed=1`` whose owner process
is gone. The runtime images carry that label themselves, so every container anyone runs from
them inherits it, with no ``lrun.owner``: on an engine shared with other people's tests, a real
`lrun serve` would remove their containers (see ``test_orphan_sweep_spares_containers_lrun_did_not
_start``). Run as a script, this is `lrun` exactly, except that the sweep keeps only those of its
own findings whose owner label is listed in ``LRUN_TEST_ORPHAN_OWNERS`` (comma-separated), so the
real detection, removal and message are still what the tests see. With an engine to themselves,
tests run the real entry point instead (``LRUN_TEST_EXCLUSIVE_ENGINE=1``).
"""

from __future__ import annotations

import os

from orchestrator import serve
from orchestrator.backend import LABEL_OWNER, Backend, Container
from orchestrator.cli import main

_real_orphans = serve.orphans


def _planted_orphans(backend: Backend) -> list[Container]:
    allowed = {o for o in os.environ.get("LRUN_TEST_ORPHAN_OWNERS", "").split(",") if o}
    return [c for c in _real_orphans(backend) if c.labels.get(LABEL_OWNER) in allowed]


if __name__ == "__main__":
    serve.orphans = _planted_orphans
    main(prog_name="lrun")
