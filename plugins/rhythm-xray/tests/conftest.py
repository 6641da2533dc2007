from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .emf import EmfListener
from .xray import Daemon, MotoServer, Reader


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto's X-Ray API on loopback (``moto_server``), for the whole run."""
    server = MotoServer(Path(tmp_path_factory.mktemp("moto")))
    yield server
    server.stop()


@pytest.fixture
def daemon(moto: MotoServer) -> Iterator[Daemon]:
    """The daemon stand-in; at the end, nothing it received may have been malformed."""
    stand_in = Daemon(moto)
    yield stand_in
    stand_in.stop()
    assert not stand_in.problems, stand_in.problems[:10]
    assert not stand_in.refused, stand_in.refused[:10]


@pytest.fixture
def emf() -> Iterator[EmfListener]:
    listener = EmfListener()
    yield listener
    listener.stop()
    assert not listener.problems, listener.problems[:10]


@pytest.fixture
def reader(moto: MotoServer, emf: EmfListener) -> Reader:
    return Reader(moto, emf)


def xray_env(daemon_address: str, emf_endpoint: str, **extra: str) -> dict[str, str]:
    """A worker process with the xray provider, sending to this daemon and EMF listener."""
    return {
        "RHYTHM_OBSERVABILITY_PROVIDER": "xray",
        "RHYTHM_TRACING_ENABLED": "true",
        "RHYTHM_TRACES_SAMPLE_RATE": "1.0",
        "RHYTHM_METRICS_ENABLED": "true",
        "RHYTHM_METRICS_INTERVAL": "0.5",
        "RHYTHM_SERVICE_NAME": "rhythm-tests",
        "AWS_XRAY_DAEMON_ADDRESS": daemon_address,
        "AWS_EMF_AGENT_ENDPOINT": emf_endpoint,
        **extra,
    }
