"""End-to-end throughput of no-op tasks through one worker process, and claim latency.

    python -m bench.throughput [--tasks 20000] [--configs 50,100,200,200:100] [--rounds 3]
                               [--tables fresh,analyzed,history,autovacuum,pruning]

Uses ``RHYTHM_DATABASE_URL``'s server (a scratch database on it) or the embedded PostgreSQL.
For each round: enqueue the tasks, start a worker in this process, time until all are
completed. Claim latency is the round trip of each batch claim statement the worker makes;
pickup latency is enqueue-to-claim and enqueue-to-completion (database clock) of single tasks
sent one at a time to an idle worker.

The tables rows run one worker (concurrency 100) on tables as production leaves them,
alternating with the fresh table in each round: ``fresh``, truncated and never analyzed;
``analyzed``, the backlog analyzed before the worker starts (what autovacuum does to a busy
table); ``history``, 1,000,000 finished rows of another queue in the table, analyzed;
``autovacuum``, autovacuum left on for the table during the run (every other row turns it
off, so that a vacuum is not charged to one of them); ``pruning``, 100,000 executions that
finished 30 days ago, deleted by ``rhythm prune`` in a process of its own (as another
worker's retention would) while the worker drains.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from typing import Any

import psycopg

import rhythm_core
from rhythm_core import Worker, client

from .common import (
    enqueue,
    machine,
    median,
    percentile,
    run_until_completed,
    scratch_database,
    truncate,
)
from .noop_tasks import noop_async, noop_sync


class TimedWorker(Worker):
    """A worker that records how long each claim statement takes."""

    claim_seconds: list[float]

    async def _claim(self, conn: psycopg.AsyncConnection[Any], limit: int) -> Any:
        began = time.perf_counter()
        rows = await super()._claim(conn, limit)
        if rows:
            self.claim_seconds.append(time.perf_counter() - began)
        return rows


async def drain(
    url: str, queue: str, total: int, concurrency: int, claim_batch: int | None = None
) -> tuple[float, list[float]]:
    worker = TimedWorker(
        queue, concurrency=concurrency, database_url=url, poll_interval=0.05,
        claim_batch=claim_batch,
    )
    worker.claim_seconds = []
    elapsed = await run_until_completed(worker, url, queue, total)
    return elapsed, worker.claim_seconds


async def pickup_latency(url: str, samples: int) -> list[tuple[float, float]]:
    """(created -> claimed, created -> completed) in seconds, by the database's clock, for
    single tasks enqueued one at a time to an idle worker."""
    worker = Worker("bench", concurrency=10, database_url=url)
    runner = asyncio.ensure_future(worker.run_async())
    await asyncio.sleep(0.2)
    ids = []
    for _ in range(samples):
        execution_id = await noop_async.queue_async()
        await rhythm_core.wait_async(execution_id)
        ids.append(execution_id)
    worker.stop()
    await runner
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT extract(epoch FROM claimed_at - created_at)::float8,"
            " extract(epoch FROM completed_at - created_at)::float8"
            " FROM executions WHERE id = ANY(%s::uuid[])",
            (ids,),
        )
        return [(float(a), float(b)) for a, b in await cursor.fetchall()]


async def isolated_claims(url: str, batch: int, samples: int) -> list[float]:
    """Claim statement round trips of ``batch`` rows each, with nothing else running."""
    worker = TimedWorker("bench", database_url=url)
    worker.claim_seconds = []
    noop_async.queue_many([()] * (batch * samples))
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for _ in range(samples):
            await worker._claim(conn, batch)
    return worker.claim_seconds


HISTORY_ROWS = 1_000_000
PRUNED_ROWS = 100_000
TABLES = ("fresh", "analyzed", "history", "autovacuum", "pruning")
FINISHED_ROWS = (
    "INSERT INTO executions (id, type, function_name, queue, args, kwargs, status, trace_id,"
    " span_id, completed_at, result)"
    " SELECT gen_random_uuid(), 'task', 'old.f', 'history', '[]', '{}', 'completed',"
    " md5(g::text), substr(md5(g::text), 1, 16), now() - make_interval(days => %s), 'null'"
    " FROM generate_series(1, %s) g"
)


def prepare_table(url: str, table: str, fn: Any, tasks: int) -> None:
    """Empty the table, put it in the state ``table`` names, and enqueue ``tasks`` calls."""
    truncate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        if table == "history":
            conn.execute(FINISHED_ROWS, (0, HISTORY_ROWS))
        if table == "pruning":
            conn.execute(FINISHED_ROWS, (30, PRUNED_ROWS))
        if table == "autovacuum":
            conn.execute("ALTER TABLE executions RESET (autovacuum_enabled)")
    enqueue(fn, tasks)
    if table in ("analyzed", "history", "pruning"):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE executions")


def start_pruning(url: str) -> subprocess.Popen[str]:
    """``rhythm prune --older-than 7d`` on ``url`` in its own process, returned once it has
    deleted its first batch (its start-up is not charged to the worker measured)."""
    pruner = subprocess.Popen(
        [sys.executable, "-m", "rhythm_core", "prune", "--older-than", "7d"],
        env={**os.environ, "RHYTHM_DATABASE_URL": url},
        stdout=subprocess.PIPE,
        text=True,
    )
    with psycopg.connect(url, autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT count(*) FROM executions WHERE queue = 'history'").fetchone()
            if row is None or row[0] < PRUNED_ROWS or pruner.poll() is not None:
                return pruner
            time.sleep(0.01)


def tables_rows(
    url: str, tables: list[str], tasks: int, rounds: int
) -> list[tuple[str, float, float, float]]:
    """(table, async tasks/s, sync tasks/s, claim p99) per table state, medians of rounds that
    run every state in turn."""
    rates: dict[tuple[str, str], list[float]] = {}
    claims: dict[str, list[float]] = {table: [] for table in tables}
    for round_no in range(1, rounds + 1):
        for table in tables:
            for kind, fn in (("async", noop_async), ("sync", noop_sync)):
                prepare_table(url, table, fn, tasks)
                pruner = start_pruning(url) if table == "pruning" else None
                elapsed, claim_seconds = asyncio.run(drain(url, fn.queue_name, tasks, 100))
                if pruner is not None:
                    print(f"  rhythm prune: {pruner.communicate(timeout=300)[0].strip()}",
                          file=sys.stderr)
                rates.setdefault((table, kind), []).append(tasks / elapsed)
                claims[table].extend(claim_seconds)
                print(f"table {table} round {round_no} {kind:>5}: {tasks / elapsed:,.0f}/s",
                      file=sys.stderr, flush=True)
    return [
        (table, median(rates[(table, "async")]), median(rates[(table, "sync")]),
         percentile(claims[table], 0.99))
        for table in tables
    ]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--configs", default="50,100,200,200:100",
                        help="comma-separated CONCURRENCY[:CLAIM_BATCH] worker settings to "
                        "compare (claim batch default: the worker's own)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pickup-samples", type=int, default=200)
    parser.add_argument("--tables", default=",".join(TABLES),
                        help="table states to compare at concurrency 100 (fresh first; "
                        "empty to skip)")
    args = parser.parse_args(argv)
    tables = [t.strip() for t in args.tables.split(",") if t.strip()]
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        parser.error(f"unknown --tables {', '.join(unknown)}")
    configs = [
        (int(c), int(b) if b else None)
        for c, _, b in (item.partition(":") for item in args.configs.split(","))
    ]

    print(f"machine: {machine()}")
    rows = []
    with scratch_database() as url:
        rhythm_core.configure(url)
        for concurrency, claim_batch in configs:
            rates: dict[str, list[float]] = {"async": [], "sync": []}
            claims: list[float] = []
            for round_no in range(1, args.rounds + 1):
                for kind, fn in (("async", noop_async), ("sync", noop_sync)):
                    truncate(url)
                    enqueued = enqueue(fn, args.tasks)
                    elapsed, claim_seconds = asyncio.run(
                        drain(url, fn.queue_name, args.tasks, concurrency, claim_batch)
                    )
                    rates[kind].append(args.tasks / elapsed)
                    claims.extend(claim_seconds)
                    print(f"concurrency {concurrency} round {round_no} {kind:>5}: enqueue "
                          f"{args.tasks / enqueued:,.0f}/s, run {args.tasks / elapsed:,.0f}/s",
                          file=sys.stderr, flush=True)
            batch = claim_batch or Worker("x", concurrency=concurrency).claim_batch
            rows.append((concurrency, batch, median(rates["async"]), median(rates["sync"]),
                         percentile(claims, 0.5), percentile(claims, 0.99)))
        isolated = []
        for batch in (1, 10, 100):
            truncate(url)
            seconds = asyncio.run(isolated_claims(url, batch, 300))
            isolated.append((batch, percentile(seconds, 0.5), percentile(seconds, 0.99)))
        truncate(url)
        client.reset()
        pickups = asyncio.run(pickup_latency(url, args.pickup_samples))
        client.reset()
        states = tables_rows(url, tables, args.tasks, args.rounds) if tables else []
        client.reset()

    print(f"\n{args.tasks} no-op tasks, one worker process, medians of {args.rounds} rounds\n")
    print("| concurrency | claim batch | async tasks/s | sync tasks/s | claim p50 under load "
          "| claim p99 under load |")
    print("|---:|---:|---:|---:|---:|---:|")
    for concurrency, batch, rate_async, rate_sync, p50, p99 in rows:
        print(f"| {concurrency} | {batch} | {rate_async:,.0f} | {rate_sync:,.0f} | {ms(p50)} "
              f"| {ms(p99)} |")
    print("\n| claim batch (idle database) | p50 | p99 |")
    print("|---:|---:|---:|")
    for batch, p50, p99 in isolated:
        print(f"| {batch} | {ms(p50)} | {ms(p99)} |")
    claimed = [c for c, _ in pickups]
    completed = [d for _, d in pickups]
    print(f"\nidle worker, {len(pickups)} single tasks (database clock): enqueue to claim "
          f"p50 {ms(percentile(claimed, 0.5))}, p99 {ms(percentile(claimed, 0.99))}; "
          f"enqueue to completed p50 {ms(percentile(completed, 0.5))}, "
          f"p99 {ms(percentile(completed, 0.99))}")
    if states:
        fresh = {table: (a, s) for table, a, s, _ in states}.get("fresh")
        print(f"\n{args.tasks} no-op tasks, concurrency 100, by table state, medians of "
              f"{args.rounds} alternating rounds\n")
        print("| table | async tasks/s | sync tasks/s | ratio to fresh (async, sync) "
              "| claim p99 under load |")
        print("|---|---:|---:|---:|---:|")
        for table, rate_async, rate_sync, p99 in states:
            ratio = (f"{rate_async / fresh[0]:.2f}, {rate_sync / fresh[1]:.2f}"
                     if fresh else "")
            print(f"| {table} | {rate_async:,.0f} | {rate_sync:,.0f} | {ratio} | {ms(p99)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
