"""attrs validators for the network parameter classes.

Each rejects a bad value with a message naming the parameter and the value, e.g.
``hidden must be an integer >= 1, got 0``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs


def positive_int(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    """An ``int`` (not a bool) that is at least 1."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{attribute.name} must be an integer >= 1, got {value!r}")


def positive_even_int(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    """An even ``int`` that is at least 2 (half sine, half cosine features)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 2 or value % 2:
        raise ValueError(f"{attribute.name} must be an even integer >= 2, got {value!r}")


def positive_float(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    """A finite number strictly greater than 0."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if not ok:
        raise ValueError(f"{attribute.name} must be a finite number > 0, got {value!r}")


def one_of(*choices: str) -> Callable[[Any, attrs.Attribute, Any], None]:
    """A string among ``choices``."""

    def check(_: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value not in choices:
            listed = ", ".join(repr(c) for c in choices)
            raise ValueError(f"{attribute.name} must be one of {listed}, got {value!r}")

    return check
