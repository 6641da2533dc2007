"""Versioned schema migrations, applied by ``rhythm migrate`` and on first use.

Each migration runs once, in order, inside a transaction that holds an advisory lock, so
workers starting together never race. Applied versions are kept in ``rhythm_migrations``.
"""

from __future__ import annotations

import threading
from typing import Any

import psycopg

from .database import connect

_LOCK_KEY = 7_301_224_977  # pg_advisory_xact_lock key shared by every rhythm process

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "executions and worker heartbeats",
        """
        CREATE TABLE executions (
            id             uuid PRIMARY KEY,
            type           text NOT NULL CHECK (type IN ('task', 'workflow')),
            function_name  text NOT NULL,
            queue          text NOT NULL,
            status         text NOT NULL DEFAULT 'pending' CHECK (status IN
                           ('pending', 'running', 'suspended', 'completed', 'failed', 'cancelled')),
            args           jsonb NOT NULL DEFAULT '[]',
            kwargs         jsonb NOT NULL DEFAULT '{}',
            result         jsonb,
            error          jsonb,
            attempt        integer NOT NULL DEFAULT 1,
            max_retries    integer NOT NULL DEFAULT 0,
            parent_id      uuid,
            step           integer[],
            worker_id      text,
            lease          bigint NOT NULL DEFAULT 0,
            replays        integer NOT NULL DEFAULT 0,
            created_at     timestamptz NOT NULL DEFAULT now(),
            scheduled_at   timestamptz NOT NULL DEFAULT now(),
            claimed_at     timestamptz,
            completed_at   timestamptz,
            timeout        double precision,
            trace_id       text COLLATE "C",
            span_id        text COLLATE "C",
            trace_context  jsonb
        );
        CREATE INDEX executions_claim ON executions (queue, scheduled_at)
            WHERE status = 'pending';
        CREATE UNIQUE INDEX executions_parent_step ON executions (parent_id, step)
            WHERE parent_id IS NOT NULL;
        CREATE INDEX executions_running_worker ON executions (worker_id)
            WHERE status = 'running';
        CREATE INDEX executions_trace_id ON executions (trace_id);

        CREATE TABLE worker_heartbeats (
            worker_id      text PRIMARY KEY,
            queues         text[] NOT NULL,
            hostname       text NOT NULL,
            pid            integer NOT NULL,
            concurrency    integer NOT NULL,
            started_at     timestamptz NOT NULL DEFAULT now(),
            last_heartbeat timestamptz NOT NULL DEFAULT now(),
            status         text NOT NULL DEFAULT 'active'
                           CHECK (status IN ('active', 'stopped', 'dead'))
        );
        """,
    ),
    (
        2,
        "cluster-wide metrics lease",
        """
        CREATE TABLE rhythm_metrics_lease (
            id           integer PRIMARY KEY CHECK (id = 1),
            collected_at timestamptz NOT NULL,
            worker_id    text NOT NULL
        );
        """,
    ),
    (
        3,
        "trace index without rows that started their own trace",
        # A root that starts its own trace has id = trace id (ids.start_own_traces), so
        # the primary key finds it. Leaving such rows out of the index spares the common
        # execution three index entries: claim and report are not HOT updates.
        """
        DROP INDEX IF EXISTS executions_trace_id;
        CREATE INDEX executions_shared_trace ON executions (trace_id)
            WHERE trace_id <> translate(id::text, '-', '');
        """,
    ),
    (
        4,
        "running-rows index only for lookups by worker",
        # Statements that change one claimed row (report, suspend) say status = 'running',
        # which let the planner read the whole running-rows index, with every dead entry
        # left since the last vacuum, instead of looking the ids up by primary key: it did
        # once the table had statistics. The index now also requires a worker id, which only
        # the lookups by worker (failover, a lost claim) imply.
        """
        DROP INDEX IF EXISTS executions_running_worker;
        CREATE INDEX executions_running_worker ON executions (worker_id)
            WHERE status = 'running' AND worker_id IS NOT NULL;
        """,
    ),
    (
        5,
        "finished roots by age, for retention",
        # Retention deletes the oldest finished roots with their trees a batch at a time;
        # without this index each batch would read the whole table to find them.
        """
        CREATE INDEX executions_finished_roots ON executions (completed_at)
            WHERE parent_id IS NULL AND status IN ('completed', 'failed', 'cancelled');
        """,
    ),
]

_done: set[str] = set()
_lock = threading.Lock()


def migrate(conn: psycopg.Connection[Any]) -> list[int]:
    """Apply the migrations this database lacks; return the versions applied."""
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS rhythm_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        have = {row[0] for row in conn.execute("SELECT version FROM rhythm_migrations")}
        for version, name, sql in MIGRATIONS:
            if version in have:
                continue
            conn.execute(sql.encode())
            conn.execute(
                "INSERT INTO rhythm_migrations (version, name) VALUES (%s, %s)", (version, name)
            )
            applied.append(version)
    return applied


def ensure_schema(url: str, source: str = "the database") -> None:
    """Migrate ``url`` once per process (cheap after the first call)."""
    if url in _done:
        return
    with _lock:
        if url in _done:
            return
        with connect(url, source) as conn:
            migrate(conn)
        _done.add(url)
