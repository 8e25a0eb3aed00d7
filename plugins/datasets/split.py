"""The held-out split every finite data set has.

A finite data set is cut once, with its own fixed ``split_seed``, into a *training* part (what
``batches()`` serves) and a *held-out* part (what ``reference()`` returns and ``interpgen eval``
compares samples against). ``holdout`` is either a fraction in ``[0, 1)`` of the rows or a whole
number ``>= 1`` of rows; ``0`` keeps every row for training (``reference()`` then falls back to
the training rows). The split does not depend on the training seed, so every run of a recipe,
and its evaluation, sees the same held-out rows.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import torch
from torch import Tensor

from interpgen.validators import any_int


def check_holdout(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    """A fraction in ``[0, 1)`` or a whole number ``>= 1`` of rows."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    if not ok or (value >= 1 and value != int(value)):
        raise ValueError(f"{attribute.name} must be a fraction in [0, 1) or a whole number of rows >= 1, "
                         f"got {value!r}")


@attrs.frozen(kw_only=True)
class HeldOutSplit:
    """Fields shared by every finite data set: the size of the held-out part and its seed.
    Not registered itself; each data set's params class inherits these fields."""

    #: Rows kept out of training for evaluation: a fraction in [0, 1) or a count >= 1.
    holdout: float = attrs.field(default=0.1, validator=check_holdout)
    #: Seed of the permutation that picks the held-out rows (independent of the training seed).
    split_seed: int = attrs.field(default=0, validator=any_int)


def heldout_count(rows: int, holdout: float) -> int:
    """How many of ``rows`` rows are held out: ``round(holdout * rows)`` (at least 1 when the
    fraction is above 0) for a fraction, ``holdout`` itself for a count."""
    if holdout >= 1:
        return int(holdout)
    if holdout == 0:
        return 0
    return max(1, int(round(holdout * rows)))


def split_rows(rows: int, holdout: float, seed: int, *, where: str = "the data") -> tuple[Tensor, Tensor]:
    """``(train_index, heldout_index)``, each sorted, from a permutation of ``range(rows)`` drawn
    with a generator seeded by ``seed``; the held-out rows are the first ``heldout_count`` of it.
    At least one training row must remain, otherwise a ValueError names ``where``."""
    count = heldout_count(rows, holdout)
    if count >= rows:
        raise ValueError(f"{where}: holdout = {holdout!r} keeps {count} of its {rows} rows out of training, "
                         "leaving none to train on; lower holdout")
    order = torch.randperm(rows, generator=torch.Generator().manual_seed(seed))
    return torch.sort(order[count:]).values, torch.sort(order[:count]).values
