from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .collector import Rotel
from .otlp_sink import OtlpSink


@pytest.fixture
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OtlpSink]:
    """A real OTLP/gRPC receiver on loopback behind the rotel collector: ``endpoint`` (gRPC)
    and ``http_endpoint`` are rotel's, what arrives is read from the sink. Both are stopped
    after the test."""
    receiver = OtlpSink().start()
    collector = Rotel(receiver.endpoint, Path(tmp_path_factory.mktemp("rotel")))
    receiver.direct_endpoint = receiver.endpoint
    receiver.endpoint = collector.grpc_endpoint
    receiver.http_endpoint = collector.http_endpoint
    yield receiver
    collector.stop()
    receiver.stop()
