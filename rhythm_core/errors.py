"""Exceptions raised by rhythm-core. Every one names the input that caused it."""

from __future__ import annotations

from typing import Any


class RhythmError(Exception):
    """Base class of every error rhythm-core raises on purpose."""


class ConfigError(RhythmError, ValueError):
    """A configuration value is missing or invalid; the message names the key."""


class DatabaseUnavailable(RhythmError):
    """The database named by the configuration cannot be reached."""


class SerializationError(RhythmError, TypeError):
    """A value cannot be stored as JSON (arguments at enqueue, or a result)."""


class NotInWorkflow(RhythmError):
    """``.run()`` was called outside a running workflow."""


class ReplayDivergence(RhythmError):
    """A workflow's replay called a different step than its recorded history."""


class UnknownFunction(RhythmError):
    """A claimed execution names a function this worker has not registered."""


class ExecutionNotFound(RhythmError, LookupError):
    """No execution has the given id."""


class ExecutionFailed(RhythmError):
    """An execution ended as ``failed`` or ``cancelled``.

    Raised by ``await child.run()`` inside a workflow when the child's last attempt failed, and
    by :func:`rhythm_core.wait`. ``error_type`` and ``error_message`` come from the exception
    the function raised.
    """

    def __init__(
        self,
        execution_id: str,
        function_name: str,
        status: str,
        error: dict[str, Any] | None,
    ) -> None:
        self.execution_id = execution_id
        self.function_name = function_name
        self.status = status
        self.error = error or {}
        self.error_type: str = self.error.get("type", "")
        self.error_message: str = self.error.get("message", "")
        detail = f"{self.error_type}: {self.error_message}" if self.error_type else status
        super().__init__(f"{function_name} ({execution_id}) {status}: {detail}")


class ExecutionTimeout(RhythmError, TimeoutError):
    """An attempt ran longer than its task's ``timeout``."""


class AttemptAborted(RhythmError):
    """User code raised a :class:`BaseException` that is not an :class:`Exception`
    (``SystemExit``, ``KeyboardInterrupt``, ``GeneratorExit`` or a class of its own).

    Such an exception would end the worker, abandoning every execution it holds; instead it
    fails the attempt that raised it, under the original's type name (retried as usual).
    """

    def __init__(self, original: BaseException) -> None:
        self.original = original
        try:
            detail = str(original)
        except Exception:  # a user's __str__ may raise
            detail = "?"
        super().__init__(
            f"{type(original).__name__}({detail}) raised by the function; it fails this "
            "attempt rather than stopping the worker"
        )
