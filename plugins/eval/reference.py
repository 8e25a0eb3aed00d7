"""Which data a run's samples are scored against (``interpgen eval``; docs/data.md, docs/couplings.md).

By default a run is scored against its own data set, rebuilt from its recipe. Two other choices:

* ``reference_run``: the data of another run, e.g. the original run of a reflow round: a reflowed
  model is trained on pairs whose ``x1`` are the previous model's samples, and should be scored
  against the original data, not against those pairs (docs/couplings.md, "Reflow");
* ``data``: a named data set (registered params, a TOML-shaped table with ``name``, or a name).

Samples are drawn in the evaluated run's normalised (model) space. When the reference data is
normalised differently (another ``data_affine``), its rows are mapped into the run's space
through data units, ``x_run = (shift_ref + scale_ref * x_ref - shift_run) / scale_run``
(:class:`InRunSpace`), so every metric and the feature classifier see one space.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from interpgen.registry import Registry


def _affine(affine: Any) -> tuple[Tensor, Tensor] | None:
    return None if affine is None else (torch.as_tensor(affine[0]), torch.as_tensor(affine[1]))


def _same_affine(a: tuple[Tensor, Tensor] | None, b: tuple[Tensor, Tensor] | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return all(x.shape == y.shape and torch.equal(x.float(), y.float()) for x, y in zip(a, b))


class InRunSpace:
    """A data source seen in another run's normalised space: rows of ``take`` and ``reference``
    go to data units through ``source_affine`` and back through ``run_affine`` (None: the
    identity); everything else is the source's own."""

    def __init__(self, source: Any, source_affine: tuple[Tensor, Tensor] | None,
                 run_affine: tuple[Tensor, Tensor] | None):
        self.source, self._from, self._to = source, source_affine, run_affine
        self.event_shape = tuple(source.event_shape)
        self.num_classes = getattr(source, "num_classes", None)

    def __getattr__(self, name: str) -> Any:  # part_size, heldout, ... of the source
        return getattr(self.source, name)

    def _map(self, x: Tensor) -> Tensor:
        if self._from is not None:
            x = self._from[0].to(x) + self._from[1].to(x) * x
        if self._to is not None:
            x = (x - self._to[0].to(x)) / self._to[1].to(x)
        return x

    def take(self, part: str, index: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        x, labels = self.source.take(part, index)
        return self._map(x), labels

    def reference(self, num: int, *, generator: torch.Generator) -> Tensor:
        return self._map(self.source.reference(num, generator=generator))

    def data_affine(self) -> tuple[Tensor, Tensor] | None:
        return self._to


def _built_data(data: Any, registry: Registry) -> Any:
    """A data source from registered params, a mapping with ``name``, or a name."""
    from interpgen.config import RecipeConverter

    if isinstance(data, str):
        data = {"name": data}
    if isinstance(data, Mapping):
        data = RecipeConverter(registry).structure_part("dataset", dict(data), path="reference data")
    entry = registry.entry_for(data)
    if entry is None:
        raise ValueError(f"the reference data must be a registered data set, got {data!r}")
    return entry.create(data, root=Path.cwd(), registry=registry), entry.name


def reference_source(pipe: Any, registry: Registry, *, reference_run: str | Path | None = None,
                     data: Any = None) -> tuple[Any, str]:
    """``(source, what it is)``: the data ``pipe``'s samples are scored against, in ``pipe``'s
    normalised space. ``reference_run``: another run directory's data (rebuilt from its recipe);
    ``data``: a named data set; neither: the run's own data."""
    from .evaluate import rebuild_data

    if reference_run is not None and data is not None:
        raise ValueError("score against another run's data or against a named data set, not both")
    if reference_run is None and data is None:
        return rebuild_data(pipe, registry), "the run's own data"
    if reference_run is not None:
        from interpgen.pipeline import Pipeline
        from interpgen.protocols import CheckpointError

        other_dir = Path(reference_run)
        if not other_dir.is_dir():
            raise CheckpointError(f"reference run {other_dir.resolve()} does not exist")
        other = Pipeline.load(other_dir, registry=registry)
        source, about = rebuild_data(other, registry), f"the data of run {other_dir.resolve()}"
        source_affine = _affine(other.data_affine)
    else:
        source, name = _built_data(data, registry)
        about, source_affine = f"data set {name!r}", _affine(source.data_affine())
    if tuple(source.event_shape) != tuple(pipe.event_shape):
        raise ValueError(f"{about} has event shape {tuple(source.event_shape)}, but the run's samples have "
                         f"{tuple(pipe.event_shape)}: they cannot be compared")
    run_affine = _affine(pipe.data_affine)
    if _same_affine(source_affine, run_affine):
        return source, about
    return InRunSpace(source, source_affine, run_affine), about + " (mapped into the run's normalised space)"
