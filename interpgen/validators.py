"""attrs validators shared by the kernel's and the plugins' parameter classes.

Each rejects a bad value with a message naming the parameter and the value, e.g.
``steps must be an integer >= 1, got 0``; the recipe loader adds where (``@ sample.sampler``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def positive_int(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    """An ``int`` (not a bool) that is at least 1."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{attribute.name} must be an integer >= 1, got {value!r}")


def nonnegative_int(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    """An ``int`` (not a bool) that is at least 0."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{attribute.name} must be an integer >= 0, got {value!r}")


def optional_positive_int(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    """None, or an ``int`` (not a bool) that is at least 1."""
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ValueError(f"{attribute.name} must be an integer >= 1 or left out, got {value!r}")


def positive_float(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    """A finite number strictly greater than 0."""
    if not _is_number(value) or not math.isfinite(value) or not value > 0:
        raise ValueError(f"{attribute.name} must be a finite number > 0, got {value!r}")


def nonnegative_float(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    """A finite number that is at least 0."""
    if not _is_number(value) or not math.isfinite(value) or not value >= 0:
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


def finite_float(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    """Any finite number."""
    if not _is_number(value) or not math.isfinite(value):
        raise ValueError(f"{attribute.name} must be a finite number, got {value!r}")


def finite_vector(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    """A non-empty tuple of finite numbers."""
    if (not isinstance(value, tuple) or not value
            or not all(_is_number(v) and math.isfinite(v) for v in value)):
        raise ValueError(f"{attribute.name} must be a non-empty list of finite numbers, got {value!r}")


def positive_vector(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    """A non-empty tuple of finite numbers > 0."""
    if (not isinstance(value, tuple) or not value
            or not all(_is_number(v) and math.isfinite(v) and v > 0 for v in value)):
        raise ValueError(f"{attribute.name} must be a non-empty list of finite numbers > 0, got {value!r}")


def optional_name(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    """None or a non-empty string."""
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError(f"{attribute.name} must be a non-empty string or left out, got {value!r}")


def nonempty_str(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    """A non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{attribute.name} must be a non-empty string, got {value!r}")


def positive_even_int(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    """An even ``int`` that is at least 2 (half sine, half cosine features)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 2 or value % 2:
        raise ValueError(f"{attribute.name} must be an even integer >= 2, got {value!r}")


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
