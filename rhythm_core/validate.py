"""Checks of configuration values that fail with the key named."""

from __future__ import annotations

from typing import Any

from .errors import ConfigError


def number(
    key: str,
    value: Any,
    *,
    minimum: float = 0,
    above: bool = False,
    integer: bool = False,
    optional: bool = False,
) -> Any:
    """Return ``value`` if it is a number ``>= minimum`` (``> minimum`` with ``above``)."""
    if value is None and optional:
        return None
    allowed = isinstance(value, int) or (isinstance(value, float) and not integer)
    if allowed and not isinstance(value, bool):
        number = float(value)
        if number > minimum or (number == minimum and not above):
            return value
    kind = "an integer" if integer else "a number"
    bound = f"> {minimum:g}" if above else f">= {minimum:g}"
    raise ConfigError(f"{key} must be {kind} {bound}, got {value!r}")
