from __future__ import annotations

from collections.abc import Iterator

import pytest

from .otlp_sink import OtlpSink
from .workers import spawn  # noqa: F401 (a fixture)


@pytest.fixture
def sink() -> Iterator[OtlpSink]:
    """A real OTLP/gRPC receiver on loopback, stopped after the test."""
    receiver = OtlpSink().start()
    yield receiver
    receiver.stop()
