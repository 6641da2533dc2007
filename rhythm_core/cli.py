"""The ``rhythm`` command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from . import logs
from .errors import RhythmError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rhythm",
        description="Durable tasks and workflows on PostgreSQL. The database is "
        "RHYTHM_DATABASE_URL, or an embedded PostgreSQL when it is unset.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("migrate", help="create or upgrade the schema")
    worker = commands.add_parser("worker", help="run a worker")
    worker.add_argument(
        "-m",
        "--module",
        action="append",
        required=True,
        dest="modules",
        help="module defining tasks and workflows (repeatable)",
    )
    worker.add_argument(
        "-q",
        "--queue",
        action="append",
        dest="queues",
        help="queue to claim from (repeatable; default: default)",
    )
    worker.add_argument(
        "--concurrency", type=int, default=10, help="executions run at once (default 10)"
    )
    worker.add_argument(
        "--shutdown-timeout",
        type=float,
        default=30.0,
        help="seconds a graceful stop waits for running executions (default 30)",
    )
    worker.add_argument("--heartbeat-interval", type=float, default=5.0)
    worker.add_argument(
        "--dead-after",
        type=float,
        default=30.0,
        help="seconds without a heartbeat before a connected worker is declared dead (one "
        "whose process died is noticed within a poll interval through its liveness lock)",
    )
    worker.add_argument(
        "--statement-timeout",
        type=float,
        default=30.0,
        help="seconds one engine statement may run; a connection silent 5 s past it is "
        "reopened (default 30)",
    )
    worker.add_argument("--poll-interval", type=float, default=1.0)
    worker.add_argument(
        "--retention",
        help="how long finished executions are kept: 7d, 12h, 30m, 90s, or off (default "
        "RHYTHM_RETENTION, else 7d); older ones are deleted in small batches",
    )
    worker.add_argument(
        "--log-level",
        help="DEBUG, INFO, WARNING or ERROR for rhythm's own lines (default RHYTHM_LOG_LEVEL, "
        "else INFO); each failed attempt is a WARNING, a final failure an ERROR",
    )
    worker.add_argument(
        "--log-format",
        help="text, or json: one object a line with execution_id, trace_id and span_id "
        "(default RHYTHM_LOG_FORMAT, else text)",
    )
    worker.add_argument(
        "--claim-batch",
        type=int,
        default=None,
        help="most executions one claim takes (default min(concurrency, 50))",
    )
    prune = commands.add_parser(
        "prune", help="delete finished executions older than an age, with their trees"
    )
    prune.add_argument(
        "--older-than",
        help="an age: 7d, 12h, 30m, 90s (default RHYTHM_RETENTION, else 7d)",
    )
    prune.add_argument("--dry-run", action="store_true", help="say what would go; delete nothing")
    status = commands.add_parser("status", help="one execution's tree, or queue depths and workers")
    status.add_argument("id", nargs="?", help="execution id")
    commands.add_parser("demo", help="run a sample workflow in-process and show its tree")
    trace = commands.add_parser(
        "trace", help="a trace's executions as a waterfall, from the database alone"
    )
    trace.add_argument("id", help="an execution id, or a trace id (32 hex digits)")
    commands.add_parser(
        "plugins", help="list installed observability providers (without importing them)"
    )
    return parser


def _migrate() -> int:
    from .database import connect, mask, resolve_database_url
    from .migrations import migrate

    url, source = resolve_database_url()
    with connect(url, source) as conn:
        applied = migrate(conn)
    done = ", ".join(map(str, applied)) if applied else "none (up to date)"
    print(f"migrated {mask(url)}: applied {done}")
    return 0


def _worker(args: argparse.Namespace) -> int:
    from .worker import Worker

    sys.path.insert(0, os.getcwd())
    worker = Worker(
        args.queues or ["default"],
        concurrency=args.concurrency,
        modules=args.modules,
        shutdown_timeout=args.shutdown_timeout,
        heartbeat_interval=args.heartbeat_interval,
        dead_after=args.dead_after,
        poll_interval=args.poll_interval,
        claim_batch=args.claim_batch,
        statement_timeout=args.statement_timeout,
        retention=args.retention,
    )
    worker.run()
    # the process's observability (read from RHYTHM_*): sent within the stop's time, rather
    # than at interpreter exit with the few seconds an enqueueing script gets
    worker.stop_observability()
    if worker.lingering_threads:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)  # threads running hung sync functions would otherwise block exit
    return 0


def _prune(older_than: str | None, dry_run: bool) -> int:
    from . import retention
    from .database import connect, resolve_database_url
    from .migrations import ensure_schema

    age = (
        retention.parse_age("--older-than", older_than)
        if older_than
        else retention.configured(None)
    )
    if age is None:
        print("nothing to prune: retention is off (--older-than or RHYTHM_RETENTION)")
        return 0
    url, source = resolve_database_url()
    ensure_schema(url, source)
    with connect(url, source) as conn:
        pruned = retention.prune_now(conn, age, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    print(
        f"{verb} {pruned.rows} finished execution(s): {pruned.roots} root(s) finished more "
        f"than {retention.describe(age)} ago, with their trees"
    )
    return 0


STATUS_COUNTS = """
SELECT queue, status, count(*) FROM executions GROUP BY queue, status ORDER BY queue
"""
WORKERS = """
SELECT worker_id, queues, concurrency, extract(epoch FROM now() - last_heartbeat)
FROM worker_heartbeats WHERE status = 'active' ORDER BY worker_id
"""
CHILDREN = """
SELECT id::text, function_name, status FROM executions WHERE parent_id = %s ORDER BY step
"""
STATUSES = ("pending", "running", "suspended", "completed", "failed", "cancelled")


def _status(execution_id: str | None) -> int:
    from . import client, tree
    from .database import connect, resolve_database_url
    from .migrations import ensure_schema

    url, source = resolve_database_url()
    ensure_schema(url, source)
    with connect(url, source) as conn:
        if execution_id:
            execution = client.get_execution(execution_id)
            print(tree.render(tree.load(conn, execution.id)))
            if execution.status == "completed":
                print(f"result: {execution.result!r}")
            elif execution.error:
                print(f"error: {execution.error.get('type')}: {execution.error.get('message')}")
                if execution.error.get("traceback"):
                    print(str(execution.error["traceback"]).rstrip())
            children = conn.execute(CHILDREN, (execution.id,)).fetchall()
            for child_id, name, state in children:
                print(f"child {child_id}  {name}  {state}")
            return 0
        counts: dict[str, dict[str, int]] = {}
        for queue, state, n in conn.execute(STATUS_COUNTS):
            counts.setdefault(queue, {})[state] = n
        header = f"{'queue':<20}" + "".join(f"{s:>11}" for s in STATUSES)
        print(header)
        for queue, by_state in counts.items():
            print(f"{queue:<20}" + "".join(f"{by_state.get(s, 0):>11}" for s in STATUSES))
        if not counts:
            print("(no executions)")
        workers: list[Any] = conn.execute(WORKERS).fetchall()
        print(f"\nactive workers: {len(workers)}")
        for worker_id, queues, concurrency, age in workers:
            print(
                f"  {worker_id}  queues={','.join(queues)}  concurrency={concurrency}  "
                f"last heartbeat {age:.1f}s ago"
            )
    return 0


def _trace(identifier: str) -> int:
    from . import tree
    from .client import _check_id
    from .database import connect, resolve_database_url
    from .errors import ExecutionNotFound
    from .ids import valid_ids
    from .migrations import ensure_schema

    url, source = resolve_database_url()
    ensure_schema(url, source)
    with connect(url, source) as conn:
        trace_id = identifier.lower() if valid_ids(identifier.lower()) else None
        if trace_id is None:
            row = conn.execute(tree.TRACE_OF, (_check_id(identifier),)).fetchone()
            if row is None:
                raise ExecutionNotFound(f"no execution has id {identifier!r}")
            trace_id = row[0]
        nodes = tree.load_trace(conn, trace_id) if trace_id else []
    if not nodes:
        raise ExecutionNotFound(f"no execution belongs to trace {identifier!r}")
    print(f"trace {trace_id}: {len(nodes)} execution(s)")
    print(tree.render(nodes))
    return 0


def _plugins() -> int:
    from .observability.manager import install_hint, installed_providers

    providers = installed_providers()
    if not providers:
        print(f"no observability providers installed; for example: {install_hint('otel')}")
        return 0
    for ep in providers:
        dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist is not None else ""
        print(f"{ep.name:<12} {ep.value:<40} {dist}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        logs.configure(getattr(args, "log_level", None), getattr(args, "log_format", None))
        if args.command == "migrate":
            return _migrate()
        if args.command == "worker":
            return _worker(args)
        if args.command == "prune":
            return _prune(args.older_than, args.dry_run)
        if args.command == "status":
            return _status(args.id)
        if args.command == "trace":
            return _trace(args.id)
        if args.command == "plugins":
            return _plugins()
        from . import demo

        return demo.main()
    except RhythmError as exc:
        print(f"rhythm: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
