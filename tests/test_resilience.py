"""What the worker does when the database misbehaves: refused outcomes, stale leases, and
connections that are killed under it."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid

import rhythm_core
from rhythm_core import Worker, store
from rhythm_core.connections import Connection
from rhythm_core.reporter import Reporter
from rhythm_core.store import Claimed

from .apps import basic
from .conftest import runs, wait_until
from .proxy import DatabaseProxy


def running_row(db, *, lease: int = 1, worker_id: str = "someone") -> Claimed:
    execution_id = str(uuid.uuid4())
    db.execute(
        "INSERT INTO executions (id, type, function_name, queue, status, worker_id, lease) "
        "VALUES (%s, 'task', 'tests.apps.basic.add', 'nowhere', 'running', %s, %s)",
        (execution_id, worker_id, lease),
    )
    return Claimed(execution_id, "task", "tests.apps.basic.add", "nowhere", "[]", "{}", 1, 0,
                   None, lease, None, None, None, None, 0, 0)


def report(database_url: str, outcomes: list[tuple[Claimed, str, str | None]]) -> None:
    async def main() -> None:
        connection = Connection(database_url, "test", "report")
        reporter = Reporter(connection)
        for row, kind, result in outcomes:
            reporter.add(row, kind, result=result)
        await reporter.drain()
        await connection.close()

    asyncio.run(main())


def state(db, row: Claimed) -> tuple:
    return db.execute(
        "SELECT status, result, error->>'type' FROM executions WHERE id = %s", (row.id,)
    ).fetchone()


def test_an_outcome_the_database_refuses_becomes_a_failure(database_url, db) -> None:
    good, bad = running_row(db), running_row(db)
    report(database_url, [(good, store.COMPLETED, '{"ok": true}'),
                          (bad, store.COMPLETED, "{not json")])
    assert state(db, good) == ("completed", {"ok": True}, None)
    assert state(db, bad) == ("failed", None, "OutcomeNotStored")


def test_a_stale_lease_cannot_overwrite_the_new_owner(database_url, db, caplog) -> None:
    row = running_row(db, lease=2)
    stale = dataclasses.replace(row, lease=1)
    report(database_url, [(stale, store.COMPLETED, "1")])
    assert state(db, row) == ("running", None, None)
    # the lost outcome is said, not dropped without a word
    assert f"the completed outcome of execution {row.id} was not written" in caplog.text
    report(database_url, [(row, store.COMPLETED, "2")])
    assert state(db, row) == ("completed", 2, None)


def test_worker_survives_its_connections_being_killed(start_worker, db) -> None:
    worker = start_worker("basic")
    assert rhythm_core.wait(basic.add.queue(1, 1), timeout=10) == 2
    # a claim that committed but whose rows never reached the worker
    orphan = running_row(db, worker_id=worker.worker_id)
    db.execute("UPDATE executions SET queue = 'basic', args = '[20, 1]' WHERE id = %s",
               (orphan.id,))
    killed = db.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    ).fetchone()
    assert killed is not None and killed[0] >= 4
    assert rhythm_core.wait(basic.add.queue(2, 3), timeout=20) == 5
    assert rhythm_core.wait(orphan.id, timeout=20) == 21
    wait_until(lambda: db.execute("SELECT count(*) FROM worker_heartbeats "
                                  "WHERE status = 'active'").fetchone() == (1,))


def test_a_database_outage_loses_nothing(start_worker, database_url, db) -> None:
    proxy = DatabaseProxy(database_url)
    try:
        start_worker("bulk", database_url=proxy.url)
        first = basic.bulk_item.queue_many([(i,) for i in range(50)])
        wait_until(lambda: all_completed(db, first), message="first batch")
        proxy.cut()
        second = basic.bulk_item.queue_many([(i,) for i in range(50, 100)])
        time.sleep(1.5)
        assert not all_completed(db, second)  # nothing can be claimed through the cut
        proxy.restore()
        wait_until(lambda: all_completed(db, second), timeout=30, message="after the outage")
        assert len(runs(db)) == 100  # nothing ran twice
    finally:
        proxy.close()


def test_stopping_while_the_database_is_away_does_not_hang(database_url, db) -> None:
    proxy = DatabaseProxy(database_url)
    try:
        worker = Worker("bulk", database_url=proxy.url, poll_interval=0.1,
                        heartbeat_interval=0.2, dead_after=1, shutdown_timeout=0.5)
        thread = worker.start_in_thread()
        proxy.cut()
        time.sleep(0.5)
        began = time.monotonic()
        worker.stop()
        thread.join(timeout=30)
        assert not thread.is_alive()
        assert time.monotonic() - began < 20
    finally:
        proxy.close()


def all_completed(db, ids: list[str]) -> bool:
    row = db.execute(
        "SELECT count(*) FROM executions WHERE id = ANY(%s::uuid[]) AND status = 'completed'",
        (ids,),
    ).fetchone()
    return row == (len(ids),)
