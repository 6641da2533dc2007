"""The lifecycle the bundled backend plugins share, for plugins of your own too.

A backend plugin keeps one backend object per process (exporters, sockets, a send thread),
built from the resolved configuration when the core configures observability and stopped
when it shuts down. Subclass :class:`BackendPlugin`, implement :meth:`~BackendPlugin.build`,
and read ``self.backend`` in your other hooks (None before configuration and after
shutdown: return at once then).

A provider loaded by name is one object per process, shared by every configuration that
selects it: an application that enqueues with observability on and also runs a worker, or
two workers. The latest configuration's backend is the one in use (the one it replaces is
shut down, sending what it held), and the backend stops only when the last configuration
using it shuts down: a worker that stops does not silence the enqueueing side.
"""

from __future__ import annotations

import os
import threading
from typing import Generic, Protocol, TypeVar

from .config import ObservabilityConfig
from .hookspecs import hookimpl


class Backend(Protocol):
    def shutdown(self, timeout: float) -> None:
        """Send what is held and stop, within ``timeout`` seconds."""


B = TypeVar("B", bound=Backend)


class BackendPlugin(Generic[B]):
    """Builds the backend on ``rhythm_observability_configure`` (also in a forked child,
    whose parent's threads did not come along) and stops it on
    ``rhythm_observability_shutdown``."""

    name = "backend"

    replaced_timeout = 5.0  # seconds a replaced backend may take to send what it held

    def __init__(self) -> None:
        self.backend: B | None = None
        self._users = 0  # configurations using the backend, in this process
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def _this_process(self) -> None:
        """In a forked child the parent's backend (its threads did not come along) and its
        count of users stay behind; the core configures the child afresh."""
        pid = os.getpid()
        if pid != self._pid:
            self._pid, self._users, self.backend = pid, 0, None

    def build(self, config: ObservabilityConfig) -> B:
        """The backend for this configuration; raise :class:`~rhythm_core.ConfigError`
        naming the key for a bad setting."""
        raise NotImplementedError

    @hookimpl
    def rhythm_observability_configure(self, config: ObservabilityConfig) -> None:
        backend = self.build(config)
        with self._lock:
            self._this_process()
            replaced, self.backend = self.backend, backend
            self._users += 1
        if replaced is not None:
            replaced.shutdown(self.replaced_timeout)

    @hookimpl
    def rhythm_observability_shutdown(self, timeout: float) -> None:
        with self._lock:
            self._this_process()
            self._users = max(self._users - 1, 0)
            if self._users:
                return  # another configuration still sends through it
            backend, self.backend = self.backend, None
        if backend is not None:
            backend.shutdown(timeout)
