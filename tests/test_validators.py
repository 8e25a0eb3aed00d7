"""interpgen.validators: attrs.validators compositions with one message naming the field and value."""

from __future__ import annotations

import math

import attrs
import pytest
from attrs.validators import ge, instance_of

from interpgen import validators as v


def holder(validator):
    @attrs.frozen
    class Params:
        field: object = attrs.field(validator=validator)

    return Params


@pytest.mark.parametrize("validator, good, bad, what", [
    (v.positive_int, [1, 7], [0, -1, True, 2.0, "3", None], "an integer >= 1"),
    (v.nonnegative_int, [0, 3], [-1, False, 0.0], "an integer >= 0"),
    (v.optional_positive_int, [None, 2], [0, True, 1.5], "an integer >= 1 or left out"),
    (v.any_int, [-3, 0], [1.0, True, "1"], "an integer"),
    (v.positive_even_int, [2, 64], [0, 3, -2, True, 4.0], "an even integer >= 2"),
    (v.positive_float, [1e-9, 3, 2.5], [0.0, -1.0, math.nan, math.inf, True, "1"], "a finite number > 0"),
    (v.nonnegative_float, [0, 0.0, 4.5], [-1e-9, math.nan, math.inf, False], "a finite number >= 0"),
    (v.finite_float, [-1e300, 0, 2.5], [math.nan, -math.inf, math.inf, True, None], "a finite number"),
    (v.unit_interval, [0, 0.5, 1.0], [-0.1, 1.01, math.nan, True], "a number in [0, 1]"),
    (v.unit_interval_open, [1e-6, 0.99], [0.0, 1.0, math.nan], "a number in (0, 1)"),
    (v.unit_interval_open_right, [0.0, 0.5], [1.0, -0.1, math.nan, False], "a number in [0, 1)"),
    (v.finite_vector, [(1.0,), (0, -2.5)], [(), [1.0], (1.0, math.nan), (True,), 1.0], "a non-empty list of finite numbers"),
    (v.positive_vector, [(1.0, 2)], [(1.0, 0.0), (), (math.inf,)], "a non-empty list of finite numbers > 0"),
    (v.positive_int_vector, [(1, 2)], [(), (0,), (1.0,), (True,)], "a non-empty list of integers >= 1"),
    (v.nonempty_str, ["a", " b "], ["", "   ", 3, None], "a non-empty string"),
    (v.optional_name, [None, "x"], ["", 3], "a non-empty string or left out"),
    (v.one_of("a", "b"), ["a", "b"], ["c", "A", None, ["a"]], "one of 'a', 'b'"),
])
def test_named_validators(validator, good, bad, what):
    params = holder(validator)
    for value in good:
        assert params(value).field == value
    for value in bad:
        with pytest.raises(ValueError) as info:
            params(value)
        assert str(info.value) == f"field must be {what}, got {value!r}"


def test_checked_composes_attrs_validators_and_keeps_the_error_type():
    at_least_one = holder(v.checked("a number >= 1", v.number, ge(1)))
    assert at_least_one(1.5).field == 1.5
    with pytest.raises(ValueError, match=r"^field must be a number >= 1, got 0.5$"):
        at_least_one(0.5)
    typed = holder(v.checked("a string", instance_of(str), error=TypeError))
    with pytest.raises(TypeError, match=r"^field must be a string, got 3$"):
        typed(3)


def test_tuple_of_counts_items():
    maybe_empty = holder(v.checked("a list of integers", v.tuple_of(v.integer, min_length=0)))
    assert maybe_empty(()).field == ()
    with pytest.raises(ValueError, match="got \\(1, 'x'\\)"):
        maybe_empty((1, "x"))
