"""Paired data sources for data-to-data training (math.md 5): each example is a pair
``(x0, x1)`` and :meth:`batches` yields ``(x1, labels_or_None, x0)`` (see
:class:`interpgen.protocols.DataSource`). Both declare ``paired = True``.

* ``paired``: an ``.npz`` with arrays ``x0`` and ``x1`` of equal shape ``(N, *event)`` (the
  format ``interpgen reflow`` writes), optional integer ``labels`` and optional ``shift`` and
  ``scale`` (broadcastable to the event shape). The arrays are used as stored (in model space);
  ``shift``/``scale``, when present, are the data affine ``data = shift + scale * x1`` that maps
  samples back (reflow stores the run's own).
* ``paired_transform``: the rows of another data source as x0 and a transform of each as its
  x1, e.g. digits and their mirror images. Its data affine is the source's, carried through the
  transform so that ``transform(data) = shift' + scale' * transform(model)``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch
from torch import Tensor

from interpgen.tensors import check_shard
from interpgen.config import Part
from interpgen.registry import Registry
from interpgen.validators import nonempty_str, one_of, optional_name


def _rows_check(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


# -- the .npz of pairs ----------------------------------------------------------------------------

@attrs.frozen(kw_only=True)
class PairedArrays:
    """Paired examples (x0, x1) from an .npz file (the format interpgen reflow writes)."""

    #: the .npz file; a relative path is taken relative to the recipe's folder
    path: str = attrs.field(validator=nonempty_str)
    x0_key: str = attrs.field(default="x0", validator=nonempty_str)
    x1_key: str = attrs.field(default="x1", validator=nonempty_str)
    #: name of an integer label array (one per pair) in the file, if any
    labels_key: str | None = attrs.field(default=None, validator=optional_name)


class PairedSource:
    """In-memory pairs served in shuffled epochs (``paired = True``).

    Each epoch is a permutation from the generator cut into full global batches of
    ``count * batch_size`` rows, of which shard ``index`` gets rows ``[index * batch_size,
    (index + 1) * batch_size)``; with fewer rows than a global batch, rows are drawn with
    replacement. A pair is never split: x0 row ``k`` always comes with x1 row ``k``.
    """

    paired = True

    def __init__(self, x0: Tensor, x1: Tensor, *, labels: Tensor | None = None, num_classes: int | None = None,
                 affine: tuple[Tensor, Tensor] | None = None):
        if x0.shape != x1.shape or x1.dim() < 2 or x1.shape[0] < 1:
            raise ValueError(f"paired data needs x0 and x1 of one shape (N, *event), got {tuple(x0.shape)} "
                             f"and {tuple(x1.shape)}")
        if labels is not None and tuple(labels.shape) != (x1.shape[0],):
            raise ValueError(f"labels must have shape ({x1.shape[0]},), got {tuple(labels.shape)}")
        self.x0, self.x1, self.labels = x0, x1, labels
        self.num_classes = num_classes
        self.event_shape: tuple[int, ...] = tuple(x1.shape[1:])
        self._affine = affine

    def __len__(self) -> int:
        return self.x1.shape[0]

    def _rows(self, index: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
        return self.x1[index], (self.labels[index] if self.labels is not None else None), self.x0[index]

    def batches(self, batch_size: int, *, generator: torch.Generator,
                shard: tuple[int, int] = (0, 1)) -> Iterator[tuple[Tensor, Tensor | None, Tensor]]:
        _rows_check("batch_size", batch_size)
        index, count = check_shard(shard)
        n, width = len(self), batch_size * count
        mine = slice(index * batch_size, (index + 1) * batch_size)
        while True:
            if n < width:
                yield self._rows(torch.randint(0, n, (width,), generator=generator)[mine])
                continue
            order = torch.randperm(n, generator=generator)
            for start in range(0, n - width + 1, width):
                yield self._rows(order[start:start + width][mine])

    def reference(self, num: int, *, generator: torch.Generator) -> Tensor:
        """``num`` x1 rows (distinct while ``num <= N``)."""
        _rows_check("num", num)
        n = len(self)
        order = torch.cat([torch.randperm(n, generator=generator) for _ in range(-(-num // n))])
        return self.x1[order[:num]]

    def data_affine(self) -> tuple[Tensor, Tensor] | None:
        return self._affine


def _read_npz(file: Path) -> dict[str, np.ndarray]:
    if not file.is_file():
        raise FileNotFoundError(f"paired data file {file} does not exist")
    if file.suffix.lower() != ".npz":
        raise ValueError(f"{file}: paired data must be an .npz file with arrays x0 and x1 (numpy.savez)")
    try:
        with np.load(file, allow_pickle=False) as archive:
            return {k: archive[k] for k in archive.files}
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ValueError(f"{file} is not a readable .npz of numeric arrays: {exc}") from None


def _array(file: Path, arrays: dict[str, np.ndarray], key: str) -> np.ndarray:
    if key not in arrays:
        raise ValueError(f"{file}: no array named {key!r}; the file holds: {', '.join(sorted(arrays)) or '(none)'}")
    return arrays[key]


def _float_tensor(array: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def load_pairs(params: PairedArrays, root: Path | None) -> PairedSource:
    """Read and check the file named by ``params`` (relative to ``root``)."""
    file = Path(params.path).expanduser()
    file = (file if file.is_absolute() else (Path(root) if root is not None else Path.cwd()) / file).resolve()
    arrays = _read_npz(file)
    x0, x1 = _array(file, arrays, params.x0_key), _array(file, arrays, params.x1_key)
    if x0.shape != x1.shape or x1.ndim < 2:
        raise ValueError(f"{file}: {params.x0_key} and {params.x1_key} must have one shape (N, *event), "
                         f"got {x0.shape} and {x1.shape}")
    for key, arr in ((params.x0_key, x0), (params.x1_key, x1)):
        if arr.dtype.kind not in "iuf" or not np.isfinite(arr).all():
            raise ValueError(f"{file}: {key} must hold finite numbers (dtype {arr.dtype})")
    labels, num_classes = None, None
    if params.labels_key is not None:
        raw = _array(file, arrays, params.labels_key)
        if raw.dtype.kind not in "iu" or raw.shape != (x1.shape[0],) or (raw.size and raw.min() < 0):
            raise ValueError(f"{file}: {params.labels_key} must be {x1.shape[0]} non-negative integers")
        labels, num_classes = torch.from_numpy(raw.astype(np.int64)), int(raw.max()) + 1
    affine = None
    if ("shift" in arrays) != ("scale" in arrays):
        raise ValueError(f"{file}: store both shift and scale (the data affine) or neither")
    if "shift" in arrays:
        affine = tuple(torch.from_numpy(np.asarray(arrays[k], dtype=np.float32)) for k in ("shift", "scale"))
    return PairedSource(_float_tensor(x0), _float_tensor(x1), labels=labels, num_classes=num_classes, affine=affine)


def build_paired(params: PairedArrays, *, root: Path | None = None, **context: Any) -> PairedSource:
    return load_pairs(params, root)


# -- a data source and a transform of it -------------------------------------------------------------

def _flip(dim: int, min_event_dims: int, name: str):
    def apply(x: Tensor, event_dims: int) -> Tensor:
        if event_dims < min_event_dims:
            raise ValueError(f"transform {name!r} needs examples with at least {min_event_dims} dimension(s), "
                             f"got event shape {tuple(x.shape[x.dim() - event_dims:])}")
        return x.flip(dim)
    return apply


#: name -> (transform of examples, whether it negates values). Each acts on the last event axes.
TRANSFORMS = {
    "horizontal_flip": (_flip(-1, 1, "horizontal_flip"), False),   # images left-right; 2-D points: swap x and y
    "vertical_flip": (_flip(-2, 2, "vertical_flip"), False),       # images upside down
    "negate": (lambda x, event_dims: -x, True),                    # point reflection through the origin
}


@attrs.frozen(kw_only=True)
class PairedTransform:
    """Pairs each example of another dataset (x0) with a transform of it (x1), e.g. a mirror image."""

    #: the source data set (a registered dataset: a name or a table with ``name``)
    data: Part("dataset")  # type: ignore[valid-type]
    #: horizontal_flip (last axis reversed), vertical_flip (second-last axis reversed) or negate
    transform: str = attrs.field(default="horizontal_flip", validator=one_of(*TRANSFORMS))


class TransformedPairs:
    """x0 = the source's rows, x1 = ``transform(x0)`` (``paired = True``); labels are the source's."""

    paired = True

    def __init__(self, source: Any, transform: str):
        self.source = source
        self.transform = transform
        self._apply, self._negates = TRANSFORMS[transform]
        self.event_shape: tuple[int, ...] = tuple(source.event_shape)
        self.num_classes = getattr(source, "num_classes", None)

    def apply(self, x: Tensor) -> Tensor:
        """The transform applied to a batch ``(B, *event)``."""
        return self._apply(x, len(self.event_shape))

    def batches(self, batch_size: int, *, generator: torch.Generator,
                shard: tuple[int, int] = (0, 1)) -> Iterator[tuple[Tensor, Tensor | None, Tensor]]:
        stream = (self.source.batches(batch_size, generator=generator) if shard == (0, 1)
                  else self.source.batches(batch_size, generator=generator, shard=shard))
        for item in stream:
            if len(item) != 2:
                raise ValueError("paired_transform needs an unpaired source data set (yielding x1 and labels)")
            x, labels = item
            yield self.apply(x), labels, x

    def reference(self, num: int, *, generator: torch.Generator) -> Tensor:
        return self.apply(self.source.reference(num, generator=generator))

    def data_affine(self) -> tuple[Tensor, Tensor] | None:
        """The source's ``(shift, scale)`` expanded to the event shape and transformed: flips move
        both; ``negate`` negates the shift only (``-(s + c m) = -s + c (-m)``)."""
        affine = self.source.data_affine()
        if affine is None:
            return None
        shift, scale = (torch.as_tensor(a).expand(self.event_shape).unsqueeze(0) for a in affine)
        if self._negates:
            return -shift[0], scale[0].clone()
        return self.apply(shift)[0], self.apply(scale)[0]


def build_paired_transform(params: PairedTransform, *, registry: Registry, **context: Any) -> TransformedPairs:
    """The pairs ``(transform(x), x)`` of ``params.data``, built through the build context's ``registry``
    when it is a registered dataset's parameters (used as it is when it is a data source object)."""
    entry = registry.entry_for(params.data)
    source = entry.create(params.data, registry=registry, **context) if entry is not None else params.data
    pairs = TransformedPairs(source, params.transform)
    pairs.apply(torch.zeros(1, *pairs.event_shape))  # reject a transform the event shape cannot take
    return pairs
