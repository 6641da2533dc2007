"""The SQL of the engine, in one place, and the helpers that build its parameters.

Statements take arrays (``unnest``) so that one round trip creates, claims or reports a whole
batch. Every state change of a claimed execution is fenced by its ``lease`` (bumped on each
claim), so a worker that lost an execution to failover can never overwrite its new owner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .observability.attempt import AttemptRecord

# A workflow step: the path of the workflow's asyncio task that took it, then its position.
Step = tuple[int, ...]

NOTIFY_CHANNEL = "rhythm_pending"
CANCEL_CHANNEL = "rhythm_cancel"
FINISHED = ("completed", "failed", "cancelled")


@dataclass(slots=True)
class NewExecution:
    """A row to insert into ``executions``.

    Inserting is idempotent: a row whose id, or whose (parent, step), exists is skipped, so a
    create retried after a lost connection, or a workflow step recorded twice, writes once.
    """

    type: str
    function_name: str
    queue: str
    args: str
    kwargs: str
    max_retries: int
    timeout: float | None
    parent_id: str | None = None
    step: Step | None = None
    id: str = ""  # assigned by rhythm_core.ids with the trace ids
    trace_id: str | None = None
    span_id: str | None = None
    trace_context: str | None = None


# Batch parameters go in binary (%b): psycopg's text format quotes every array element
# through a regular expression, a visible share of enqueue and report time. The trace and
# span ids, written to every row, go as one comma-separated string each that the server
# splits, because psycopg dumps an array element by element in Python (bench.overhead,
# "ids in every row").
INSERT = """
WITH ins AS (
    INSERT INTO executions (id, type, function_name, queue, args, kwargs, max_retries, timeout,
                            parent_id, step, trace_id, span_id, trace_context)
    SELECT u.id, u.type, u.fn, u.queue, u.args::jsonb, u.kwargs::jsonb, u.max_retries, u.timeout,
           u.parent_id, u.step::int[], u.trace_id, u.span_id, u.trace_context::jsonb
    FROM unnest(%b::text[]::uuid[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[],
                %b::int[], %b::float8[], %b::text[]::uuid[], %b::text[], %b::text[],
                string_to_array(%b::text, ',', ''), string_to_array(%b::text, ',', ''))
         AS u(id, type, fn, queue, args, kwargs, max_retries, timeout, parent_id, step,
              trace_context, trace_id, span_id)
    ON CONFLICT DO NOTHING
    RETURNING queue
)
SELECT pg_notify('rhythm_pending', q.queue) FROM (SELECT DISTINCT queue FROM ins) q
"""


def insert_params(rows: list[NewExecution]) -> tuple[Any, ...]:
    return (
        [r.id for r in rows],
        [r.type for r in rows],
        [r.function_name for r in rows],
        [r.queue for r in rows],
        [r.args for r in rows],
        [r.kwargs for r in rows],
        [r.max_retries for r in rows],
        [r.timeout for r in rows],
        [r.parent_id for r in rows],
        [step_literal(r.step) for r in rows],
        [r.trace_context for r in rows],
        # a missing id is empty (NULL in the row). No id holds a comma: every one is drawn
        # as hex by rhythm_core.ids or checked by ids.valid_ids where it comes from outside
        # (a parent row's, a carrier's, a plugin's extract)
        ",".join([r.trace_id or "" for r in rows]),
        ",".join([r.span_id or "" for r in rows]),
    )


def step_literal(step: Step | None) -> str | None:
    """A step as a PostgreSQL ``int[]`` literal (arrays of arrays cannot go through unnest)."""
    return None if step is None else "{" + ",".join(map(str, step)) + "}"


@dataclass(slots=True)
class Claimed:
    """An execution this worker holds, as returned by :data:`CLAIM` (or, by a worker with
    tracing off, :data:`CLAIM_UNTRACED`: the trace id only)."""

    id: str
    type: str
    function_name: str
    queue: str
    args: str
    kwargs: str
    attempt: int
    max_retries: int
    timeout: float | None
    lease: int
    parent_id: str | None
    trace_id: str | None
    span_id: str | None
    trace_context: str | None  # JSON text: decoded only when tracing is on
    created_ns: int
    replays: int
    record: AttemptRecord | None = None  # kept by the instrumentation when it is on
    history_size: int = 0


# One index scan per queue (a LATERAL per name keeps the claim index ordered, where
# ``queue = ANY(...)`` would sort every pending row), then the oldest across queues. The
# worker sends it unprepared, so that it is planned with its LIMIT known: a prepared
# statement's generic plan takes the LIMIT for a tenth of the backlog and, on a large one,
# sorts every pending row of the queue instead of walking the index (tests/test_plans.py).
_CLAIM = """
UPDATE executions e
SET status = 'running', worker_id = %s, claimed_at = now(), lease = e.lease + 1,
    replays = e.replays + CASE WHEN e.type = 'workflow' THEN 1 ELSE 0 END
FROM (
    SELECT c.id FROM unnest(%s::text[]) AS q(name), LATERAL (
        SELECT id, scheduled_at FROM executions
        WHERE status = 'pending' AND queue = q.name AND scheduled_at <= now()
        ORDER BY scheduled_at
        LIMIT %s
        FOR UPDATE SKIP LOCKED
    ) c
    ORDER BY c.scheduled_at
    LIMIT %s
) c
WHERE e.id = c.id
RETURNING e.id::text, e.type, e.function_name, e.queue, e.args::text, e.kwargs::text,
          e.attempt, e.max_retries, e.timeout, e.lease, e.parent_id::text, {trace_fields},
          (extract(epoch FROM e.created_at) * 1e9)::int8, e.replays
"""
CLAIM = _CLAIM.format(trace_fields="e.trace_id, e.span_id, e.trace_context::text")
# With tracing off (observability off, or metrics only) a worker reads only the trace id
# (children of a workflow join it; log lines carry it), not the span id or the carrier.
CLAIM_UNTRACED = _CLAIM.format(trace_fields="e.trace_id, NULL, NULL")

# Outcome kinds a worker reports for a claimed execution.
COMPLETED, FAILED, RETRY, RELEASE = "completed", "failed", "retry", "release"

# Parents are locked first (sorted, to avoid deadlocks between batches) so that waking a
# suspended parent cannot interleave with that parent suspending: see SUSPEND below.
LOCK_PARENTS = "SELECT 1 FROM executions WHERE id = ANY(%s::uuid[]) ORDER BY id FOR UPDATE"


def report_params(outcomes: Sequence[Any]) -> tuple[list[Any], ...]:
    """:data:`REPORT`'s arrays, one per column, from outcomes with the fields of
    :data:`REPORT_FIELDS` (``reporter.Outcome``)."""
    return tuple(list(column) for column in zip(*map(_report_fields, outcomes), strict=True))


REPORT_FIELDS = ("id", "lease", "kind", "result", "error", "delay")
_report_fields = attrgetter(*REPORT_FIELDS)
REPORT = """
WITH v AS (
    SELECT * FROM unnest(%b::text[]::uuid[], %b::bigint[], %b::text[], %b::text[], %b::text[],
                         %b::float8[])
         AS v(id, lease, kind, result, error, delay)
), done AS (
    UPDATE executions e SET
        status = CASE v.kind WHEN 'retry' THEN 'pending' WHEN 'release' THEN 'pending'
                             ELSE v.kind END,
        result = CASE WHEN v.kind = 'completed' THEN v.result::jsonb ELSE e.result END,
        error = COALESCE(v.error::jsonb, e.error),
        attempt = e.attempt + CASE WHEN v.kind = 'retry' THEN 1 ELSE 0 END,
        scheduled_at = CASE WHEN v.kind IN ('retry', 'release')
                            THEN now() + make_interval(secs => v.delay) ELSE e.scheduled_at END,
        completed_at = CASE WHEN v.kind IN ('completed', 'failed') THEN now() END,
        worker_id = CASE WHEN v.kind IN ('retry', 'release') THEN NULL ELSE e.worker_id END
    FROM v
    WHERE e.id = v.id AND e.lease = v.lease AND e.status = 'running'
    RETURNING e.id, e.parent_id, e.status
), woken AS (
    UPDATE executions p SET status = 'pending', scheduled_at = now()
    WHERE p.id IN (SELECT parent_id FROM done
                   WHERE parent_id IS NOT NULL AND status IN ('completed', 'failed'))
      AND p.status = 'suspended'
    RETURNING p.queue
)
SELECT (SELECT count(*) FROM done),
       (SELECT count(pg_notify('rhythm_pending', q.queue))
        FROM (SELECT DISTINCT queue FROM woken) q)
"""

# A workflow that has to wait marks itself suspended (which locks its row), records the
# children it started, then looks again: a child that finished before the lock was taken
# could not wake it, so the workflow goes straight back to pending instead.
SUSPEND = """
UPDATE executions SET status = 'suspended', worker_id = NULL
WHERE id = %s AND lease = %s AND status = 'running'
RETURNING id
"""

SUSPEND_RECHECK = """
UPDATE executions p SET status = 'pending', scheduled_at = now()
WHERE p.id = %s AND p.status = 'suspended' AND EXISTS (
    SELECT 1 FROM executions c
    WHERE c.parent_id = p.id AND c.step::text = ANY(%s::text[])
      AND c.status IN ('completed', 'failed', 'cancelled'))
RETURNING pg_notify('rhythm_pending', p.queue)
"""

HISTORY = """
SELECT step, id::text, function_name, status, result, error
FROM executions WHERE parent_id = %s ORDER BY step
"""


@dataclass(slots=True)
class ChildRecord:
    """One recorded step of a workflow: the child execution it created."""

    step: list[int]
    id: str
    function_name: str
    status: str
    result: Any
    error: dict[str, Any] | None


HEARTBEAT = """
INSERT INTO worker_heartbeats (worker_id, queues, hostname, pid, concurrency, status)
VALUES (%s, %s, %s, %s, %s, 'active')
ON CONFLICT (worker_id) DO UPDATE SET last_heartbeat = now(), status = %s
"""

# A worker's liveness lock: a session-level advisory lock keyed by its id (64 bits of md5),
# held by its heartbeat session for as long as that session lives. The server frees it when
# the session ends, which it does when the process dies.
_LIVENESS_KEY = "('x' || substr(md5('rhythm-worker:' || {id}), 1, 16))::bit(64)::bigint"
TAKE_LIVENESS = "SELECT pg_try_advisory_lock(" + _LIVENESS_KEY.format(id="%s") + ")"

# Workers declared dead have their running executions returned to pending: a worker whose
# heartbeat is older than ``dead_after`` (a process that hangs while connected), or, when the
# checking worker trusts locks (see Worker._detect_dead), one whose liveness lock is free (a
# process that died). Only one worker at a time does this (a transaction-level advisory lock).
DETECT_DEAD = (
    """
WITH locked AS (SELECT pg_try_advisory_xact_lock(7301224978) AS ok),
dead AS (
    UPDATE worker_heartbeats h SET status = 'dead'
    WHERE h.status = 'active' AND (SELECT ok FROM locked) AND (
        h.last_heartbeat < now() - make_interval(secs => %(dead_after)s)
        OR (%(trust_locks)s AND h.worker_id <> %(me)s
            AND pg_try_advisory_xact_lock("""
    + _LIVENESS_KEY.format(id="h.worker_id")
    + """)))
    RETURNING worker_id
), gone AS (
    SELECT worker_id FROM dead
    UNION
    SELECT worker_id FROM worker_heartbeats WHERE status <> 'active'
), orphaned AS (
    -- an array of worker ids, so that the running index is searched for them, not read whole
    UPDATE executions e SET status = 'pending', worker_id = NULL, scheduled_at = now()
    WHERE e.status = 'running' AND (SELECT ok FROM locked)
      AND e.worker_id = ANY(ARRAY(SELECT worker_id FROM gone))
    RETURNING e.id, e.queue
)
SELECT (SELECT array_agg(worker_id) FROM dead),
       (SELECT count(*) FROM orphaned),
       (SELECT count(pg_notify('rhythm_pending', q.queue))
        FROM (SELECT DISTINCT queue FROM orphaned) q)
"""
)

# Where rows stand whose outcome matched nothing (Reporter: lost to failover, or written by an
# earlier try of the same write).
HELD_STATE = "SELECT id::text, status, lease FROM executions WHERE id = ANY(%s::uuid[])"

RELEASE_LOST = """
WITH released AS (
    UPDATE executions SET status = 'pending', worker_id = NULL
    WHERE worker_id = %s AND status = 'running' AND id <> ALL(%s::uuid[])
    RETURNING queue
)
SELECT count(*) FROM released
"""

# A claimed row whose trace context was unusable gets the new root trace's ids written back,
# so that the ids in the database stay the ones the backends hold.
REPLACE_TRACE = """
UPDATE executions SET trace_id = %s, span_id = %s, trace_context = %s::jsonb
WHERE id = %s AND lease = %s
"""

# One worker per cluster reads the gauges each interval: the one that moves this row.
GAUGE_LEASE = """
INSERT INTO rhythm_metrics_lease (id, collected_at, worker_id) VALUES (1, now(), %s)
ON CONFLICT (id) DO UPDATE SET collected_at = now(), worker_id = EXCLUDED.worker_id
WHERE rhythm_metrics_lease.collected_at <= now() - make_interval(secs => %s)
RETURNING 1
"""
GAUGE_WAITING = """
SELECT queue, type, count(*) FROM executions WHERE status = 'pending' GROUP BY queue, type
"""
GAUGE_RUNNING = """
SELECT queue, type, worker_id, count(*) FROM executions WHERE status = 'running'
GROUP BY queue, type, worker_id
"""
GAUGE_WORKERS = "SELECT count(*) FROM worker_heartbeats WHERE status = 'active'"

# Retention: finished roots (a task or workflow with no parent) older than %(older_than)s
# seconds, oldest first, each with its whole tree once every execution in the tree is
# finished. The roots come from their own index, the trees by parent id.
_PRUNABLE = """
roots AS (
    SELECT id FROM executions
    WHERE parent_id IS NULL AND status IN ('completed', 'failed', 'cancelled')
      AND completed_at < now() - make_interval(secs => %(older_than)s) {when}
    ORDER BY completed_at {limit}
),
tree AS (
    SELECT id, id AS root, status FROM executions WHERE id = ANY(ARRAY(SELECT id FROM roots))
    UNION ALL
    SELECT c.id, t.root, c.status FROM tree t,
        LATERAL (SELECT id, status FROM executions WHERE parent_id = t.id OFFSET 0) c
),
ready AS (
    SELECT root FROM tree GROUP BY root
    HAVING bool_and(status IN ('completed', 'failed', 'cancelled'))
)
"""
# A batch of at most %(batch)s roots, by one worker at a time (a transaction-level advisory
# lock): (roots looked at, roots removed, rows removed).
PRUNE = (
    # A batch's commit does not wait for its WAL to reach disk: rows lost to a crash are
    # deleted again by the next batch, and claims and reports do not queue behind the flush.
    "WITH RECURSIVE locked AS (SELECT pg_try_advisory_xact_lock(7301224979) AS ok,"
    " set_config('synchronous_commit', 'off', true) AS deferred),"
    + _PRUNABLE.format(when="AND (SELECT ok FROM locked)", limit="LIMIT %(batch)s")
    + """, removed AS (
    DELETE FROM executions e
    WHERE e.id = ANY(ARRAY(SELECT id FROM tree WHERE root IN (SELECT root FROM ready)))
    RETURNING e.parent_id
)
SELECT (SELECT count(*) FROM roots), count(*) FILTER (WHERE parent_id IS NULL), count(*)
FROM removed
"""
)
# What PRUNE would remove now: (rows, roots).
PRUNE_PREVIEW = (
    "WITH RECURSIVE"
    + _PRUNABLE.format(when="", limit="")
    + """SELECT count(*), count(*) FILTER (WHERE id = root)
FROM tree WHERE root IN (SELECT root FROM ready)
"""
)

GET = """
SELECT id::text, type, function_name, queue, status, args::text, kwargs::text, result::text,
       error::text, attempt,
       max_retries, parent_id::text, step, worker_id, created_at, claimed_at, completed_at,
       trace_id, span_id
FROM executions WHERE id = %s
"""


@dataclass(slots=True, frozen=True)
class Execution:
    """A snapshot of one row of ``executions``, as returned by :func:`rhythm_core.get_execution`."""

    id: str
    type: str
    function_name: str
    queue: str
    status: str
    args: list[Any]
    kwargs: dict[str, Any]
    result: Any
    error: dict[str, Any] | None
    attempt: int
    max_retries: int
    parent_id: str | None
    step: list[int] | None
    worker_id: str | None
    created_at: datetime
    claimed_at: datetime | None
    completed_at: datetime | None
    trace_id: str | None
    span_id: str | None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


# Cancelling an execution cancels every unfinished descendant too, and wakes a suspended
# parent so that its ``await child.run()`` raises.
CANCEL = """
WITH RECURSIVE tree AS (
    SELECT id FROM executions WHERE id = %s
    UNION ALL
    -- each node's children looked up by parent id, never by reading the table: OFFSET 0
    -- keeps the planner from turning the LATERAL back into a join it may hash
    SELECT c.id FROM tree t,
        LATERAL (SELECT id FROM executions WHERE parent_id = t.id OFFSET 0) c
), cancelled AS (
    UPDATE executions e SET status = 'cancelled', completed_at = now(),
        error = jsonb_build_object('type', 'Cancelled', 'message', 'cancelled by request')
    WHERE e.id = ANY(ARRAY(SELECT id FROM tree))
      AND e.status NOT IN ('completed', 'failed', 'cancelled')
    RETURNING e.id, e.parent_id
), woken AS (
    UPDATE executions p SET status = 'pending', scheduled_at = now()
    WHERE p.id = (SELECT parent_id FROM executions WHERE id = %s)
      AND p.status = 'suspended' AND EXISTS (SELECT 1 FROM cancelled)
    RETURNING p.queue
)
SELECT (SELECT count(*) FROM cancelled),
       (SELECT count(pg_notify('rhythm_cancel', id::text)) FROM cancelled),
       (SELECT count(pg_notify('rhythm_pending', queue)) FROM woken)
"""
