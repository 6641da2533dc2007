"""The engine's promise under faults, shown with real ones: a proxy in front of PostgreSQL
that cuts or stalls the worker's connections at random moments of executions' lives, and
SIGKILL of worker processes.

- Every execution reaches a final state; none is lost.
- A body that finished is never run again because of a database blip: its outcome is written
  once the database is back (exactly one outcome per lease, at-least-once bodies).
- A stalled (half-open) connection is given up within the statement timeout plus a margin, and
  a stop still ends within shutdown_timeout plus a few seconds.
- A worker whose process dies has its executions taken by another within about a second.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter

import pytest

import rhythm_core
from rhythm_core import Worker
from rhythm_core.worker import SHUTDOWN_GRACE

from .apps import basic
from .conftest import runs, wait_until
from .proxy import DatabaseProxy


@pytest.fixture
def proxy(database_url):
    proxy = DatabaseProxy(database_url)
    yield proxy
    proxy.close()


def statuses(db, ids) -> Counter:
    rows = db.execute(
        "SELECT status FROM executions WHERE id = ANY(%s::uuid[])", (ids,)
    ).fetchall()
    return Counter(status for (status,) in rows)


def bodies(db, note: str) -> Counter:
    return Counter(execution_id for execution_id, *_ in runs(db, note))


def in_thread(worker: Worker) -> threading.Thread:
    return worker.start_in_thread()


def stop_within(worker: Worker, thread: threading.Thread, seconds: float) -> float:
    began = time.monotonic()
    worker.stop()
    thread.join(timeout=seconds + 10)
    took = time.monotonic() - began
    assert not thread.is_alive(), "the worker did not stop"
    assert took < seconds, f"the stop took {took:.1f}s"
    return took


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cuts_at_random_moments_lose_nothing_and_rerun_no_finished_body(proxy, db, seed) -> None:
    """Cuts of 1-5 s land while bodies run, between a body's end and its report, during
    claims, and while idle; one worker, so nothing but a blip could make a body run twice."""
    rng = random.Random(seed)
    worker = Worker("slow", database_url=proxy.url, concurrency=10, poll_interval=0.2,
                    heartbeat_interval=0.5, dead_after=60, shutdown_timeout=5,
                    statement_timeout=2)
    thread = in_thread(worker)
    ids: list[str] = []
    for _ in range(2):
        ids += basic.sleeper.queue_many([(rng.uniform(0.05, 1.5),) for _ in range(10)])
        time.sleep(rng.uniform(0.1, 1.0))
        proxy.cut()
        time.sleep(rng.uniform(1.0, 5.0))
        proxy.restore()
    wait_until(lambda: statuses(db, ids)["completed"] == len(ids), timeout=60,
               message=f"not all completed: {statuses(db, ids)}")
    assert set(bodies(db, "end").values()) == {1}, "a finished body ran again"
    assert set(bodies(db, "start").values()) == {1}
    assert len(bodies(db, "end")) == len(ids)
    stop_within(worker, thread, 5 + SHUTDOWN_GRACE + 3)


def test_a_stalled_connection_is_given_up_and_stop_is_bounded(proxy, db, caplog) -> None:
    worker = Worker("slow", database_url=proxy.url, concurrency=10, poll_interval=0.2,
                    heartbeat_interval=0.5, dead_after=60, shutdown_timeout=2,
                    statement_timeout=1)
    thread = in_thread(worker)
    ids = basic.sleeper.queue_many([(0.5,)] * 10)
    wait_until(lambda: len(runs(db, "start")) >= 5, message="nothing started")
    proxy.stall()
    wait_until(lambda: "no answer from the server" in caplog.text, timeout=15,
               message="the stall was never noticed")
    proxy.restore()
    wait_until(lambda: statuses(db, ids)["completed"] == len(ids), timeout=30,
               message=f"not all completed after the stall: {statuses(db, ids)}")
    assert set(bodies(db, "end").values()) == {1}
    # stalled again, with work in hand: the stop still ends in bounded time
    more = basic.sleeper.queue_many([(0.3,)] * 5)
    wait_until(lambda: statuses(db, more)["pending"] < 5, message="nothing claimed")
    proxy.stall()
    stop_within(worker, thread, 2 + SHUTDOWN_GRACE + 5)
    proxy.restore()


def test_a_killed_worker_is_failed_over_within_seconds(spawn_worker, db, tmp_path) -> None:
    """Two workers whose heartbeat deadline is a minute: only the liveness lock can tell."""
    slow = ["--dead-after", "60", "--heartbeat-interval", "5", "--poll-interval", "0.2"]
    workers = [spawn_worker("tests.apps.basic", "hold", extra=slow) for _ in range(2)]
    time.sleep(10.5)  # both sessions old enough for their locks to be trusted
    marker = tmp_path / "release"
    execution_id = basic.hold_until.queue(str(marker))
    (first_start,) = wait_until(lambda: runs(db, "start"), message="the task never started")
    (holder,) = [w for w in workers if f"-{w.proc.pid}-" in first_start[3]]
    (survivor,) = [w for w in workers if w is not holder]
    holder.signal(signal.SIGKILL)
    killed_at = time.time()
    holder.wait()
    wait_until(lambda: len(runs(db, "start")) == 2, timeout=10, message="not failed over")
    took = runs(db, "start")[1][5].timestamp() - killed_at
    assert took < 3, f"failover took {took:.1f}s"
    marker.touch()
    assert rhythm_core.wait(execution_id, timeout=20) == "released"
    assert len(runs(db, "end")) == 1
    assert survivor.proc.poll() is None


def test_sigkills_at_random_moments_lose_nothing(spawn_worker, db) -> None:
    """One of two workers is SIGKILLed at a random moment, three times, while executions are
    claimed, running, finishing and being reported. A body runs again only where it had
    finished when its worker died, before its outcome was written: counted, and bounded by
    what the killed worker held."""
    rng = random.Random(7)
    args = ["--dead-after", "60", "--poll-interval", "0.2", "--concurrency", "5"]
    workers = [spawn_worker("tests.apps.basic", "slow", extra=args) for _ in range(2)]
    ids = basic.sleeper.queue_many([(rng.uniform(0.05, 0.6),) for _ in range(60)])
    kills = 3
    for _ in range(kills):
        time.sleep(rng.uniform(0.3, 1.5))
        victim = workers.pop(rng.randrange(2))
        victim.signal(signal.SIGKILL)
        victim.wait()
        workers.append(spawn_worker("tests.apps.basic", "slow", extra=args))
    wait_until(lambda: statuses(db, ids)["completed"] == len(ids), timeout=90,
               message=f"not all completed: {statuses(db, ids)}")
    ended = bodies(db, "end")
    assert set(ended) == set(ids)
    again = sum(n - 1 for n in ended.values())
    assert again <= kills * 5, f"{again} bodies ran again after {kills} kills"
    # each outcome was written once: the result is the one of the attempt that won the lease
    rows = db.execute(
        "SELECT count(*) FROM executions WHERE id = ANY(%s::uuid[]) AND result IS NOT NULL",
        (ids,),
    ).fetchone()
    assert rows == (len(ids),)
    assert all(w.proc.poll() is None for w in workers)


def test_an_outage_of_every_session_declares_no_live_worker_dead(proxy, db) -> None:
    """Both workers lose every session at once (a database restart, a network cut), with
    their locks long trusted: each takes its liveness lock again on reconnecting, before the
    other judges it, so neither is declared dead and no body runs twice."""
    options = {"database_url": proxy.url, "concurrency": 5, "poll_interval": 0.2,
               "heartbeat_interval": 0.5, "dead_after": 60, "shutdown_timeout": 5,
               "statement_timeout": 2}
    pairs = [(worker, in_thread(worker)) for worker in (Worker("slow", **options),
                                                         Worker("slow", **options))]
    time.sleep(10.5)  # each trusts the other's liveness lock from now on
    ids = basic.sleeper.queue_many([(2.0,)] * 10)
    wait_until(lambda: len(runs(db, "start")) == 10, message="not all started")
    proxy.cut()
    time.sleep(3)
    proxy.restore()
    wait_until(lambda: statuses(db, ids)["completed"] == len(ids), timeout=60,
               message=f"not all completed: {statuses(db, ids)}")
    assert set(bodies(db, "start").values()) == {1}, "a live worker was declared dead"
    dead = db.execute("SELECT count(*) FROM worker_heartbeats WHERE status = 'dead'").fetchone()
    assert dead == (0,)
    for worker, thread in pairs:
        stop_within(worker, thread, 5 + SHUTDOWN_GRACE + 3)
