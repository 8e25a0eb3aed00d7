"""attrs validators shared by the sampler and diffusion parameter classes.

Each one rejects a bad value with a message naming the parameter and the value, e.g.
``steps must be an integer >= 1, got 0``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def positive_int(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    """An ``int`` (not a bool) that is at least 1."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{attribute.name} must be an integer >= 1, got {value!r}")


def positive_float(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    """A finite number strictly greater than 0."""
    if not _is_number(value) or not value > 0 or value == float("inf"):
        raise ValueError(f"{attribute.name} must be a finite number > 0, got {value!r}")


def nonnegative_float(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    """A finite number that is at least 0."""
    if not _is_number(value) or not value >= 0 or value == float("inf"):
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


def unit_interval_open_right(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    """A number in ``[0, 1)``."""
    if not _is_number(value) or not 0 <= value < 1:
        raise ValueError(f"{attribute.name} must be a number in [0, 1), got {value!r}")


def one_of(*choices: str) -> Callable[[Any, attrs.Attribute, Any], None]:
    """A string among ``choices``."""

    def check(_: Any, attribute: attrs.Attribute, value: Any) -> None:
        if value not in choices:
            listed = ", ".join(repr(c) for c in choices)
            raise ValueError(f"{attribute.name} must be one of {listed}, got {value!r}")

    return check
