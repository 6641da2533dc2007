"""The traced workflow scenario: three tasks, one failing once, one held so that its worker
can be killed mid-task."""

from __future__ import annotations

from rhythm_core import current_execution, metrics, task, trace, workflow

from .basic import hold_until


@task(queue="traced", retries=0)
async def plain(x: int) -> int:
    with trace.span("plain.inner", x=x):
        metrics.increment("test.plain.calls", tags={"kind": "plain"})
    return x * 10


@task(queue="traced", retries=2, retry_backoff=0.1)
def flaky_once(x: int) -> int:
    execution = current_execution()
    assert execution is not None
    if execution.attempt == 1:
        raise RuntimeError("first attempt fails on purpose")
    return x * 100


@task(queue="traced", retries=0)
def always_fails(x: int) -> None:
    raise ValueError(f"failing {x}")


@workflow(queue="traced-wf")
async def three_tasks(marker: str) -> list[object]:
    with trace.span("workflow.body"):  # suppressed while replaying recorded steps
        pass
    first = await plain.run(1)
    second = await flaky_once.run(2)
    third = await hold_until.run(marker)
    return [first, second, third]


@task(queue="traced", retries=0)
def loaded_modules() -> list[str]:
    """Which observability backends (or plugins) this worker process has imported."""
    import sys

    watched = ("opentelemetry", "ddtrace", "aws_xray_sdk", "rhythm_jsonl", "rhythm_otel",
               "rhythm_datadog", "rhythm_xray", "rhythm_core.testing")
    return [name for name in watched if name in sys.modules]


@task(queue="traced", retries=0)
def echo(value: str) -> str:
    return value


@task(queue="traced", retries=0)
def returns_object() -> object:
    return object()


@task(queue="traced", retries=0)
def enqueues_then_fails() -> None:
    with trace.span("inner"):
        plain.queue(1)
    raise RuntimeError("after enqueueing")


@task(queue="traced", retries=0)
def enqueues(x: int) -> str:
    """Enqueues straight from the attempt, outside any span of its own."""
    return plain.queue(x)


@task(queue="traced", retries=0)
async def sees_async() -> dict[str, object]:
    """What user code sees as current in the backends' contexts, in an async task."""
    return _seen()


@task(queue="traced", retries=0)
def sees_sync() -> dict[str, object]:
    """The same in a sync task (a pool thread)."""
    return _seen()


def _seen() -> dict[str, object]:
    from rhythm_core.testing import made_current

    outer = made_current()
    with trace.span("sees.inner") as span:
        inner = made_current()
    after = made_current()
    return {
        "outer": None if outer is None else [outer.trace_id, outer.span_id, outer.sampled],
        "inner": None if inner is None else [inner.trace_id, inner.span_id, inner.sampled],
        "inner_span": None if span is None else span.span_id,
        "after": None if after is None else after.span_id,
    }
