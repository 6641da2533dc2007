"""Lets test functions write what they did into ``test_runs`` in the same database."""

from __future__ import annotations

import os
import threading
from typing import Any

import psycopg

from rhythm_core import current_execution
from rhythm_core.database import resolve_database_url

_lock = threading.Lock()
_conn: tuple[int, psycopg.Connection[Any]] | None = None


def record(note: str = "run") -> None:
    global _conn
    execution = current_execution()
    assert execution is not None, "record() is for functions run by a worker"
    params = (execution.id, execution.function_name, execution.attempt, execution.worker_id, note)
    with _lock:
        for retry in (False, True):  # tests kill connections on purpose; reconnect once
            if retry or _conn is None or _conn[0] != os.getpid() or _conn[1].closed:
                _conn = (os.getpid(), psycopg.connect(resolve_database_url()[0], autocommit=True))
            try:
                _conn[1].execute(
                    "INSERT INTO test_runs (execution_id, function_name, attempt, worker_id, note)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    params,
                )
                return
            except psycopg.OperationalError:
                if retry:
                    raise
