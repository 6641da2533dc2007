"""pytest fixtures for code that uses rhythm-core (loaded automatically through the
``pytest11`` entry point once rhythm-core is installed; defines fixtures only).

- ``rhythm_database_url`` (session): a fresh database on ``RHYTHM_TEST_DATABASE_URL``'s
  server, or on an embedded server started for the run; dropped at the end.
- ``rhythm_db`` : a connection to it, with the engine's tables emptied, and ``.queue()`` /
  ``wait()`` pointed at it for the test.
- ``rhythm_worker``: start in-process workers (in threads) with quick test timings; they are
  stopped after the test.
- ``rhythm_recorder``: a fresh :class:`~rhythm_core.testing.RecordingPlugin`.
- ``rhythm_worker_process``: start ``rhythm worker`` processes running
  :mod:`rhythm_core.testing.scenario` with the environment you give (a provider and its
  endpoint), and any modules and queues you add; those still running are SIGKILLed after
  the test.
- ``rhythm_header_server``: a loopback HTTP server that keeps each request's headers (what
  a downstream service sees of a propagated trace); stopped after the test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

TEST_URL = "RHYTHM_TEST_DATABASE_URL"
TABLES = "executions, worker_heartbeats, rhythm_metrics_lease"


@pytest.fixture(scope="session")
def rhythm_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import psycopg
    from psycopg.conninfo import make_conninfo

    from rhythm_core import client, embedded
    from rhythm_core.migrations import ensure_schema

    server = os.environ.get(TEST_URL)
    started = not server
    if started:
        server = embedded.start(
            tmp_path_factory.mktemp("pg") / "data", cleanup_mode="delete", quiet=True
        )
    assert server is not None
    name = f"rhythm_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_conninfo(server, dbname=name)
    ensure_schema(url)
    yield url
    client.reset()
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if started:
        embedded.stop_all()


@pytest.fixture
def rhythm_db(rhythm_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import psycopg

    import rhythm_core
    from rhythm_core.observability import manager as plugins

    monkeypatch.setenv("RHYTHM_DATABASE_URL", rhythm_database_url)
    rhythm_core.configure(rhythm_database_url)
    previous = plugins._active  # a worker given a block makes it the process's: undo that
    with psycopg.connect(rhythm_database_url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {TABLES}")
        yield conn
    plugins._active = previous


@pytest.fixture
def rhythm_worker(rhythm_db: Any) -> Iterator[Callable[..., Any]]:
    from rhythm_core import Worker

    started: list[tuple[Any, Any]] = []

    def start(queues: str | list[str], **options: Any) -> Worker:
        options.setdefault("poll_interval", 0.2)
        options.setdefault("heartbeat_interval", 0.2)
        options.setdefault("dead_after", 1.0)
        options.setdefault("shutdown_timeout", 2.0)
        worker = Worker(queues, **options)
        started.append((worker, worker.start_in_thread()))
        return worker

    yield start
    for worker, thread in started:
        worker.stop()
        thread.join(timeout=15)


@pytest.fixture
def rhythm_recorder() -> Any:
    from rhythm_core.testing import RecordingPlugin

    return RecordingPlugin()


@pytest.fixture
def rhythm_worker_process(rhythm_db: Any, rhythm_database_url: str, tmp_path: Any) -> Any:
    from .processes import spawner

    start, stop_all = spawner(rhythm_database_url, tmp_path)
    yield start
    stop_all()


@pytest.fixture
def rhythm_header_server() -> Iterator[Any]:
    """A loopback HTTP server keeping each request's headers (:class:`.loopback.HeaderServer`),
    stopped after the test."""
    from .loopback import HeaderServer

    server = HeaderServer()
    yield server
    server.stop()
