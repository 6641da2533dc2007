"""``rhythm demo``: an order workflow with parallel and sequential tasks, one of which fails
once and is retried, run by an in-process worker and drawn as a tree."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .current import current_execution
from .functions import task, workflow

QUEUE = "rhythm-demo"


@task(queue=QUEUE, retries=2, retry_backoff=0.2)
def fetch_order(order_id: str) -> dict[str, Any]:
    time.sleep(0.02)
    return {"order_id": order_id, "amount": 42.5, "items": ["book", "lamp", "pen"]}


@task(queue=QUEUE, retries=2)
async def reserve_item(item: str) -> str:
    await asyncio.sleep(0.03)
    return f"reserved {item}"


@task(queue=QUEUE, retries=3, retry_backoff=0.3)
async def charge_card(order_id: str, amount: float) -> dict[str, Any]:
    execution = current_execution()
    if execution is not None and execution.attempt == 1:
        raise ConnectionError("payment gateway timed out (the demo fails this once)")
    await asyncio.sleep(0.04)
    return {"charge_id": f"ch_{order_id}", "amount": amount}


@task(queue=QUEUE)
def send_receipt(order_id: str, charge_id: str) -> str:
    time.sleep(0.01)
    return f"receipt for {order_id} ({charge_id}) sent"


@workflow(queue=QUEUE)
async def process_order(order_id: str) -> dict[str, Any]:
    order = await fetch_order.run(order_id)
    reserved = await asyncio.gather(*(reserve_item.run(item) for item in order["items"]))
    charge = await charge_card.run(order_id, order["amount"])
    receipt = await send_receipt.run(order_id, charge["charge_id"])
    return {"order": order_id, "reserved": reserved, "charge": charge, "receipt": receipt}


def main() -> int:
    from . import client, tree
    from .database import connect, mask, resolve_database_url
    from .observability.custom import trace
    from .observability.manager import activate, from_block
    from .testing.recording import RecordingPlugin
    from .worker import Worker

    url, source = resolve_database_url()
    print(f"database: {mask(url)} ({source})")
    # Traces go to an in-memory recording plugin here; a real deployment selects a backend
    # (RHYTHM_OBSERVABILITY_PROVIDER=otel, datadog, xray) and sees the same spans there.
    recorder = RecordingPlugin()
    observability = from_block(
        {
            "plugins": [recorder],
            "traces": {"enabled": True, "sample_rate": 1.0},
            "metrics": {"enabled": True, "interval": 1},
        }
    )
    activate(observability)
    worker = Worker(
        QUEUE, concurrency=8, poll_interval=0.2, shutdown_timeout=5, observability=observability
    )
    thread = worker.start_in_thread()
    try:
        with trace.span("demo.checkout_request", route="/orders/1001"):
            execution_id = process_order.queue("order-1001")
        print(f"enqueued workflow process_order: {execution_id}")
        result = client.wait(execution_id, timeout=60)
    finally:
        worker.stop()
        # the worker sends its last metric points as it stops: wait for it before reading them
        thread.join(timeout=30)
        observability.shutdown()
    print(f"result: {result}\n")
    with connect(url, source) as conn:
        row = conn.execute(tree.TRACE_OF, (execution_id,)).fetchone()
        trace_id = row[0] if row else ""
        print(f"executions (from PostgreSQL alone; also: rhythm trace {execution_id}):\n")
        print(tree.render(tree.load(conn, execution_id)))
    spans = recorder.in_trace(trace_id)
    print(f"\ntrace {trace_id}: {len(spans)} spans, with the ids the database holds\n")
    print(tree.render_spans(spans))
    completed = recorder.total("rhythm.executions.completed")
    print(f"\nmetrics: {len(recorder.points)} points, rhythm.executions.completed = {completed:g}")
    return 0
