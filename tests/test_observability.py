"""Sampling, zero cost when off, isolation of failing plugins, and configuration errors."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from typing import Any

import pluggy
import pytest

import rhythm_core
from rhythm_core import ConfigError, ExecutionFailed, Worker, hookimpl, trace
from rhythm_core.observability.config import resolve
from rhythm_core.observability.manager import ERRORS_METRIC, HOOKS, Observability
from rhythm_core.testing import RecordingPlugin

from .apps import traced, workflows
from .conftest import ROOT


def tracing(recorder: Any, **traces: Any) -> dict[str, Any]:
    return {"plugins": [recorder], "traces": {"enabled": True, **traces},
            "metrics": {"enabled": True}}


def run_ok_and_failing(start_worker, observe, block) -> tuple[str, str]:
    observe(block)
    start_worker("traced", observability=block)
    ok, bad = traced.plain.queue(1), traced.always_fails.queue(2)
    assert rhythm_core.wait(ok, timeout=10) == 10
    with pytest.raises(ExecutionFailed):
        rhythm_core.wait(bad, timeout=10)
    recorder = block["plugins"][0]
    recorder.wait_for(lambda r: r.total("rhythm.executions.completed") == 2)
    return ok, bad


def test_unsampled_traces_emit_only_failing_executions(start_worker, observe, db) -> None:
    recorder = RecordingPlugin()
    _, bad = run_ok_and_failing(start_worker, observe,
                                 tracing(recorder, sample_rate=0, sample_errors=True))
    (bad_trace,) = db.execute("SELECT trace_id FROM executions WHERE id = %s", (bad,)).fetchone()
    assert recorder.spans, "the failing execution's spans must be emitted"
    assert {s.trace_id for s in recorder.spans} == {bad_trace}
    assert all(s.kept_for_error and not s.sampled for s in recorder.spans)
    assert all(s.attributes.get("rhythm.sampling.kept_for_error") for s in recorder.spans
               if s.name != "plain.inner")
    execution = next(s for s in recorder.spans if s.name == f"task.{traced.always_fails.name}")
    assert execution.status == "error" and execution.error_type == "ValueError"
    invoke = next(s for s in recorder.spans if s.name == "function.invoke")
    assert invoke.error_message == "failing 2"
    # metrics are not sampled
    assert recorder.total("rhythm.executions.completed", status="success") == 1
    assert recorder.total("rhythm.executions.completed", status="failed") == 1


def test_failures_outside_the_function_mark_the_execution_span(start_worker, db) -> None:
    recorder = RecordingPlugin()
    bogus = str(uuid.uuid4())
    db.execute("INSERT INTO executions (id, type, function_name, queue, trace_id, span_id) "
               "VALUES (%s, 'task', 'nowhere.missing', 'traced', %s, %s)",
               (bogus, "6b083b5f247c0ef3db2c7cdc2208eb09", "00f067aa0ba902b7"))
    start_worker("traced", observability=tracing(recorder, sample_rate=1))
    unserialisable = traced.returns_object.queue()
    for execution_id in (bogus, unserialisable):
        with pytest.raises(ExecutionFailed):
            rhythm_core.wait(execution_id, timeout=10)
    recorder.wait_for(lambda r: r.total("rhythm.executions.completed", status="failed") == 2)
    missing = next(s for s in recorder.spans if s.name == "task.nowhere.missing")
    assert (missing.status, missing.error_type) == ("error", "UnknownFunction")
    assert missing.span_id == "00f067aa0ba902b7"
    result = next(s for s in recorder.spans if s.name == f"task.{traced.returns_object.name}")
    assert (result.status, result.error_type) == ("error", "SerializationError")
    invoke = next(s for s in recorder.spans if s.name == "function.invoke"
                  and s.parent_span_id == result.span_id)
    assert invoke.status == "ok"  # the function itself returned; storing its result failed


def test_an_unsampled_failing_attempt_keeps_what_it_did(start_worker, observe, db) -> None:
    recorder = RecordingPlugin()
    block = tracing(recorder, sample_rate=0, sample_errors=True)
    observe(block)
    start_worker("traced", observability=block)
    failing = traced.enqueues_then_fails.queue()
    with pytest.raises(ExecutionFailed):
        rhythm_core.wait(failing, timeout=10)
    recorder.wait_for(lambda r: r.named(f"task.{traced.enqueues_then_fails.name}"))
    (trace_id,) = db.execute("SELECT trace_id FROM executions WHERE id = %s",
                             (failing,)).fetchone()
    spans = {s.name: s for s in recorder.in_trace(trace_id)}
    invoke, inner, create = spans["function.invoke"], spans["inner"], spans["db.create_execution"]
    assert invoke.status == "error" and invoke.kept_for_error
    assert inner.parent_span_id == invoke.span_id
    assert create.parent_span_id == inner.span_id
    child = db.execute("SELECT trace_id, trace_context->>'traceparent' FROM executions "
                       "WHERE function_name = %s", (traced.plain.name,)).fetchone()
    assert child == (trace_id, f"00-{trace_id}-{create.span_id}-00")


def test_unsampled_traces_without_sample_errors_emit_nothing(start_worker, observe) -> None:
    recorder = RecordingPlugin()
    run_ok_and_failing(start_worker, observe,
                       tracing(recorder, sample_rate=0, sample_errors=False))
    assert recorder.spans == []
    assert recorder.total("rhythm.executions.completed") == 2


def test_sampled_trace_keeps_everything(start_worker, observe, db) -> None:
    recorder = RecordingPlugin()
    ok, _ = run_ok_and_failing(start_worker, observe, tracing(recorder, sample_rate=1))
    (ok_trace,) = db.execute("SELECT trace_id FROM executions WHERE id = %s", (ok,)).fetchone()
    names = sorted(s.name for s in recorder.in_trace(ok_trace))
    # serialization spans only for payloads of 1 KiB or more (see test_large_payloads...)
    assert names == sorted(["db.create_execution", "db.claim_execution",
                            "function.invoke", "plain.inner",
                            "db.report_result", f"task.{traced.plain.name}"])
    assert not any(s.kept_for_error for s in recorder.spans)
    # spans carry the core's times: start never after end, execution span from created_at
    for span in recorder.spans:
        assert span.end_ns is not None and span.start_ns <= span.end_ns


def test_large_payloads_get_serialization_spans(start_worker, observe, db) -> None:
    recorder = RecordingPlugin()
    block = tracing(recorder, sample_rate=1)
    observe(block)
    start_worker("traced", observability=block)
    execution_id = traced.echo.queue("x" * 5000)
    assert rhythm_core.wait(execution_id, timeout=10) == "x" * 5000
    recorder.wait_for(lambda r: r.named(f"task.{traced.echo.name}"))
    spans = {s.attributes["direction"]: s for s in recorder.named("serialization")}
    assert set(spans) == {"serialize", "deserialize"}
    assert spans["serialize"].attributes["payload_size"] == 5002
    (execution,) = recorder.named(f"task.{traced.echo.name}")
    assert {s.parent_span_id for s in spans.values()} == {execution.span_id}
    # and the metric saw every serialization, large or small
    seen = recorder.wait_for(lambda r: sum(
        len(p.each()) for p in r.metric("rhythm.serialization.duration")) >= 2)
    assert seen


def test_workflow_children_inherit_the_sampling_decision(start_worker, observe, db) -> None:
    recorder = RecordingPlugin()
    block = tracing(recorder, sample_rate=0.5)
    observe(block)
    start_worker(["wf", "wf-tasks"], observability=block)
    ids = [workflows.pipeline.queue(i) for i in range(10)]
    for execution_id in ids:
        rhythm_core.wait(execution_id, timeout=20)
    recorder.wait_for(lambda r: r.total("rhythm.executions.completed") >= 50)
    traces = db.execute(
        "SELECT trace_id, trace_context->>'traceparent' FROM executions").fetchall()
    by_trace: dict[str, set[str]] = {}
    for trace_id, traceparent in traces:
        by_trace.setdefault(trace_id, set()).add(traceparent[-2:])
    assert all(len(flags) == 1 for flags in by_trace.values())  # one decision per trace
    kept = {t for t, flags in by_trace.items() if flags == {"01"}}
    assert {s.trace_id for s in recorder.spans} == kept


def test_rows_enqueued_with_tracing_off_are_sampled_at_the_rate(start_worker, observe,
                                                                 db) -> None:
    """The claiming worker is such a row's root: it decides once, at the configured rate."""
    ids = traced.plain.queue_many([(i,) for i in range(400)])  # no tracing here: no carrier
    assert db.execute("SELECT count(*) FROM executions WHERE trace_context IS NULL"
                      ).fetchone()[0] == 400
    recorder = RecordingPlugin()
    block = tracing(recorder, sample_rate=0.5, sample_errors=False)
    observe(block)
    start_worker("traced", observability=block)
    for execution_id in ids:
        rhythm_core.wait(execution_id, timeout=20)
    recorder.wait_for(lambda r: r.total("rhythm.executions.completed") == 400)
    kept = {s.trace_id for s in recorder.spans if s.name == f"task.{traced.plain.name}"}
    # binomial(400, 0.5): 200 +- 25 is five standard deviations; rate squared would be ~100
    assert 150 <= len(kept) <= 250, len(kept)


# -- zero cost when off ----------------------------------------------------------------------


def test_off_worker_process_imports_no_backend(spawn_worker) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RHYTHM_TRAC")}
    env.update(RHYTHM_TRACING_ENABLED="false", RHYTHM_METRICS_ENABLED="false",
               RHYTHM_OBSERVABILITY_PROVIDER="jsonl")
    spawn_worker("tests.apps.traced", "traced", env=env)
    execution_id = traced.loaded_modules.queue()
    assert rhythm_core.wait(execution_id, timeout=15) == []


def test_off_calls_no_hook(start_worker, monkeypatch) -> None:
    calls: list[str] = []
    original_call = pluggy.HookCaller.__call__

    def spy_hook(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(self.name)
        return original_call(self, *args, **kwargs)

    def spy_dispatch(name: str) -> Any:
        original = getattr(Observability, name)

        def spied(self: Any, *args: Any) -> Any:
            calls.append(name)
            return original(self, *args)

        return spied

    monkeypatch.setattr(pluggy.HookCaller, "__call__", spy_hook)
    for name in ("_call", "extract", "emit_span", "span_start", "span_end", "metric", "inject",
                 "activated"):
        monkeypatch.setattr(Observability, name, spy_dispatch(name))
    off = {"traces": {"enabled": False}, "metrics": {"enabled": False}}
    worker = start_worker(["traced", "wf", "wf-tasks"], observability=off)
    assert worker._instruments is None
    with trace.span("outside") as span:
        assert span is None
        ids = [traced.plain.queue(3), workflows.pipeline.queue(2)]
    for execution_id in ids:
        rhythm_core.wait(execution_id, timeout=20)
    with pytest.raises(ExecutionFailed):
        rhythm_core.wait(traced.always_fails.queue(1), timeout=10)
    assert calls == []


# -- isolation of failing plugins ------------------------------------------------------------


class RaisingPlugin:
    """Raises in every hook."""

    name = "raising"

    @hookimpl
    def rhythm_observability_configure(self, config: Any) -> None:
        raise RuntimeError("configure broke")

    @hookimpl
    def rhythm_span_start(self, span: Any) -> None:
        raise RuntimeError("span_start broke")

    @hookimpl
    def rhythm_span_end(self, span: Any) -> None:
        raise RuntimeError("span_end broke")

    @hookimpl
    def rhythm_metric_emit(self, point: Any) -> None:
        raise RuntimeError("metric_emit broke")

    @hookimpl
    def rhythm_context_inject(self, span: Any, carrier: Any) -> None:
        carrier["x-raising"] = "1"  # half-written, then it raises: never stored
        raise RuntimeError("inject broke")

    @hookimpl
    def rhythm_context_extract(self, carrier: Any) -> None:
        raise RuntimeError("extract broke")

    @hookimpl
    def rhythm_observability_shutdown(self, timeout: float) -> None:
        raise RuntimeError("shutdown broke")

    @hookimpl
    def rhythm_span_activate(self, context: Any) -> None:
        raise RuntimeError("activate broke")


class TaggingPlugin:
    """Adds a field to every carrier, so that extract is asked too."""

    name = "tagging"

    @hookimpl
    def rhythm_context_inject(self, span: Any, carrier: Any) -> None:
        carrier["x-tag"] = "1"


def test_a_plugin_raising_in_every_hook_fails_nothing(start_worker, caplog, db) -> None:
    recorder = RecordingPlugin()
    block = {"plugins": [RaisingPlugin(), TaggingPlugin(), recorder],
             "traces": {"enabled": True, "sample_rate": 1}, "metrics": {"enabled": True}}
    caplog.set_level(logging.WARNING, logger="rhythm.observability")
    worker = start_worker(["traced", "wf", "wf-tasks"], observability=block)
    ids = [traced.plain.queue(1), workflows.pipeline.queue(1)]
    assert rhythm_core.wait(ids[0], timeout=10) == 10
    assert rhythm_core.wait(ids[1], timeout=20)["d"] == 20
    worker.stop()
    for _ in range(100):
        if recorder.shutdowns:
            break
        import time

        time.sleep(0.05)
    errors = worker._obs.errors
    for hook in HOOKS:
        assert errors[("raising", hook)] >= 1, hook
    assert not any(plugin in ("recording", "tagging") for plugin, _ in errors)
    carriers = [c for (c,) in db.execute("SELECT trace_context FROM executions")]
    assert carriers and all(c["x-tag"] == "1" and "x-raising" not in c for c in carriers)
    counted = {(p.attributes["plugin"], p.attributes["hook"])
               for p in recorder.metric(ERRORS_METRIC)}
    assert ("raising", "rhythm_span_end") in counted
    # the other plugin got everything
    assert recorder.named(f"workflow.{workflows.pipeline.name}")
    # logged, but not once per call
    logged = [r for r in caplog.records if "raised in rhythm_span_end" in r.getMessage()]
    assert 1 <= len(logged) < errors[("raising", "rhythm_span_end")]


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "env", "named"),
    [
        ({"trace": {}}, {}, "unknown key observability.trace"),
        ({"traces": {"sample_rat": 1}}, {}, "unknown key observability.traces.sample_rat"),
        ({"traces": {"sample_rate": 1.5}}, {}, "observability.traces.sample_rate"),
        ({}, {"RHYTHM_TRACES_SAMPLE_RATE": "1.5"}, "RHYTHM_TRACES_SAMPLE_RATE"),
        ({}, {"RHYTHM_TRACES_SAMPLE_RATE": "often"}, "RHYTHM_TRACES_SAMPLE_RATE"),
        ({"metrics": {"interval": 0}}, {}, "observability.metrics.interval"),
        ({}, {"RHYTHM_METRICS_INTERVAL": "0"}, "RHYTHM_METRICS_INTERVAL"),
        ({}, {"RHYTHM_OBSERVABILITY_TAGS": "env:prod,oops"}, "RHYTHM_OBSERVABILITY_TAGS"),
        ({}, {"RHYTHM_TRACING_ENABLED": "maybe"}, "RHYTHM_TRACING_ENABLED"),
        ({"tags": ["a"]}, {}, "observability.tags"),
        ({"traces": {"endpoint": ""}}, {}, "observability.traces.endpoint"),
    ],
)
def test_bad_configuration_names_the_key(block, env, named) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        resolve(block, env)


def test_precedence_block_over_environment_over_defaults() -> None:
    env = {"RHYTHM_TRACES_SAMPLE_RATE": "0.5", "RHYTHM_SERVICE_NAME": "from-env",
           "RHYTHM_OBSERVABILITY_TAGS": "env:prod, version:1.2.3"}
    config = resolve({"traces": {"sample_rate": 0.25}}, env)
    assert config.traces.sample_rate == 0.25
    assert config.service_name == "from-env"
    assert dict(config.tags) == {"env": "prod", "version": "1.2.3"}
    assert config.traces.enabled is False and config.traces.sample_errors is True
    assert config.providers == ("otel",)
    defaults = resolve(None, {})
    assert defaults.traces.sample_rate == 0.1 and defaults.metrics.interval == 10.0
    assert resolve(None, {"RHYTHM_TRACING_SERVICE_NAME": "ref"}).service_name == "ref"


def test_unknown_provider_fails_at_start_listing_installed_ones() -> None:
    from importlib.metadata import entry_points

    from rhythm_core.observability.manager import SHIPPED

    installed = sorted(e.name for e in entry_points(group="rhythm.observability"))
    # a provider the product ships but this environment lacks (tox's core env has none of
    # them), else a name nobody ships
    missing = [name for name in SHIPPED if name not in installed]
    name = missing[0] if missing else "honeycomb"
    with pytest.raises(ConfigError) as raised:
        Worker("x", observability={"provider": name, "traces": {"enabled": True}})
    message = str(raised.value)
    assert f"unknown observability provider {name!r}" in message
    assert f"installed providers: {', '.join(installed) or 'none'}" in message
    if name in SHIPPED:  # from this checkout, the plugin's own directory, ready to paste
        assert f"to install it: pip install ./plugins/{SHIPPED[name]}" in message
        assert "'" not in message.split("to install it:")[1]
    else:
        assert "install the package that provides the 'honeycomb' provider" in message


def test_a_misspelt_provider_gets_a_did_you_mean() -> None:
    with pytest.raises(ConfigError) as raised:
        Worker("x", observability={"provider": "otle", "traces": {"enabled": True}})
    assert "did you mean 'otel'?" in str(raised.value)


def test_install_hint_outside_a_checkout_names_the_extra(monkeypatch, tmp_path) -> None:
    from rhythm_core.observability import manager

    # rhythm-core installed from an index: no plugins/ directory beside the package
    monkeypatch.setattr(manager, "__file__", str(tmp_path / "rhythm_core" / "observability"
                                                 / "manager.py"))
    assert manager.install_hint("datadog") == 'pip install "rhythm-core[datadog]"'


class _OldStyleWrapper:
    name = "wrapping"

    @hookimpl(hookwrapper=True)
    def rhythm_span_end(self, span: Any) -> Any:
        yield


class _NewStyleWrapper:
    name = "new-wrapping"

    @hookimpl(wrapper=True)
    def rhythm_metric_emit(self, point: Any) -> Any:
        return (yield)


@pytest.mark.parametrize(("plugin", "hook"), [(_OldStyleWrapper(), "rhythm_span_end"),
                                              (_NewStyleWrapper(), "rhythm_metric_emit")])
def test_a_wrapper_impl_is_refused_at_start_naming_the_plugin(plugin, hook) -> None:
    # the facade calls each impl on its own: a wrapper would silently never run
    block = {"plugins": [plugin], "traces": {"enabled": True}, "metrics": {"enabled": True}}
    with pytest.raises(ConfigError) as raised:
        Worker("x", observability=block)
    assert f"observability plugin {plugin.name!r} implements {hook} as a hook wrapper" in str(
        raised.value)


def test_hook_names_are_the_spec_modules() -> None:
    from rhythm_core.observability import hookspecs

    specs = sorted(name for name in dir(hookspecs) if name.startswith("rhythm_"))
    assert sorted(HOOKS) == specs and len(HOOKS) == 8


def test_cli_worker_with_bad_observability_env_is_one_line() -> None:
    env = {**os.environ, "RHYTHM_TRACES_SAMPLE_RATE": "1.5", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "rhythm_core", "worker", "-m", "tests.apps.traced"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "rhythm: error: RHYTHM_TRACES_SAMPLE_RATE must be a number from 0 to 1, got '1.5'"
    )


def test_plugins_command_lists_without_importing() -> None:
    code = ("import sys; from rhythm_core.cli import main; main(['plugins']);"
            "print('imported' if 'rhythm_jsonl' in sys.modules else 'not imported')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    rows = [line.split()[:2] for line in done.stdout.splitlines()]
    assert ["jsonl", "rhythm_jsonl:plugin"] in rows
    assert done.stdout.splitlines()[-1] == "not imported"


@pytest.mark.parametrize("sample_rate", [1.0, 0.0])
def test_an_execution_enqueued_by_an_attempt_joins_its_trace(start_worker, observe, db,
                                                             sample_rate) -> None:
    """Sampled, the child's creation hangs under the attempt's span; unsampled (the attempt's
    context left unread), the child still joins the trace, unsampled too."""
    recorder = RecordingPlugin()
    block = tracing(recorder, sample_rate=sample_rate, sample_errors=True)
    observe(block)
    start_worker("traced", observability=block)
    parent = traced.enqueues.queue(7)
    child = rhythm_core.wait(parent, timeout=10)
    assert rhythm_core.wait(child, timeout=10) == 70
    rows = dict((r[0], r[1:]) for r in db.execute(
        "SELECT id::text, trace_id, trace_context->>'traceparent' FROM executions "
        "WHERE id = ANY(%s::uuid[])", ([parent, child],)).fetchall())
    trace_id = rows[parent][0]
    assert rows[child][0] == trace_id
    assert rows[child][1].endswith("-01" if sample_rate else "-00")
    if sample_rate:
        recorder.wait_for(lambda r: r.named(f"task.{traced.plain.name}"))
        spans = recorder.in_trace(trace_id)
        [invoke] = [s for s in spans if s.name == "function.invoke"
                    and s.attributes["rhythm.execution_id"] == parent]
        [create] = [s for s in spans if s.name == "db.create_execution"
                    and s.parent_span_id == invoke.span_id]
        assert rows[child][1] == f"00-{trace_id}-{create.span_id}-01"
    else:
        assert recorder.spans == []


# -- the application's values in custom spans ---------------------------------------------


class _Unreadable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no text here")


def test_custom_span_values_are_made_sendable_and_keep_the_blocks_exception(observe) -> None:
    """Names, keys and values no provider can carry (NaN, integers past 64 bits, objects, a
    lone surrogate, NUL) arrive as text; one whose ``__str__`` raises costs neither the span
    nor the exception the block raised."""
    recorder = RecordingPlugin()
    observe(tracing(recorder, sample_rate=1))
    unreadable = _Unreadable()
    values = {"nan": float("nan"), "big": 2**64, "small": -(2**63), "ok": 1.5, "flag": True,
              "text": "nul\x00", "thing": unreadable}
    with pytest.raises(_Unreadable) as raised, trace.span("odd\ud800name", **values) as span:
        assert span is not None
        span.attributes[("tuple", "key")] = float("-inf")
        raise unreadable
    assert raised.value is unreadable
    (got,) = [s for s in recorder.spans if s.span_id == span.span_id]
    assert got.name == "odd\\ud800name"
    attributes = dict(got.attributes)
    assert attributes.pop("error.type") == "_Unreadable"
    thing = attributes.pop("thing")
    assert thing.startswith("<_Unreadable could not be read as text: RuntimeError(")
    assert attributes == {"nan": "nan", "big": str(2**64), "small": -(2**63), "ok": 1.5,
                          "flag": True, "text": "nul\\x00", "('tuple', 'key')": "-inf"}
    assert got.error_message == thing and "_Unreadable" in (got.error_stack or "")
