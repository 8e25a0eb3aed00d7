"""The "another dataset" prior: x0 drawn from a second data source, for data-to-data bridges
(math.md 0: rho0 may be any distribution; math.md 5: pairs (x0, x1) ~ nu with marginals rho0
and rho1)."""

from __future__ import annotations

from typing import Any

import attrs
import torch
from torch import Tensor

from interpgen.config import Part
from interpgen.protocols import DataSource
from interpgen.registry import Registry

from .base import BuiltPrior
from .shapes import event_shape_of


@attrs.frozen(kw_only=True)
class DatasetPriorParams:
    """Another dataset as the prior: x0 are rows of the data source ``data``."""

    #: the registered data source (a name or a table with ``name``) that x0 comes from
    data: Part("dataset")  # type: ignore[valid-type]


class DatasetPrior(BuiltPrior):
    """x0 ~ the data source's training samples in model space (one batch of ``num`` rows from
    ``source.batches``, so a finite source's held-out rows stay held out).

    The generator is passed to the source, so draws are reproducible. An empirical distribution
    has no density, so ``log_prob`` raises NotImplementedError.
    """

    prior_name = "dataset"
    is_data = True

    def __init__(self, source: DataSource, *, event_shape: tuple[int, ...] | None = None,
                 description: str = "the dataset"):
        source_shape = tuple(source.event_shape)
        super().__init__(source_shape if event_shape is None else event_shape)
        if source_shape != self.event_shape:
            raise ValueError(f"prior {self.prior_name!r}: {description} has event shape {source_shape} "
                             f"but the data has event shape {self.event_shape}; a data-to-data bridge "
                             "needs both ends in one space")
        self.source = source
        self.description = description

    def sample(self, num: int, shape: tuple[int, ...], *, generator: torch.Generator | None = None,
               device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Tensor:
        shape = self._check_request(num, shape)
        device, dtype = self._placement(device, dtype)
        if generator is None:  # follow the global seed when no generator is given
            generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, ()).item()))
        x = next(iter(self.source.batches(num, generator=generator)))[0]
        if tuple(x.shape) != (num, *shape):
            raise ValueError(f"prior {self.prior_name!r}: {self.description} returned samples of shape "
                             f"{tuple(x.shape)} when asked for {num} of shape {shape}")
        return x.to(device=device, dtype=dtype)

    def log_prob(self, x: Tensor) -> Tensor:
        raise NotImplementedError(
            f"prior {self.prior_name!r} has no density: x0 are samples of {self.description}, whose "
            "distribution is only known through its samples, so log_prob is undefined")

    def extra_repr(self) -> str:
        return f"event_shape={self.event_shape}, source={self.description}"


def build_dataset_prior(params: DatasetPriorParams, *, event_shape: tuple[int, ...], registry: Registry,
                        root: Any = None, **context: Any) -> DatasetPrior:
    """Build the data source named by ``params.data`` through the registry (with this run's
    context) and check that its event shape is the data's."""
    shape = event_shape_of(event_shape, DatasetPrior.prior_name)
    entry = registry.entry_for(params.data)
    context.pop("num_classes", None)  # describes the main data, not this source
    if entry is not None:
        source = entry.create(params.data, registry=registry, root=root, **context)
        description = f"the dataset {entry.name!r}"
    elif isinstance(params.data, DataSource):
        source, description = params.data, f"the data source {type(params.data).__name__}"
    else:
        raise TypeError(f"prior 'dataset': data must be a registered dataset's parameters or a DataSource, "
                        f"got {type(params.data).__name__}")
    return DatasetPrior(source, event_shape=shape, description=description)
