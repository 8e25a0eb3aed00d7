"""Class-aware exact minibatch OT: optimal transport inside each label group (math.md 5).

For a label-conditional model the coupling must pair each x1 with an x0 meant for the same
class. x0 drawn from a prior carries no label, so the x0 batch is split at random (by the
coupling's generator) into groups whose sizes are the label counts of the x1 batch; each group
is then matched to the x1 rows of its label by the exact assignment of :mod:`.assignment`. Since
the split ignores x0's values, each group is still a sample of the prior, and within a class the
coupling is minibatch OT. No pair crosses a label group; without labels this is ``exact_ot``.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch
from torch import Tensor

from .assignment import optimal_permutation, squared_distances
from .checks import check_pair_arguments


@attrs.frozen(kw_only=True)
class ClassOTParams:
    """Class-aware exact OT: exact OT inside each label group (x0 split at random into groups)."""

    #: seed of the coupling's own generator (used to split x0 into label groups)
    seed: int = 0


class ClassOTCoupling:
    """See the module docstring. ``pair`` returns ``x0`` reordered so that row ``i`` is the x0
    assigned to ``x1[i]``; every x0 row is used exactly once."""

    pairs_ahead = True  # see ExactOTCoupling.pairs_ahead

    def __init__(self, *, seed: int):
        self.generator = torch.Generator().manual_seed(seed)

    def assignment(self, x0: Tensor, x1: Tensor, labels: Tensor | None) -> Tensor:
        """The index of the x0 row paired with each x1 row, long, shape ``(B,)``."""
        batch = x1.shape[0]
        if labels is None:
            return optimal_permutation(squared_distances(x1, x0))
        shuffled = torch.randperm(batch, generator=self.generator).to(x0.device)
        index = torch.empty(batch, dtype=torch.long, device=x0.device)
        start = 0
        for label in torch.unique(labels):  # sorted, so the split is deterministic
            rows = torch.nonzero(labels == label).squeeze(1).to(x0.device)
            group = shuffled[start:start + rows.numel()]
            start += rows.numel()
            index[rows] = group[optimal_permutation(squared_distances(x1[rows], x0[group]))]
        return index

    def pair(self, x0: Tensor, x1: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_pair_arguments("class_ot", x0, x1, labels)
        return x0[self.assignment(x0, x1, labels)], x1


def build_class_ot(params: ClassOTParams, **context: Any) -> ClassOTCoupling:
    return ClassOTCoupling(seed=params.seed)
