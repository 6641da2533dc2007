"""JSON encoding of arguments and results, with errors that say which value is wrong.

PostgreSQL ``jsonb`` rejects NaN/Infinity and the NUL character, so both are refused here, at
enqueue time, rather than surfacing later as a database error with nothing written.
"""

from __future__ import annotations

import json
import re
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import SerializationError

_encoder = json.JSONEncoder(allow_nan=False, ensure_ascii=False, separators=(",", ":"))


_UNSERIALISABLE = (TypeError, ValueError, RecursionError)
# A NUL as JSON writes it: ``\u0000`` after an even number of backslashes (an odd number
# would make it the escaped text "\\u0000", which jsonb stores).
_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _dumps(value: Any) -> str:
    text = _encoder.encode(value)
    if "\\u0000" in text and _NUL.search(text):
        raise ValueError("strings may not contain the NUL character (\\u0000)")
    if not valid_unicode(text):
        raise ValueError("strings must be valid Unicode (no lone surrogates)")
    return text


def valid_unicode(text: str) -> bool:
    """``text`` holds no lone surrogate, which neither UTF-8 nor ``jsonb`` can carry."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _describe(what: str, value: Any, exc: Exception) -> SerializationError:
    return SerializationError(
        f"cannot serialise {what} of type {type(value).__name__}: {exc}; values must be "
        "JSON-serialisable (str, int, float, bool, None, list, dict with str keys)"
    )


def _changed_by_json(value: Any) -> str | None:
    """What in ``value`` JSON would hand back as something else, or None: a tuple comes back
    a list, a dict key that is not a string comes back a string."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, tuple):
            return f"a tuple ({item!r:.60}); JSON gives back a list: pass a list"
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            for key, inner in item.items():
                if not isinstance(key, str):
                    return (
                        f"a dict key {key!r:.60} of type {type(key).__name__}; JSON gives "
                        "back a string: use string keys"
                    )
                stack.append(inner)
    return None


def encode_call(
    function_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> tuple[str, str]:
    """Encode a call's arguments, or raise naming the argument that cannot be stored, or that
    would reach the function as something else than was passed."""
    named = [(f"argument {i}", value) for i, value in enumerate(args)]
    named += [(f"keyword argument {key!r}", value) for key, value in kwargs.items()]
    for what, value in named:
        changed = _changed_by_json(value)
        if changed is not None:
            raise SerializationError(
                f"cannot pass {what} of {function_name} as it is: it holds {changed}"
            )
    try:
        return _dumps(list(args)), _dumps(dict(kwargs))
    except _UNSERIALISABLE:
        pass
    for index, value in enumerate(args):
        try:
            _dumps(value)
        except _UNSERIALISABLE as exc:
            raise _describe(f"argument {index} of {function_name}", value, exc) from exc
    for key, value in kwargs.items():
        try:
            _dumps(value)
        except _UNSERIALISABLE as exc:
            raise _describe(f"keyword argument {key!r} of {function_name}", value, exc) from exc
    raise SerializationError(f"cannot serialise the arguments of {function_name}")


def encode_result(function_name: str, value: Any) -> str:
    """Encode a function's return value, or raise naming the function."""
    try:
        return _dumps(value)
    except _UNSERIALISABLE as exc:
        raise _describe(f"the result of {function_name}", value, exc) from exc


def encode(value: Any) -> str:
    """Encode an internal value (errors, carriers) that is JSON by construction."""
    return _dumps(value)


def readable(value: object) -> str:
    """``str(value)``, or a note of why it could not be had: a user's ``__str__`` can raise."""
    try:
        return str(value)
    except Exception as failure:
        return f"<{type(value).__name__} could not be read as text: {failure!r:.200}>"


def traceback_text(exc: BaseException) -> str:
    """The exception's formatted traceback, or a note of why it could not be formatted (a
    ``__str__`` that raises, in the exception or one chained to it)."""
    try:
        return "".join(traceback.format_exception(exc))
    except Exception as failure:
        return f"<the traceback could not be formatted: {failure!r:.200}>"


def storable_text(text: str) -> str:
    """``text`` as ``jsonb`` can store it: NUL written as ``\\x00`` and lone surrogates as
    ``\\udcxx`` escapes. For what the engine writes about user code (error messages,
    tracebacks), which must be stored whatever it holds."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
