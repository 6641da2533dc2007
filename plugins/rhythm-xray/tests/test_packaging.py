"""What a user gets from ``pip install "rhythm-core[xray]"``: wheels built from this checkout,
installed into a fresh virtual environment, give a worker that loads ``xray`` by name, and
its segments reach X-Ray."""

from __future__ import annotations

from pathlib import Path

from rhythm_core.testing.failover import wait_until
from rhythm_core.testing.packaging import install_and_run

from .xray import ROOT, Daemon, Reader


def test_wheels_install_into_a_fresh_environment(
    tmp_path: Path, daemon: Daemon, reader: Reader, rhythm_database_url: str
) -> None:
    trace_id = install_and_run(ROOT, "rhythm-xray", "xray", "rhythm_xray", daemon.address,
                               rhythm_database_url, tmp_path)
    spans = wait_until(lambda: reader.spans(trace_id),
                       "the packaged worker's segments never reached X-Ray")
    assert any(s.name.startswith("task.") for s in spans)
