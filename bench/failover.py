"""How long executions of a SIGKILLed worker wait before another worker takes them.

    python -m bench.failover [--kills 10]

Two ``rhythm worker`` processes serve one long task. Each round SIGKILLs the worker that runs
it and times, on the database's clock, from the kill to the task's next claim by the other;
a replacement is started, and the next kill waits until the judging worker's session is old
enough for its liveness locks to be trusted (docs/architecture.md). The heartbeat deadline is
set to a minute, so only the liveness lock can tell in time.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

import rhythm_core

from .common import machine, median, scratch_database
from .noop_tasks import hold

ROOT = Path(__file__).resolve().parent.parent
TRUST_AFTER = 10.5  # two reconnect backoffs, and a little


def spawn(url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "RHYTHM_DATABASE_URL": url,
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-m", "rhythm_core", "worker", "-m", "bench.noop_tasks",
         "-q", "bench-hold", "--dead-after", "60", "--poll-interval", "1"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def holder(conn: psycopg.Connection, execution_id: str) -> tuple[str | None, float]:
    row = conn.execute(
        "SELECT worker_id, extract(epoch FROM claimed_at) FROM executions "
        "WHERE id = %s AND status = 'running'", (execution_id,)
    ).fetchone()
    return (row[0], float(row[1])) if row else (None, 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    options = parser.parse_args()
    took: list[float] = []
    with scratch_database() as url, psycopg.connect(url, autocommit=True) as conn:
        rhythm_core.configure(database_url=url)
        workers = [spawn(url), spawn(url)]
        try:
            time.sleep(TRUST_AFTER)
            execution_id = hold.queue()
            for _ in range(options.kills):
                while (found := holder(conn, execution_id))[0] is None:
                    time.sleep(0.05)
                worker_id, _claimed = found
                (victim,) = [w for w in workers if f"-{w.pid}-" in worker_id]
                clock = conn.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()
                killed = float(clock[0])  # type: ignore[index]
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                while (found := holder(conn, execution_id))[0] in (None, worker_id):
                    time.sleep(0.02)
                took.append(found[1] - killed)
                workers.remove(victim)
                workers.append(spawn(url))
                time.sleep(TRUST_AFTER)  # the replacement judges the next kill
        finally:
            for worker in workers:
                worker.kill()
                worker.wait()
    print(machine())
    print(f"failover after SIGKILL, {len(took)} kills (seconds, kill to next claim):")
    print(f"  median {median(took):.2f}  max {max(took):.2f}  all "
          + " ".join(f"{t:.2f}" for t in took))


if __name__ == "__main__":
    main()
