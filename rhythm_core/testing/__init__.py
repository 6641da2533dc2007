"""Tools for testing code that uses rhythm-core, and for testing observability plugins.

- :class:`RecordingPlugin`: an observability plugin that keeps every span, metric point,
  carrier and lifecycle call in memory; :func:`made_current` is the span it made current
  where user code runs (``rhythm_span_activate``).
- :func:`from_block`, :func:`activate`, :func:`active`, :data:`DISABLED`: build an
  :class:`Observability` from a configuration block and make it (or none) the process's, as
  a worker or ``rhythm_core.configure`` would; :func:`resolve_config` resolves a block and
  the ``RHYTHM_*`` variables into the configuration a plugin receives; :func:`new_trace_id`
  and :func:`new_span_id` make ids as the engine does, for spans built in a test.
- ``rhythm_core.testing.pytest_plugin``: fixtures (a PostgreSQL database per run, workers in
  threads, a recorder), loaded by pytest automatically once rhythm-core is installed.
- ``rhythm_core.testing.conformance``: the suite a plugin author runs against their plugin
  and a reader of what their backend received.
"""

from ..ids import new_span_id, new_trace_id
from ..observability.config import resolve as resolve_config
from ..observability.manager import DISABLED, Observability, activate, active, from_block
from .recording import RecordingPlugin, made_current

__all__ = [
    "DISABLED",
    "Observability",
    "RecordingPlugin",
    "activate",
    "active",
    "from_block",
    "made_current",
    "new_span_id",
    "new_trace_id",
    "resolve_config",
]
