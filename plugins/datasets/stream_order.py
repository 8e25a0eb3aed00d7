"""Where every row of a streamed data set goes, as pure functions of seeds and positions.

A streamed data set is a sequence of *units* (Parquet row groups, Arrow record batches, chunks
of an image folder) of known sizes ``r_u``, ``N = sum r_u`` rows in all. Nothing here reads a row;
everything is computed from the unit sizes, so any position of the stream can be reached without
reading what comes before it (exact resume in O(1)) and memory does not grow with ``N``.

* **Held-out rows** (``holdout``, ``split_seed``, :mod:`.split`): ``H = heldout_count(N, holdout)``
  rows in all, spread over the units in proportion to their size: unit ``u`` starting at row
  ``c_u`` holds out ``floor((c_u + r_u) H / N) - floor(c_u H / N)`` rows (these add up to ``H``),
  picked by a permutation of its rows seeded by ``(split_seed, u)``.
* **Training order**: the stream is the sequence of epochs ``e = 0, 1, ...``, each holding every
  training row once (``T`` rows). Epoch ``e`` permutes the units (seed ``(seed, e)``), groups
  consecutive units into *windows* of about ``window`` training rows, and permutes the rows of
  each window (seed ``(seed, e, w)``): a block shuffle whose memory is one window. Stream
  position ``p`` is row ``p mod T`` of epoch ``p div T``; epochs follow each other without a gap.
* **Flips**: the row at position ``p`` is mirrored when bit 33 of ``hash(seed, p)`` is set.
* **Encoder noise** (latent shards): the row at position ``p`` gets ``c xi`` with ``xi ~ N(0, I)``
  drawn from a generator seeded by ``(seed, p)``.

Seeds are mixed with SplitMix64 (Steele, Lea and Flood, OOPSLA 2014), so streams of different
``(seed, epoch, window)`` are unrelated.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np
import torch

from .split import heldout_count

_MASK = (1 << 64) - 1
#: Tags that keep the seeds of the different uses apart.
HOLD, EPOCH, WINDOW, FLIP, NOISE = 1, 2, 3, 4, 5


def _splitmix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def mix(*values: int) -> int:
    """A 63-bit seed that depends on every value and their order."""
    h = 0
    for v in values:
        h = _splitmix(h ^ (int(v) & _MASK))
    return h >> 1


def hash_positions(seed: int, positions: np.ndarray) -> np.ndarray:
    """SplitMix64 of ``seed``-mixed positions, elementwise (uint64)."""
    with np.errstate(over="ignore"):
        x = positions.astype(np.uint64) ^ np.uint64(mix(seed))
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def flips(seed: int, positions: np.ndarray) -> np.ndarray:
    """Whether the row at each stream position is mirrored (probability 1/2 each)."""
    return ((hash_positions(mix(seed, FLIP), positions) >> np.uint64(33)) & np.uint64(1)).astype(bool)


def normal_rows(seed: int, positions: np.ndarray, shape: tuple[int, ...]) -> torch.Tensor:
    """Standard normal draws of ``shape`` for each stream position (float32)."""
    out = torch.empty((len(positions), *shape))
    generator = torch.Generator()
    for i, p in enumerate(positions.tolist()):
        out[i] = torch.randn(shape, generator=generator.manual_seed(mix(seed, NOISE, p)))
    return out


def _permutation(n: int, seed: int) -> np.ndarray:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()


class Order:
    """The held-out split and the training order over units of sizes ``unit_rows``.

    ``where`` names the data in errors. Row indices returned are within their unit.
    """

    def __init__(self, unit_rows: Sequence[int], *, holdout: float, split_seed: int, window: int, where: str):
        rows = [int(r) for r in unit_rows]
        total = sum(rows)
        held_total = heldout_count(total, holdout) if total else 0
        if total - held_total < 1:
            raise ValueError(f"{where}: holdout = {holdout!r} keeps {held_total} of its {total} rows out of "
                             "training, leaving none to train on; lower holdout")
        starts = np.concatenate([[0], np.cumsum(rows)[:-1]]).tolist() if rows else []
        held = [((c + r) * held_total) // total - (c * held_total) // total for c, r in zip(starts, rows)]
        self.unit_rows = np.asarray(rows, dtype=np.int64)
        self.held = np.asarray(held, dtype=np.int64)
        self.train = self.unit_rows - self.held
        self.rows, self.heldout_rows, self.train_rows = total, held_total, total - held_total
        self.split_seed, self.window = int(split_seed), int(window)
        self._held_starts = np.concatenate([[0], np.cumsum(self.held)])
        self._train_starts = np.concatenate([[0], np.cumsum(self.train)])
        self._epochs: OrderedDict[tuple[int, int], tuple[list[np.ndarray], np.ndarray]] = OrderedDict()
        self._windows: OrderedDict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()

    # -- the split ------------------------------------------------------------------------------
    def unit_split(self, unit: int) -> tuple[np.ndarray, np.ndarray]:
        """``(training rows, held-out rows)`` of ``unit``, each sorted."""
        perm = _permutation(int(self.unit_rows[unit]), mix(self.split_seed, unit, HOLD))
        cut = int(self.held[unit])
        return np.sort(perm[cut:]), np.sort(perm[:cut])

    def part_rows(self, part: str, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(units, rows)`` of rows ``index`` of ``part`` (``"train"`` or ``"heldout"``), the
        part's rows numbered unit by unit in file order."""
        starts = self._train_starts if part == "train" else self._held_starts
        units = np.searchsorted(starts, index, side="right") - 1
        rows = np.empty_like(index)
        for unit in np.unique(units):
            mask = units == unit
            chosen = self.unit_split(int(unit))[0 if part == "train" else 1]
            rows[mask] = chosen[index[mask] - starts[unit]]
        return units, rows

    # -- the training order ---------------------------------------------------------------------
    def _epoch(self, seed: int, epoch: int) -> tuple[list[np.ndarray], np.ndarray]:
        """The windows (arrays of unit ids) of ``epoch`` and the training rows before each end."""
        key = (seed, epoch)
        if key not in self._epochs:
            order = _permutation(len(self.unit_rows), mix(seed, epoch, EPOCH))
            order = order[self.train[order] > 0]
            counts = self.train[order]
            before = np.cumsum(counts) - counts
            ids = np.unique(before // self.window, return_inverse=True)[1]
            windows = [order[ids == w] for w in range(int(ids.max()) + 1)]
            ends = np.cumsum([int(self.train[w].sum()) for w in windows])
            self._epochs[key] = (windows, ends)
            while len(self._epochs) > 2:
                self._epochs.popitem(last=False)
        return self._epochs[key]

    def _window(self, seed: int, epoch: int, window: int) -> tuple[np.ndarray, np.ndarray]:
        """``(units, rows)`` of every training row of one window, in serving order."""
        key = (seed, epoch, window)
        if key not in self._windows:
            units_in = self._epoch(seed, epoch)[0][window]
            rows = [self.unit_split(int(u))[0] for u in units_in]
            unit_ids = np.concatenate([np.full(len(r), u, dtype=np.int64) for u, r in zip(units_in, rows)])
            row_ids = np.concatenate(rows).astype(np.int64)
            perm = _permutation(len(row_ids), mix(seed, epoch, window, WINDOW))
            self._windows[key] = (unit_ids[perm], row_ids[perm])
            while len(self._windows) > 4:
                self._windows.popitem(last=False)
        return self._windows[key]

    def locate(self, seed: int, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray, set[tuple[int, int]]]:
        """``(units, rows, windows)``: the unit and row of the training row at each stream position,
        and the ``(epoch, window)`` keys those rows come from."""
        epochs, offsets = np.divmod(positions.astype(np.int64), self.train_rows)
        units = np.empty_like(offsets)
        rows = np.empty_like(offsets)
        keys: set[tuple[int, int]] = set()
        for epoch in np.unique(epochs).tolist():
            in_epoch = np.flatnonzero(epochs == epoch)
            ends = self._epoch(seed, epoch)[1]
            wins = np.searchsorted(ends, offsets[in_epoch], side="right")
            for w in np.unique(wins).tolist():
                mask = in_epoch[wins == w]
                start = int(ends[w - 1]) if w > 0 else 0
                window_units, window_rows = self._window(seed, epoch, w)
                units[mask] = window_units[offsets[mask] - start]
                rows[mask] = window_rows[offsets[mask] - start]
                keys.add((epoch, w))
        return units, rows, keys

    def units_of(self, seed: int, key: tuple[int, int]) -> np.ndarray:
        """The units of window ``key = (epoch, window)``."""
        return self._epoch(seed, key[0])[0][key[1]]
