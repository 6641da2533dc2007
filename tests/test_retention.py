"""Retention: finished executions past an age are deleted with their trees, by one worker
at a time in small batches, and by ``rhythm prune``; nothing unfinished, and nothing of a tree
whose root is young or unfinished, goes."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from typing import Any

import pytest

from rhythm_core import ConfigError, Worker, retention
from rhythm_core.testing.failover import wait_until

from .conftest import ROOT


def _row(db: Any, *, status: str, age_hours: float, parent: str | None = None,
         step: int | None = None) -> str:
    """A row finished (or not) ``age_hours`` ago, as the engine writes them."""
    execution_id = str(uuid.uuid4())
    finished = status in ("completed", "failed", "cancelled")
    db.execute(
        "INSERT INTO executions (id, type, function_name, queue, status, parent_id, step,"
        " created_at, completed_at)"
        " VALUES (%s, 'task', 'f', 'old', %s, %s, %s, now() - make_interval(hours => %s),"
        " CASE WHEN %s THEN now() - make_interval(hours => %s) END)",
        (execution_id, status, parent, [step] if step is not None else None, age_hours + 1,
         finished, age_hours),
    )
    return execution_id


def _present(db: Any, ids: list[str]) -> set[str]:
    rows = db.execute("SELECT id::text FROM executions WHERE id = ANY(%s::uuid[])", (ids,))
    return {r[0] for r in rows}


def _tables(db: Any) -> tuple[list[str], list[str]]:
    """(what must go, what must stay) after pruning what finished more than 2 hours ago."""
    go = [_row(db, status=s, age_hours=3) for s in ("completed", "failed", "cancelled")]
    tree = _row(db, status="completed", age_hours=3)  # a workflow and its finished tree
    child = _row(db, status="completed", age_hours=4, parent=tree, step=1)
    go += [tree, child, _row(db, status="failed", age_hours=5, parent=child, step=1)]
    stay = [_row(db, status="completed", age_hours=1),  # young
            _row(db, status="pending", age_hours=3), _row(db, status="running", age_hours=3)]
    busy = _row(db, status="completed", age_hours=3)  # old root, a child still running
    stay += [busy, _row(db, status="running", age_hours=3, parent=busy, step=1)]
    young = _row(db, status="completed", age_hours=1)  # young root, an old child
    stay += [young, _row(db, status="completed", age_hours=9, parent=young, step=1)]
    return go, stay


def test_a_worker_deletes_old_finished_trees_and_nothing_else(start_worker, db,
                                                              caplog) -> None:
    go, stay = _tables(db)
    caplog.set_level(logging.INFO, logger="rhythm.worker")
    start_worker("old", retention="2h")
    wait_until(lambda: not _present(db, go), message="old executions were not removed")
    assert _present(db, stay) == set(stay)
    assert any(f"removed {len(go)} finished execution(s) (4 root(s) with their trees) older "
               "than 2h" in r.getMessage() for r in caplog.records)


def test_pruning_goes_in_batches_until_nothing_old_is_left(start_worker, db) -> None:
    n = retention.BATCH * 2 + 7
    db.execute(
        "INSERT INTO executions (id, type, function_name, queue, status, completed_at)"
        " SELECT gen_random_uuid(), 'task', 'f', 'old', 'completed', now() - interval '3 days'"
        " FROM generate_series(1, %s)", (n,))
    start_worker("old", retention="1d")
    count = lambda: db.execute("SELECT count(*) FROM executions").fetchone()[0]  # noqa: E731
    wait_until(lambda: count() == 0, message="not every old execution was removed")


def test_retention_off_keeps_everything(start_worker, db) -> None:
    go, stay = _tables(db)
    worker = start_worker("old", retention="off")
    assert worker.retention is None
    assert _present(db, go + stay) == set(go + stay)


def rhythm(*args: str, env: dict[str, str] | None = None):
    return subprocess.run([sys.executable, "-m", "rhythm_core", *args], cwd=ROOT,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=60)


def test_prune_command_dry_run_then_for_real(db) -> None:
    go, stay = _tables(db)
    dry = rhythm("prune", "--older-than", "2h", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.strip() == (f"would remove {len(go)} finished execution(s): 4 root(s) "
                                  "finished more than 2h ago, with their trees")
    assert _present(db, go + stay) == set(go + stay)
    done = rhythm("prune", "--older-than", "2h")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"removed {len(go)} finished execution(s)")
    assert _present(db, go + stay) == set(stay)


@pytest.mark.parametrize(("given", "seconds"), [
    ("7d", 7 * 86400.0), ("12h", 43200.0), ("30m", 1800.0), ("90s", 90.0), ("2w", 1209600.0),
    ("3600", 3600.0), (600, 600.0), ("off", None), ("0", None), ("never", None),
])
def test_ages_are_read_with_their_units(given, seconds) -> None:
    assert retention.parse_age("x", given) == seconds


@pytest.mark.parametrize("bad", ["7 days", "-1d", "1y", "", True, "nan"])
def test_a_bad_age_is_refused_naming_the_key(bad) -> None:
    with pytest.raises(ConfigError, match=r"^Worker retention must be"):
        Worker("q", retention=bad)


def test_a_bad_retention_variable_or_flag_is_one_line_naming_it(monkeypatch) -> None:
    monkeypatch.setenv("RHYTHM_RETENTION", "forever")
    with pytest.raises(ConfigError, match=r"^RHYTHM_RETENTION must be"):
        Worker("q")
    done = rhythm("prune", "--older-than", "soon")
    assert done.returncode == 2
    assert done.stderr.startswith("rhythm: error: --older-than must be an age")


def test_the_default_keeps_a_week(monkeypatch) -> None:
    monkeypatch.delenv("RHYTHM_RETENTION", raising=False)
    assert Worker("q").retention == 7 * 86400.0
