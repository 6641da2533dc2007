"""Checks of configuration values that fail with the key named."""

from __future__ import annotations

import math
from typing import Any

from .errors import ConfigError


def number(
    key: str,
    value: Any,
    *,
    minimum: float = 0,
    maximum: float | None = None,
    above: bool = False,
    integer: bool = False,
    optional: bool = False,
) -> Any:
    """Return ``value`` if it is a finite number ``>= minimum`` (``> minimum`` with ``above``)
    and, when given, ``<= maximum``. Infinity is refused: every setting here bounds a wait or
    a count, and an infinite one is a typo that would hang or overflow later."""
    if value is None and optional:
        return None
    allowed = isinstance(value, int) or (isinstance(value, float) and not integer)
    if allowed and not isinstance(value, bool):
        finite = isinstance(value, int) or math.isfinite(value)
        fits = maximum is None or value <= maximum
        if finite and fits and (value > minimum or (value == minimum and not above)):
            return value
    kind = "an integer" if integer else "a finite number"
    bound = f"> {minimum:g}" if above else f">= {minimum:g}"
    if maximum is not None:
        bound += f" and <= {maximum:g}"
    raise ConfigError(f"{key} must be {kind} {bound}, got {value!r}")
