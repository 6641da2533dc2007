"""What a user gets from ``pip install "rhythm-core[otel]"``: wheels built from this checkout,
installed into a fresh virtual environment, give a worker that loads ``otel`` by name."""

from __future__ import annotations

from pathlib import Path

from rhythm_core.testing.packaging import install_and_run

from .otlp_sink import OtlpSink
from .prometheus import ROOT


def test_wheels_install_into_a_fresh_environment(
    tmp_path: Path, sink: OtlpSink, rhythm_database_url: str
) -> None:
    trace_id = install_and_run(ROOT, "rhythm-otel", "otel", "rhythm_otel", sink.endpoint,
                               rhythm_database_url, tmp_path)
    sink.wait_for(lambda: sink.spans_of(trace_id), message="the packaged worker sent no span")
