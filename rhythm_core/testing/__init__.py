"""Tools for testing code that uses rhythm-core, and for testing observability plugins.

- :class:`RecordingPlugin`: an observability plugin that keeps every span, metric point,
  carrier and lifecycle call in memory.
- ``rhythm_core.testing.pytest_plugin``: fixtures (a PostgreSQL database per run, workers in
  threads, a recorder), loaded by pytest automatically once rhythm-core is installed.
- ``rhythm_core.testing.conformance``: the suite a plugin author runs against their plugin
  and a reader of what their backend received.
"""

from .recording import RecordingPlugin

__all__ = ["RecordingPlugin"]
