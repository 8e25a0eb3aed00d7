"""Validators for the kernel's and the plugins' parameter classes, composed from :mod:`attrs.validators`.

Each named validator is :func:`checked`: ``attrs.validators`` with one message naming the parameter and the
value, e.g. ``steps must be an integer >= 1, got 0`` (the recipe loader adds ``@ sample.sampler``). A plugin::

    from attrs.validators import gt, lt
    from interpgen.validators import checked, number

    sigma_min = attrs.field(default=1e-4, validator=checked("a number in (0, 1)", number, gt(0), lt(1)))

Building blocks (plain attrs validators): :data:`integer`, :data:`number`, :data:`finite` and :func:`tuple_of`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import attrs
from attrs.validators import (and_, deep_iterable, ge, gt, in_, instance_of, le, lt, matches_re, min_len,
                              not_, optional)

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]

#: An ``int`` that is not a ``bool``.
integer = and_(instance_of(int), not_(instance_of(bool)))
#: An ``int`` or ``float`` that is not a ``bool``.
number = and_(instance_of((int, float)), not_(instance_of(bool)))
#: Neither NaN nor infinite (NaN fails every comparison).
finite = and_(gt(-math.inf), lt(math.inf))


def tuple_of(member: Validator, *, min_length: int = 1) -> Validator:
    """A tuple of at least ``min_length`` items, each passing ``member``."""
    return deep_iterable(member, and_(instance_of(tuple), min_len(min_length)))


def checked(what: str, *validators: Validator, error: type[Exception] = ValueError) -> Validator:
    """``validators`` in turn; the first failure becomes ``error("<name> must be <what>, got <value!r>")``."""
    combined = and_(*validators)

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        try:
            combined(instance, attribute, value)
        except (TypeError, ValueError):
            raise error(f"{attribute.name} must be {what}, got {value!r}") from None

    check.__doc__ = f"Must be {what}."
    return check


def one_of(*choices: str) -> Validator:
    """A string among ``choices``."""
    return checked("one of " + ", ".join(repr(c) for c in choices), in_(choices))


any_int = checked("an integer", integer)
positive_int = checked("an integer >= 1", integer, ge(1))
nonnegative_int = checked("an integer >= 0", integer, ge(0))
optional_positive_int = checked("an integer >= 1 or left out", optional(and_(integer, ge(1))))
positive_even_int = checked("an even integer >= 2", integer, in_(range(2, 2**63, 2)))  # range: O(1) test
positive_float = checked("a finite number > 0", number, gt(0), lt(math.inf))
nonnegative_float = checked("a finite number >= 0", number, ge(0), lt(math.inf))
finite_float = checked("a finite number", number, finite)
unit_interval = checked("a number in [0, 1]", number, ge(0), le(1))
unit_interval_open = checked("a number in (0, 1)", number, gt(0), lt(1))
unit_interval_open_right = checked("a number in [0, 1)", number, ge(0), lt(1))
finite_vector = checked("a non-empty list of finite numbers", tuple_of(and_(number, finite)))
positive_vector = checked("a non-empty list of finite numbers > 0", tuple_of(and_(number, gt(0), lt(math.inf))))
positive_int_vector = checked("a non-empty list of integers >= 1", tuple_of(and_(integer, ge(1))))
nonempty_str = checked("a non-empty string", instance_of(str), matches_re(r"\S", func=re.search))
optional_name = checked("a non-empty string or left out", optional(and_(instance_of(str), min_len(1))))
