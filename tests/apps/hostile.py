"""Tasks whose outcomes are hostile to the engine: what they raise or return cannot be stored
as it is, or would stop the process that runs them."""

from __future__ import annotations

import sys

from rhythm_core import task

from .record import record


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ refuses")


class OwnBaseException(BaseException):
    """Neither an Exception nor one of Python's own: asyncio would keep it in the task."""


def _raise(kind: str) -> None:
    record(kind)
    if kind == "nul-message":
        raise ValueError("a NUL \x00 in the message")
    if kind == "surrogate-message":
        raise ValueError("a lone surrogate \ud800 in the message")
    if kind == "unprintable":
        raise Unprintable()
    if kind == "system-exit":
        sys.exit(3)
    if kind == "keyboard-interrupt":
        raise KeyboardInterrupt
    if kind == "generator-exit":
        raise GeneratorExit
    if kind == "own-base-exception":
        raise OwnBaseException("not an Exception")
    raise AssertionError(f"unknown kind {kind!r}")


RAISES = (
    "nul-message",
    "surrogate-message",
    "unprintable",
    "system-exit",
    "keyboard-interrupt",
    "generator-exit",
    "own-base-exception",
)


@task(queue="hostile", retries=0)
def raise_sync(kind: str) -> None:
    _raise(kind)


@task(queue="hostile", retries=0)
async def raise_async(kind: str) -> None:
    _raise(kind)


@task(queue="hostile", retries=0)
def returns_nul() -> str:
    record("returns-nul")
    return "a NUL \x00 in the result"


@task(queue="hostile", retries=0)
def returns_escaped_nul() -> str:
    """The six characters backslash-u-0-0-0-0: storable text, not a NUL."""
    return "\\u0000"


@task(queue="hostile", retries=0, retry_backoff=0.01, retry_backoff_max=0.01)
def fails_quickly() -> None:
    record("fails-quickly")
    raise RuntimeError("failing on purpose")


@task(queue="hostile", retries=0)
def ok(value: int) -> int:
    return value
