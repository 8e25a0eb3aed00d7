"""Checks and conversions for recipe values that are one number or one number per feature.

A field typed ``float | tuple[float, ...]`` (a prior's mean, std, bounds, location) holds either
a scalar, used for every feature, or a tuple with one value per feature. These helpers are the
attrs converters and validators of such fields; whether a tuple has the right length is only
known once the data's event shape is, and is checked by :mod:`.shapes`.
"""

from __future__ import annotations

import math
from typing import Any

Numbers = float | tuple[float, ...]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def float_or_floats(value: Any) -> Any:
    """attrs converter: ints become floats and lists become tuples (so the frozen params stay
    hashable); anything else is left for the validators to reject."""
    if _is_number(value):
        return float(value)
    if isinstance(value, (list, tuple)):
        return tuple(float(v) if _is_number(v) else v for v in value)
    return value


def to_float(value: Any) -> Any:
    """attrs converter for a ``float`` field: an int becomes a float."""
    return float(value) if _is_number(value) else value


def optional_floats(value: Any) -> Any:
    """attrs converter for ``tuple[float, ...] | None``."""
    return None if value is None else float_or_floats(value)


def nested_floats(value: Any) -> Any:
    """attrs converter for ``tuple[float | tuple[float, ...], ...] | None``."""
    if isinstance(value, (list, tuple)):
        return tuple(float_or_floats(v) for v in value)
    return value


def numbers_of(name: str, value: Any) -> list[float]:
    """The numbers in a scalar-or-tuple value, or a ValueError naming the field."""
    if _is_number(value):
        values = [float(value)]
    elif isinstance(value, tuple):
        if not value:
            raise ValueError(f"{name} must have at least one value, got ()")
        for v in value:
            if not _is_number(v):
                raise TypeError(f"{name} must hold numbers, got {type(v).__name__} {v!r}")
        values = [float(v) for v in value]
    else:
        raise TypeError(f"{name} must be a number or a list of numbers, got {type(value).__name__} {value!r}")
    for v in values:
        if not math.isfinite(v):
            raise ValueError(f"{name} must be finite, got {_show(value)}")
    return values


def finite(instance: Any, attribute: Any, value: Any) -> None:
    """attrs validator: a finite number or a non-empty tuple of finite numbers."""
    numbers_of(attribute.name, value)


def positive(instance: Any, attribute: Any, value: Any) -> None:
    """attrs validator: a positive finite number or a non-empty tuple of them."""
    check_positive(attribute.name, value)


def check_positive(name: str, value: Any) -> None:
    for v in numbers_of(name, value):
        if v <= 0:
            raise ValueError(f"{name} must be > 0, got {_show(value)}")


def length(value: Any) -> int | None:
    """Number of values in a tuple, None for a scalar (which broadcasts)."""
    return len(value) if isinstance(value, tuple) else None


def pairwise(name_a: str, a: Any, name_b: str, b: Any) -> list[tuple[float, float]]:
    """Pair up two scalar-or-tuple values, broadcasting a scalar; lengths of two tuples must agree."""
    va, vb = numbers_of(name_a, a), numbers_of(name_b, b)
    la, lb = length(a), length(b)
    if la is not None and lb is not None and la != lb:
        raise ValueError(f"{name_a} has {la} values but {name_b} has {lb}")
    n = max(len(va), len(vb))
    va = va * n if len(va) == 1 and la is None else va
    vb = vb * n if len(vb) == 1 and lb is None else vb
    return list(zip(va, vb))


def _show(value: Any) -> str:
    return repr(float(value)) if _is_number(value) else repr(value)
