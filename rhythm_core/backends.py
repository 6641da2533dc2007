"""The lifecycle the bundled backend plugins share, for plugins of your own too.

A backend plugin keeps one backend object per process (exporters, sockets, a send thread),
built from the resolved configuration when the core configures observability and stopped
when it shuts down. Subclass :class:`BackendPlugin`, implement :meth:`~BackendPlugin.build`,
and read ``self.backend`` in your other hooks (None before configuration and after
shutdown: return at once then).
"""

from __future__ import annotations

import threading
from typing import Generic, Protocol, TypeVar

from .hookspecs import hookimpl
from .obsconfig import ObservabilityConfig


class Backend(Protocol):
    def shutdown(self, timeout: float) -> None:
        """Send what is held and stop, within ``timeout`` seconds."""


B = TypeVar("B", bound=Backend)


class BackendPlugin(Generic[B]):
    """Builds the backend on ``rhythm_observability_configure`` (also in a forked child,
    whose parent's threads did not come along) and stops it on
    ``rhythm_observability_shutdown``."""

    name = "backend"

    def __init__(self) -> None:
        self.backend: B | None = None
        self._lock = threading.Lock()

    def build(self, config: ObservabilityConfig) -> B:
        """The backend for this configuration; raise :class:`~rhythm_core.ConfigError`
        naming the key for a bad setting."""
        raise NotImplementedError

    @hookimpl
    def rhythm_observability_configure(self, config: ObservabilityConfig) -> None:
        backend = self.build(config)
        with self._lock:
            self.backend = backend

    @hookimpl
    def rhythm_observability_shutdown(self, timeout: float) -> None:
        with self._lock:
            backend, self.backend = self.backend, None
        if backend is not None:
            backend.shutdown(timeout)
