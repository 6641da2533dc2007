"""Every statement on the engine's hot path reaches its rows through the primary key or the
claim index, whatever the statistics say.

Each statement is EXPLAINed as the worker runs it (a custom plan, values known) and as a
prepared statement does after a few runs (a generic plan, ``force_generic_plan``), on tables
in the states production reaches: statistics taken while the table was empty and a backlog
arriving after, a pending backlog, many finished rows, and dead tuples left with autovacuum
off. (On a table that is empty when planned, a sequential scan reads nothing and is the right
plan; PostgreSQL plans by the table's actual size on disk when its statistics say empty, so
what is checked is the plan once rows have arrived.) A sequential scan of ``executions``, or an
index scan with no index condition (a whole partial index read, live and dead entries), fails
the test: either turns a statement that touches a batch of rows into one that touches every
row the table has held since its last vacuum.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from rhythm_core import store
from rhythm_core.ids import new_span_id, new_trace_id

PLACEHOLDER = re.compile(r"%\((\w+)\)s|%[sb]")
SOME_IDS = [str(uuid.uuid4()) for _ in range(50)]
ONE = SOME_IDS[0]


def _inserted() -> tuple[Any, ...]:
    rows = [store.NewExecution(type="task", function_name="f", queue="q", args="[]",
                               kwargs="{}", max_retries=3, timeout=None, id=str(uuid.uuid4()),
                               trace_id=new_trace_id(), span_id=new_span_id())
            for _ in range(50)]
    return store.insert_params(rows)


# The claim is sent unprepared (store.CLAIM says why): only its custom plan is ever used.
UNPREPARED = {"claim", "claim untraced"}
# (name, statement, parameters): what the engine sends, with values of the size it sends
STATEMENTS: list[tuple[str, str, Any]] = [
    ("claim", store.CLAIM, ("w", ["q"], 50, 50)),
    ("claim untraced", store.CLAIM_UNTRACED, ("w", ["q", "other"], 50, 50)),
    ("report", store.REPORT, (SOME_IDS, [1] * 50, ["completed"] * 50, ["1"] * 50,
                              [None] * 50, [0.0] * 50)),
    ("lock parents", store.LOCK_PARENTS, (SOME_IDS[:5],)),
    ("suspend", store.SUSPEND, (ONE, 1)),
    ("suspend recheck", store.SUSPEND_RECHECK, (ONE, ["{1}", "{2}"])),
    ("history", store.HISTORY, (ONE,)),
    ("insert", store.INSERT, _inserted()),
    ("held state", store.HELD_STATE, (SOME_IDS,)),
    ("release lost", store.RELEASE_LOST, ("w", SOME_IDS[:5])),
    ("replace trace", store.REPLACE_TRACE, (new_trace_id(), new_span_id(), "{}", ONE, 1)),
    ("detect dead", store.DETECT_DEAD, {"dead_after": 30.0, "me": "w", "trust_locks": True}),
    ("get", store.GET, (ONE,)),
    ("cancel", store.CANCEL, (ONE, ONE)),
    ("prune", store.PRUNE, {"older_than": 3600.0, "batch": 500}),
]


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def _problems(explained: Any) -> list[str]:
    found = []
    for node in _nodes(explained[0]["Plan"]):
        kind, index = node["Node Type"], node.get("Index Name", "")
        if kind == "Seq Scan" and node.get("Relation Name") == "executions":
            found.append("Seq Scan on executions")
        if (kind in ("Index Scan", "Index Only Scan", "Bitmap Index Scan")
                and index.startswith("executions") and "Index Cond" not in node):
            found.append(f"{kind} on {index} without an index condition")
    return found


def _custom(conn: psycopg.Connection[Any], statement: str, params: Any) -> list[str]:
    return _problems(conn.execute("EXPLAIN (FORMAT JSON) " + statement, params).fetchone()[0])


def _generic(conn: psycopg.Connection[Any], statement: str, params: Any) -> list[str]:
    """The plan a prepared statement settles on: planned once, without the values."""
    names: list[Any] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1) if match.group(1) else len(names)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    prepared = PLACEHOLDER.sub(number, statement)
    values = [params[n] for n in names] if isinstance(params, dict) else list(params)
    conn.execute("PREPARE explained AS " + prepared)
    conn.execute("SET plan_cache_mode = force_generic_plan")
    try:
        arguments = sql.SQL(", ").join(sql.Literal(v) for v in values)
        query = sql.SQL("EXPLAIN (FORMAT JSON) EXECUTE explained({})").format(arguments)
        return _problems(conn.execute(query).fetchone()[0])
    finally:
        conn.execute("RESET plan_cache_mode")
        conn.execute("DEALLOCATE explained")


def _all_problems(conn: psycopg.Connection[Any]) -> dict[str, list[str]]:
    found = {}
    for name, statement, params in STATEMENTS:
        for plan, explain in (("custom", _custom), ("generic", _generic)):
            if plan == "generic" and name in UNPREPARED:
                continue
            problems = explain(conn, statement, params)
            if problems:
                found[f"{name} ({plan} plan)"] = problems
    return found


Filler = Callable[[psycopg.Connection[Any]], object]


def _nothing(conn: psycopg.Connection[Any]) -> None:
    pass


def _fill(conn: psycopg.Connection[Any], status: str, n: int) -> None:
    """``n`` rows in ``status``, each its own trace, as the engine writes them."""
    finished = status in store.FINISHED
    conn.execute(
        """
        INSERT INTO executions (id, type, function_name, queue, args, kwargs, status,
                                trace_id, span_id, completed_at, worker_id)
        SELECT gen_random_uuid(), 'task', 'f', 'q', '[]', '{}', %s,
               md5(g::text || %s), substr(md5(g::text), 1, 16),
               CASE WHEN %s THEN now() END, CASE WHEN %s THEN 'w-old' END
        FROM generate_series(1, %s) g
        """,
        (status, status, finished, finished, n),
    )


def _churn(conn: psycopg.Connection[Any], n: int) -> None:
    """Run ``n`` rows through claim and report as the engine does, leaving dead tuples in
    the table and dead entries in its partial indexes."""
    conn.execute(
        "UPDATE executions SET status = 'running', worker_id = 'w', lease = lease + 1 "
        "WHERE id IN (SELECT id FROM executions WHERE status = 'pending' LIMIT %s)", (n,))
    conn.execute(
        "UPDATE executions SET status = 'completed', completed_at = now() "
        "WHERE status = 'running'")


# (what is in the table when it is analyzed, what arrives after): statistics go stale
# between autovacuum's analyses. A table analyzed while empty is planned for by its actual
# size on disk, so the danger there is what arrives after the analysis.
STATES: dict[str, tuple[Filler, Filler]] = {
    "analyzed while empty, then a 50,000-row backlog": (
        lambda conn: None, lambda conn: _fill(conn, "pending", 50_000)),
    "a 50,000-row pending backlog": (lambda conn: _fill(conn, "pending", 50_000), _nothing),
    "200,000 finished and 50,000 pending rows": (
        lambda conn: (_fill(conn, "completed", 200_000), _fill(conn, "pending", 50_000)),
        _nothing),
    "dead tuples, autovacuum off": (
        lambda conn: (_fill(conn, "pending", 60_000), _churn(conn, 40_000)), _nothing),
}


@pytest.mark.parametrize("state", list(STATES))
def test_hot_path_statements_use_the_primary_key_or_the_claim_index(db, state) -> None:
    before, after = STATES[state]
    db.execute("ALTER TABLE executions SET (autovacuum_enabled = off)")
    try:
        before(db)
        db.execute("ANALYZE executions")
        after(db)
        assert _all_problems(db) == {}, state
    finally:
        db.execute("ALTER TABLE executions RESET (autovacuum_enabled)")
        db.execute("TRUNCATE executions")


def test_the_plan_check_finds_a_scan_of_the_whole_table(db) -> None:
    # the check itself: a statement that has to read every row is caught
    _fill(db, "completed", 1000)
    db.execute("ANALYZE executions")
    assert _custom(db, "SELECT count(*) FROM executions WHERE args::text = %s", ("[]",)) == [
        "Seq Scan on executions"]
    assert _generic(db, "SELECT count(*) FROM executions WHERE args::text = %s", ("[]",)) == [
        "Seq Scan on executions"]
