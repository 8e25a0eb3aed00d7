"""The paired coupling: the data supplies its own x0 for each x1 (math.md 5, data-dependent
couplings; data-to-data translation and reflow)."""

from __future__ import annotations

from typing import Any

import attrs
from torch import Tensor

from .checks import check_pair_arguments


@attrs.frozen(kw_only=True)
class PairedCoupling:
    """Paired data: keeps the (x0, x1) pairs the data source gives (datasets paired, paired_transform).

    With paired data the training loss takes x0 from the batch instead of the prior
    (the ``si`` objective's loss), so ``pair`` returns both unchanged; the prior is
    then only the sampling-time source of x0. :meth:`check_compatible` rejects data sources that
    say they are not paired: a source declares itself with ``paired = True``."""

    def pair(self, x0: Tensor, x1: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]:
        check_pair_arguments("paired", x0, x1, labels)
        return x0, x1

    def check_compatible(self, *, data: Any = None, **parts: Any) -> None:
        """Raise ValueError when ``data`` does not declare ``paired = True`` (a run loaded for
        sampling has a stand-in whose ``paired`` is None: unknown, accepted)."""
        if data is not None and getattr(data, "paired", False) is False:
            raise ValueError(
                f"coupling 'paired' needs paired data (a source that yields x0 with each x1 and sets "
                f"paired = True, e.g. dataset 'paired' or 'paired_transform'); {type(data).__name__} is not "
                "paired: use coupling 'independent' or 'exact_ot' with unpaired data")
