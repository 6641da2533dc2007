"""rhythm-core: durable tasks and replay-based workflows on PostgreSQL.

from rhythm_core import task, workflow, Worker

@task(queue="default", retries=3, timeout=300)
def send_email(to: str) -> None: ...

@workflow
async def onboard(user: str) -> str:
    await send_email.run(user)
    return "done"

execution_id = onboard.queue("ada@example.com")
"""

from .client import cancel, get_execution, get_execution_async, wait, wait_async
from .current import CurrentExecution, current_execution
from .database import configure
from .errors import (
    ConfigError,
    DatabaseUnavailable,
    ExecutionFailed,
    ExecutionNotFound,
    ExecutionTimeout,
    NotInWorkflow,
    ReplayDivergence,
    RhythmError,
    SerializationError,
    UnknownFunction,
)
from .functions import Task, Workflow, task, workflow
from .observability.config import ObservabilityConfig
from .observability.custom import metrics, trace
from .observability.hookspecs import hookimpl
from .replay import is_replaying
from .store import Execution
from .worker import Worker

__all__ = [
    "ConfigError",
    "CurrentExecution",
    "DatabaseUnavailable",
    "Execution",
    "ExecutionFailed",
    "ExecutionNotFound",
    "ExecutionTimeout",
    "NotInWorkflow",
    "ObservabilityConfig",
    "ReplayDivergence",
    "RhythmError",
    "SerializationError",
    "Task",
    "UnknownFunction",
    "Worker",
    "Workflow",
    "cancel",
    "configure",
    "current_execution",
    "get_execution",
    "get_execution_async",
    "hookimpl",
    "is_replaying",
    "metrics",
    "task",
    "trace",
    "wait",
    "wait_async",
    "workflow",
]
