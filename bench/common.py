"""Shared set-up for the benchmarks: a throw-away database and machine facts."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import uuid
from collections.abc import Iterator

import psycopg
from psycopg.conninfo import make_conninfo

from rhythm_core.migrations import ensure_schema


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    """A fresh database on ``RHYTHM_DATABASE_URL``'s server (or the embedded one), dropped after."""
    server = os.environ.get("RHYTHM_DATABASE_URL")
    if not server:
        from rhythm_core import embedded

        server = embedded.start()
    name = f"rhythm_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_conninfo(server, dbname=name)
    ensure_schema(url)
    try:
        yield url
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def median(values: list[float]) -> float:
    return statistics.median(values)
