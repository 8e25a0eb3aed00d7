"""The independent coupling nu = rho0 (x) rho1 (math.md 0 and 5): x0 and x1 are paired as drawn."""

from __future__ import annotations

import attrs
from torch import Tensor


@attrs.frozen(kw_only=True)
class IndependentCoupling:
    """Independent coupling: pairs (x0, x1) as drawn, so nu = rho0 x rho1."""

    def pair(self, x0: Tensor, x1: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Return ``(x0, x1)`` unchanged after checking that the batch sizes (and the labels',
        when given) agree. Since x0 and x1 are drawn independently, keeping the order keeps
        them independent."""
        if x0.dim() == 0 or x1.dim() == 0 or x0.shape[0] != x1.shape[0]:
            raise ValueError(f"coupling 'independent': x0 and x1 must have the same batch size, got x0 of "
                             f"shape {tuple(x0.shape)} and x1 of shape {tuple(x1.shape)}")
        if labels is not None and (labels.dim() == 0 or labels.shape[0] != x1.shape[0]):
            raise ValueError(f"coupling 'independent': labels must have one entry per x1, got labels of "
                             f"shape {tuple(labels.shape)} and x1 of shape {tuple(x1.shape)}")
        return x0, x1
