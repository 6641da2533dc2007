"""The facade that owns the plugin manager.

The rest of the core talks to plugins only through :class:`Observability`: it loads only the
selected providers (never the whole entry-point group), decides once whether tracing and
metrics are on, and calls each hookimpl in isolation, so a plugin that raises is logged
(rate-limited) and counted but never fails an execution.
"""

from __future__ import annotations

import atexit
import difflib
import logging
import os
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Mapping, MutableMapping
from contextlib import AbstractContextManager
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import pluggy

from ..errors import ConfigError
from ..ids import valid_ids
from ..variables import masked_endpoint
from . import hookspecs
from .config import ObservabilityConfig, resolve
from .context import carrier_problem
from .telemetry import COUNTER, MetricPoint, Span, SpanContext

log = logging.getLogger("rhythm.observability")

GROUP = "rhythm.observability"
# The providers the project ships: their distributions, and where they sit in a checkout.
SHIPPED = {"otel": "rhythm-otel", "datadog": "rhythm-datadog", "xray": "rhythm-xray"}
# The hook names, in the order the spec module defines them.
HOOKS = tuple(
    name for name, value in vars(hookspecs).items() if hasattr(value, f"{hookspecs.PROJECT}_spec")
)
ERRORS_METRIC = "rhythm.observability.errors"
_LOG_EVERY = 60.0
# Seconds a plugin's shutdown may run past what it was given before it is left behind.
_SHUTDOWN_SLACK = 0.2
# Seconds a process that only enqueued gives its plugins at exit: it finished its work, so a
# backend that is down must not hold it for long.
EXIT_FLUSH = 3.0


def installed_providers() -> list[EntryPoint]:
    """The providers installed in this environment, read from metadata without importing."""
    return sorted(entry_points(group=GROUP), key=lambda ep: ep.name)


def install_hint(name: str) -> str:
    """The command that installs provider ``name`` where the user is: from this checkout's
    ``plugins/`` when rhythm-core runs from one, else from the package index."""
    dist = SHIPPED.get(name)
    if dist is None:
        return f"install the package that provides the {name!r} provider"
    source = Path(__file__).resolve().parents[2] / "plugins" / dist
    if (source / "pyproject.toml").is_file():
        try:
            shown = f"./{source.relative_to(Path.cwd())}"
        except ValueError:
            shown = str(source)
        return f"pip install {shown}"
    return f'pip install "rhythm-core[{name}]"'


def load_provider(name: str) -> object:
    """Import one provider by name, or fail naming what is installed and what to install."""
    installed = installed_providers()
    found = [ep for ep in installed if ep.name == name]
    if not found:
        names = [ep.name for ep in installed]
        close = difflib.get_close_matches(name, [*names, *SHIPPED], n=1)
        parts = [
            f"unknown observability provider {name!r} (observability.provider / "
            "RHYTHM_OBSERVABILITY_PROVIDER)"
        ]
        if close and close[0] != name:
            parts.append(f"did you mean {close[0]!r}?")
        parts.append(f"installed providers: {', '.join(names) or 'none'}")
        parts.append(f"to install it: {install_hint(name)}")
        raise ConfigError("; ".join(parts))
    try:
        return found[0].load()
    except Exception as exc:
        raise ConfigError(
            f"observability provider {name!r} ({found[0].value}) failed to import: {exc}"
        ) from exc


def _plugin_name(plugin: object) -> str:
    return str(
        getattr(plugin, "name", None) or getattr(plugin, "__name__", None) or type(plugin).__name__
    )


Call = tuple[str, Callable[..., Any]]
SpanPair = tuple[str, Callable[..., Any] | None, Callable[..., Any] | None]  # plugin, start, end


class Observability:
    """Plugins selected for this process, and the guarded calls into them.

    ``tracing`` and ``metering`` are decided here, once; when both are false nothing was
    imported and the engine never calls in.
    """

    def __init__(self, config: ObservabilityConfig) -> None:
        self.config = config
        self.tracing = self.metering = self.enabled = self.activating = False
        self.errors: Counter[tuple[str, str]] = Counter()
        self._last_logged: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._calls: dict[str, list[Call]] = {hook: [] for hook in HOOKS}
        self._span_pairs: list[SpanPair] = []
        self._reporting_error = False
        self._shut = False
        self._configured = False
        if not config.enabled:
            return
        self.manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)
        for name in config.providers:
            self.manager.register(load_provider(name), name=name)
        for plugin in config.plugins:
            name, n = _plugin_name(plugin), 1
            while self.manager.has_plugin(name):  # two objects of one plugin class
                n += 1
                name = f"{_plugin_name(plugin)}-{n}"
            self.manager.register(plugin, name=name)
        self.manager.check_pending()
        for hook in HOOKS:
            caller: pluggy.HookCaller = getattr(self.manager.hook, hook)
            # pluggy calls the last registered first (tryfirst/trylast placed among them);
            # keep that order, and call each impl on its own so one failing skips no other
            for impl in reversed(caller.get_hookimpls()):
                if impl.hookwrapper or impl.wrapper:
                    raise ConfigError(
                        f"observability plugin {impl.plugin_name!r} implements {hook} as a "
                        "hook wrapper; rhythm calls each plugin's hooks one by one, isolated "
                        "from the others, so wrappers are not supported: use a plain @hookimpl"
                    )
                self._calls[hook].append((impl.plugin_name, self._bind(caller, impl)))
        starts, ends = dict(self._calls["rhythm_span_start"]), dict(self._calls["rhythm_span_end"])
        self._span_pairs = [
            (plugin, starts.get(plugin), ends.get(plugin)) for plugin in {**starts, **ends}
        ]
        self.tracing = config.traces.enabled and bool(self._span_pairs)
        # decided once: when no provider makes spans current in its own context, the worker
        # wraps nothing around user code
        self.activating = self.tracing and bool(self._calls["rhythm_span_activate"])
        self.metering = config.metrics.enabled and bool(self._calls["rhythm_metric_emit"])
        self.enabled = self.tracing or self.metering

    @staticmethod
    def _bind(caller: pluggy.HookCaller, impl: pluggy.HookImpl) -> Callable[..., Any]:
        """Call an impl with positional arguments, passing only the parameters it declares."""
        assert caller.spec is not None  # every rhythm hook has a spec
        spec = list(caller.spec.argnames)
        wanted = list(impl.argnames)
        if wanted == spec:
            return impl.function
        picks = [spec.index(name) for name in wanted]
        function = impl.function
        return lambda *args: function(*(args[i] for i in picks))

    def describe(self) -> str:
        """What is on, for the worker's start-up line (endpoints with secrets masked)."""
        if not self.enabled:
            return "observability off"
        config = self.config
        names = [*config.providers]
        names += [name for name, _ in self.manager.list_name_plugin() if name not in names]
        parts = [f"observability via {', '.join(names)}"]
        traces, metrics = config.traces, config.metrics
        if self.tracing:
            errors = ", failed ones kept" if traces.sample_errors else ""
            parts.append(
                f"traces on (sample rate {traces.sample_rate:g}{errors}"
                f"{_endpoint(traces.endpoint)})"
            )
        else:
            parts.append("traces off")
        if self.metering:
            parts.append(f"metrics on (every {metrics.interval:g}s{_endpoint(metrics.endpoint)})")
        else:
            parts.append("metrics off")
        return "; ".join(parts)

    def declared_variables(self) -> set[str]:
        """``RHYTHM_*`` variables the plugins in use say they read (``environment_variables``)."""
        if not self.enabled:
            return set()
        return {
            name
            for _, plugin in self.manager.list_name_plugin()
            for name in getattr(plugin, "environment_variables", ())
        }

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Observability:
        """Run ``rhythm_observability_configure``, once (children after a fork are configured
        again by the fork hook)."""
        if not self.enabled or self._configured:
            return self
        self._configured = True
        for plugin, configure in self._calls["rhythm_observability_configure"]:
            try:
                configure(self.config)
            except ConfigError:
                raise  # bad settings fail at start, naming the key
            except Exception as exc:
                self._failed(plugin, "rhythm_observability_configure", exc)
        _started(self)
        return self

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        if not self._shut:
            self._call("rhythm_observability_configure", self.config)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Have each plugin send what it holds and stop, within ``timeout`` seconds in all:
        each is given what is left of it, and one that has not returned by then is left
        behind in a daemon thread, with a warning, so that a backend that hangs cannot hold
        the process past its deadline."""
        if not self.enabled or self._shut:
            return
        self._shut = True
        deadline = time.monotonic() + timeout
        for plugin, function in self._calls["rhythm_observability_shutdown"]:
            left = max(round(deadline - time.monotonic(), 3), 0.0)  # to the millisecond
            done = threading.Event()
            threading.Thread(
                target=self._shut_down_one,
                args=(plugin, function, left, done),
                name=f"rhythm-shutdown-{plugin}",
                daemon=True,
            ).start()
            if not done.wait(left + _SHUTDOWN_SLACK):
                log.warning(
                    "rhythm: observability plugin %s did not finish shutting down within "
                    "%.1fs; what it still held is lost",
                    plugin,
                    timeout,
                )

    def _shut_down_one(
        self, plugin: str, function: Callable[..., Any], timeout: float, done: threading.Event
    ) -> None:
        try:
            function(timeout)
        except Exception as exc:
            self._failed(plugin, "rhythm_observability_shutdown", exc)
        finally:
            done.set()

    # -- guarded calls ---------------------------------------------------------------------

    def _call(self, hook: str, *args: Any) -> None:
        for plugin, function in self._calls[hook]:
            try:
                function(*args)
            except Exception as exc:
                self._failed(plugin, hook, exc)

    def span_start(self, span: Span) -> None:
        self._call("rhythm_span_start", span)

    def span_end(self, span: Span) -> None:
        self._call("rhythm_span_end", span)

    def emit_span(self, span: Span) -> None:
        """Start and end a span built after the fact."""
        self.emit_spans([span])

    def emit_spans(self, spans: list[Span]) -> None:
        """Start then end each of several spans built after the fact (one loop per plugin
        rather than two guarded calls per span: this runs for every sampled execution)."""
        for plugin, start, end in self._span_pairs:
            for span in spans:
                if start is not None:
                    try:
                        start(span)
                    except Exception as exc:
                        self._failed(plugin, "rhythm_span_start", exc)
                if end is not None:
                    try:
                        end(span)
                    except Exception as exc:
                        self._failed(plugin, "rhythm_span_end", exc)

    def metric(self, point: MetricPoint) -> None:
        self._call("rhythm_metric_emit", point)

    def inject(self, span: Span | None, carrier: MutableMapping[str, str]) -> None:
        """Let each plugin add fields to ``carrier``. A plugin writes into a copy that is
        merged only when the hook returned and every field is a string: a carrier is stored
        in the row and read by every worker that claims it, so a half-written or ill-typed
        one would be refused at each claim."""
        for plugin, function in self._calls["rhythm_context_inject"]:
            scratch = dict(carrier)
            try:
                function(span, scratch)
            except Exception as exc:
                self._failed(plugin, "rhythm_context_inject", exc)
                continue
            problem = carrier_problem(scratch)
            if problem is not None:
                self._failed(plugin, "rhythm_context_inject", ValueError(problem))
                continue
            carrier.update(scratch)

    def extract(self, carrier: Mapping[str, str]) -> SpanContext | None:
        for plugin, function in self._calls["rhythm_context_extract"]:
            try:
                found = function(carrier)
            except Exception as exc:
                self._failed(plugin, "rhythm_context_extract", exc)
                continue
            if isinstance(found, SpanContext):
                # its ids go into rows and carriers as they are: only well-formed ones do
                if valid_ids(found.trace_id, found.span_id):
                    return found
                self._failed(
                    plugin,
                    "rhythm_context_extract",
                    ValueError(f"returned a SpanContext with malformed ids: {found!r:.200}"),
                )
        return None

    def activated(self, context: SpanContext) -> Activation:
        """A context manager that makes the span ``context`` names current in each backend's
        own context for a ``with`` block (``rhythm_span_activate``)."""
        return Activation(self, context)

    def _failed(self, plugin: str, hook: str, exc: Exception) -> None:
        key = (plugin, hook)
        with self._lock:
            self.errors[key] += 1
            count = self.errors[key]
            now = time.monotonic()
            due = now - self._last_logged.get(key, -_LOG_EVERY) >= _LOG_EVERY
            if due:
                self._last_logged[key] = now
        if due:
            log.warning(
                "rhythm: observability plugin %s raised in %s (%d time(s) so far): %r",
                plugin,
                hook,
                count,
                exc,
                exc_info=count == 1,
            )
        if self.metering and not self._reporting_error:
            self._reporting_error = True  # a failing metric hook must not recurse
            try:
                self.metric(
                    MetricPoint(
                        ERRORS_METRIC,
                        COUNTER,
                        1,
                        "{error}",
                        {"plugin": plugin, "hook": hook},
                        time.time_ns(),
                    )
                )
            finally:
                self._reporting_error = False


class Activation:
    """Enters what each plugin's ``rhythm_span_activate`` returned and exits it in reverse
    order; a plugin that raises, on the way in or out, is counted and skipped, and user
    code's exception always goes on."""

    __slots__ = ("_context", "_entered", "_observability")

    def __init__(self, observability: Observability, context: SpanContext) -> None:
        self._observability = observability
        self._context = context
        self._entered: list[tuple[str, AbstractContextManager[object]]] = []

    def __enter__(self) -> None:
        observability, entered = self._observability, self._entered
        for plugin, function in observability._calls["rhythm_span_activate"]:
            try:
                manager = function(self._context)
                if manager is not None:
                    manager.__enter__()
                    entered.append((plugin, manager))
            except Exception as exc:
                observability._failed(plugin, "rhythm_span_activate", exc)

    def __exit__(self, *exc_info: Any) -> None:
        entered = self._entered
        while entered:
            plugin, manager = entered.pop()
            try:
                manager.__exit__(*exc_info)
            except Exception as exc:
                self._observability._failed(plugin, "rhythm_span_activate", exc)


def _endpoint(endpoint: str | None) -> str:
    return f", to {masked_endpoint(endpoint)}" if endpoint else ""


# Started instances, for the two process-wide hooks registered once (not once per instance):
# reconfigure in a forked child, and flush at interpreter exit.
_live: weakref.WeakSet[Observability] = weakref.WeakSet()
_hooks_registered = False


def _started(observability: Observability) -> None:
    global _hooks_registered
    _live.add(observability)
    if not _hooks_registered:
        _hooks_registered = True
        os.register_at_fork(after_in_child=_after_fork_all)
        atexit.register(_shutdown_all)


def _after_fork_all() -> None:
    for observability in list(_live):
        observability._after_fork()


def _shutdown_all() -> None:
    for observability in list(_live):
        observability.shutdown(EXIT_FLUSH)


DISABLED = Observability(ObservabilityConfig())
_active: Observability | None = None
_active_lock = threading.Lock()


def active() -> Observability:
    """The process's observability: set by :func:`activate`, else read from ``RHYTHM_*`` once."""
    global _active
    current = _active
    if current is not None:
        return current
    with _active_lock:
        if _active is None:
            config = resolve(None)
            _active = Observability(config).start() if config.enabled else DISABLED
        return _active


def activate(observability: Observability) -> None:
    """Make ``observability`` the process's (what ``.queue()`` and the custom API use)."""
    global _active
    _active = observability


def from_block(block: Mapping[str, Any] | Observability | None) -> Observability:
    """Build and start the observability for a block, or reuse the process's."""
    if isinstance(block, Observability):
        return block
    if block is None:
        return active()
    observability = Observability(resolve(block))
    return observability.start()
