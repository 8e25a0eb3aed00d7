"""A data set read from disk while it trains: :class:`StreamSource` (docs/data.md "Streaming").

The rows live in units (:mod:`.stream_files`); where each row goes is a pure function of the
seeds and its stream position (:mod:`.stream_order`). So

* **processes**: with ``shard = (i, n)`` process ``i`` serves rows ``[i B, (i + 1) B)`` of global
  batch ``k`` (``n B`` rows at stream positions ``[k n B, (k + 1) n B)``), the
  :class:`~interpgen.protocols.DataSource` contract: the data of a run does not depend on ``n``.
  Every process reads the units of the current window (I/O is repeated per process) and decodes
  only its own rows;
* **workers**: with ``num_workers = w`` a ``torch.utils.data.DataLoader`` runs ``w`` worker
  processes; worker ``j`` reads, decodes and flips batches ``k = j, j + w, ...`` and the loader
  hands them over in order, so the batches do not depend on ``w`` either;
* **resume**: :meth:`StreamIterator.state_dict` is the number of global rows served (plus the
  seed and a fingerprint of the data); :meth:`StreamIterator.load_state_dict` jumps there in O(1)
  and later batches equal those of an uninterrupted stream.

Memory is bounded by one shuffle window of stored rows per reader (the training process with
``num_workers = 0``, else each worker), never by the size of the data set.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import torch
from torch import Tensor

from interpgen.tensors import check_shard

from .images import pixel_affine
from .stream_files import ImageFiles, ShardFiles
from .stream_order import Order, flips, normal_rows
from .stream_rows import RowDecoder, UnitRows, unit_rows_from_table

#: Marks the state of a stream in a checkpoint.
STATE_FORMAT = "interpgen.stream/1"


class StreamData:
    """One part's files, order and decoder; :meth:`load` reads a unit. Picklable (open files are
    not carried to worker processes)."""

    def __init__(self, files: ShardFiles | ImageFiles, order: Order, decoder: RowDecoder, *,
                 column: str | None = None, kind: str = "path", label_column: str | None = None):
        self.files, self.order, self.decoder = files, order, decoder
        self.column, self.kind, self.label_column = column, kind, label_column

    def load(self, unit: int) -> UnitRows:
        files = self.files
        if isinstance(files, ImageFiles):
            index = list(files.indices(unit))
            labels = files.labels[index] if files.labels is not None else None
            return UnitRows(images=[(None, files.files[i]) for i in index], labels=labels)
        columns = [self.column] + ([self.label_column] if self.label_column is not None else [])
        return unit_rows_from_table(files.read(unit, columns), self.column, self.kind, self.label_column,
                                    lambda row: files.where(unit, row), str(files.folder))

    def rows(self, units: np.ndarray, rows: np.ndarray, cache: dict[int, UnitRows]) -> tuple[Tensor, Tensor | None]:
        for unit in np.unique(units).tolist():
            if unit not in cache:
                cache[unit] = self.load(unit)
        return self.decoder.examples(cache, units, rows)


def _as_produced(item: Any) -> Any:
    """The DataLoader's collate function: batches come out of the workers as they were made."""
    return item


class _Failure:
    """A decoding error raised in a worker, handed to the training process as a message."""

    def __init__(self, message: str):
        self.message = message


class Producer(torch.utils.data.IterableDataset):
    """Batch ``k`` of one process from global stream positions; iterating yields batches from
    ``start`` on (in a DataLoader worker ``j`` of ``w``: ``start + j``, ``start + j + w``, ...)."""

    def __init__(self, data: StreamData, batch_size: int, seed: int, shard: tuple[int, int], flip: bool,
                 noise: float = 0.0):
        self.data, self.batch_size, self.seed, self.flip, self.noise = data, batch_size, seed, flip, noise
        self.index, self.count = shard
        self.start = 0
        self._cache: dict[int, UnitRows] = {}

    def batch(self, k: int) -> tuple[Tensor, Tensor | None]:
        order, b = self.data.order, self.batch_size
        positions = k * b * self.count + self.index * b + np.arange(b, dtype=np.int64)
        units, rows, keys = order.locate(self.seed, positions)
        keep = set(np.concatenate([order.units_of(self.seed, key) for key in keys]).tolist())
        for unit in [u for u in self._cache if u not in keep]:
            del self._cache[unit]
        x, labels = self.data.rows(units, rows, self._cache)
        if self.flip:
            mask = torch.from_numpy(flips(self.seed, positions))
            x[mask] = x[mask].flip(-1)
        if self.noise:
            x += self.noise * normal_rows(self.seed, positions, tuple(x.shape[1:]))
        return x, labels

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        k = self.start + worker
        while True:
            try:
                yield self.batch(k)
            except ValueError as exc:
                if info is None:
                    raise
                yield _Failure(str(exc))
                return
            k += workers


class StreamIterator:
    """The batches of one process, with ``state_dict`` / ``load_state_dict`` / ``state_at`` for
    exact resume and ``close`` to stop the workers."""

    def __init__(self, producer: Producer, *, num_workers: int, fingerprint: str):
        self.producer, self.num_workers, self.fingerprint = producer, num_workers, fingerprint
        self.width = producer.batch_size * producer.count
        self.served = 0
        self._batches: Any = None

    def __iter__(self) -> StreamIterator:
        return self

    def __next__(self) -> tuple[Tensor, Tensor | None]:
        if self._batches is None:
            self.producer.start = self.served
            if self.num_workers == 0:
                self._batches = iter(self.producer)
            else:
                loader = torch.utils.data.DataLoader(self.producer, batch_size=None, num_workers=self.num_workers,
                                                     collate_fn=_as_produced, prefetch_factor=2)
                self._batches = iter(loader)
        item = next(self._batches)
        if isinstance(item, _Failure):
            self.close()
            raise ValueError(item.message)
        self.served += 1
        return item

    def state_at(self, batches: int) -> dict[str, Any]:
        """The state after ``batches`` batches of this stream (a dict of str and int)."""
        return {"format": STATE_FORMAT, "rows": int(batches) * self.width, "seed": int(self.producer.seed),
                "fingerprint": self.fingerprint}

    def state_dict(self) -> dict[str, Any]:
        """The state after the batches served so far."""
        return self.state_at(self.served)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` (from :meth:`state_dict` or :meth:`state_at`, possibly of a
        run with another number of processes but the same global batch)."""
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError(f"not the state of a streamed data set (format {STATE_FORMAT!r} expected), got "
                             f"{str(state)[:80]}")
        fields = (("rows", int), ("seed", int), ("fingerprint", str))
        if not all(isinstance(state.get(key), kind) for key, kind in fields):
            raise ValueError(f"the stream state {str(state)[:80]} lacks rows, seed or fingerprint")
        if state["fingerprint"] != self.fingerprint:
            raise ValueError("the data set is not the one the state was saved with (its files, their row counts "
                             "or the data parameters changed), so the stream cannot resume exactly")
        if int(state["seed"]) != int(self.producer.seed):
            raise ValueError(f"the state was saved with seed {state['seed']}, "
                             f"this stream has seed {self.producer.seed}")
        rows = int(state["rows"])
        if rows % self.width:
            raise ValueError(f"the state is at global row {rows}, not a whole number of global batches of "
                             f"{self.width} rows (batch size x processes); resume with the same global batch")
        self.close()
        self.served = rows // self.width

    def close(self) -> None:
        """Stop the DataLoader workers (the next batch starts them again)."""
        batches, self._batches = self._batches, None
        del batches


class StreamSource:
    """A :class:`~interpgen.protocols.DataSource` that reads its rows from disk as it trains.

    ``train`` serves :meth:`batches`; the held-out part (``heldout = (data, part)``: by default
    the held-out rows of ``train``'s own order; or other files, whose ``"train"`` rows are all
    held out) serves :meth:`reference`. Both parts serve :meth:`take`. ``affine`` is the data's
    ``(shift, scale)``; ``flip`` mirrors training rows along their last axis; ``noise = c`` adds
    ``c xi`` to every training row (the encoder noise of latent shards, math.md 4.3).
    """

    def __init__(self, train: StreamData, heldout: tuple[StreamData, str] | None = None, *,
                 affine: tuple[Tensor, Tensor] | None = None, flip: bool = False, noise: float = 0.0,
                 num_workers: int = 0,
                 fingerprint: str = "", where: str = "streamed data"):
        self._parts = {"train": (train, "train"), "heldout": heldout or (train, "heldout")}
        #: Whether some rows are held out (else the held-out part is the training part).
        self.has_heldout = self.part_size("heldout") > 0
        if not self.has_heldout:
            self._parts["heldout"] = (train, "train")
        self.event_shape: tuple[int, ...] = tuple(train.decoder.event_shape)
        self.num_classes = train.decoder.num_classes
        self.flip, self.noise, self.num_workers = bool(flip), float(noise), int(num_workers)
        self.fingerprint, self.where = fingerprint, where
        self._affine = affine

    def __len__(self) -> int:
        return self.part_size("train")

    def part_size(self, part: str) -> int:
        """Rows of ``part`` (``"train"``; ``"heldout"``, the training part when nothing is held out)."""
        data, sub = self._part(part)
        return data.order.train_rows if sub == "train" else data.order.heldout_rows

    def _part(self, part: str) -> tuple[StreamData, str]:
        if part not in self._parts:
            raise ValueError(f"part must be one of train, heldout, got {part!r}")
        return self._parts[part]

    def take(self, part: str, index: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Rows ``index`` (all when None) of ``part`` in model space, with labels. Reads the units
        they are in, one at a time (never flipped)."""
        data, sub = self._part(part)
        size = self.part_size(part)
        wanted = np.arange(size) if index is None else torch.as_tensor(index).cpu().numpy().astype(np.int64)
        if wanted.size and (wanted.min() < 0 or wanted.max() >= size):
            raise IndexError(f"{self.where}: index out of range for the {part} part of {size} rows")
        units, rows = data.order.part_rows(sub, wanted)
        x = torch.empty((len(wanted), *self.event_shape), dtype=torch.float32)
        labels = torch.empty(len(wanted), dtype=torch.int64) if self.num_classes is not None else None
        for unit in np.unique(units).tolist():
            mask = np.flatnonzero(units == unit)
            chunk, chunk_labels = data.rows(units[mask], rows[mask], {})
            x[torch.from_numpy(mask)] = chunk
            if labels is not None:
                labels[torch.from_numpy(mask)] = chunk_labels
        return x, labels

    def batches(self, batch_size: int, *, generator: torch.Generator,
                shard: tuple[int, int] = (0, 1)) -> StreamIterator:
        """The training rows forever, as described in the module docstring. The stream depends on
        ``generator.initial_seed()`` only (not on the generator's current state)."""
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        shard = check_shard(shard)
        data = self._parts["train"][0]
        producer = Producer(data, batch_size, int(generator.initial_seed()), shard, self.flip, self.noise)
        return StreamIterator(producer, num_workers=self.num_workers, fingerprint=self.fingerprint)

    def reference(self, num: int, *, generator: torch.Generator) -> Tensor:
        """``num`` held-out rows (training rows when nothing is held out): distinct rows while
        ``num`` is at most the part's size, as :class:`~.finite.FiniteSource` draws them."""
        if not isinstance(num, int) or num < 1:
            raise ValueError(f"num must be an integer >= 1, got {num!r}")
        n = self.part_size("heldout")
        parts = [torch.randperm(n, generator=generator) for _ in range(num // n)]
        if num % n:
            parts.append(torch.randperm(n, generator=generator)[: num % n])
        return self.take("heldout", torch.cat(parts))[0]

    def data_affine(self) -> tuple[Tensor, Tensor] | None:
        return self._affine

    def __repr__(self) -> str:
        return (f"StreamSource({self.where}, train={self.part_size('train')}, "
                f"heldout={self.part_size('heldout') if self.has_heldout else 0}, event_shape={self.event_shape}, "
                f"num_classes={self.num_classes}, num_workers={self.num_workers})")


def fingerprint(*parts: Any) -> str:
    """SHA-256 (first 32 hex digits) of JSON-serialisable ``parts``."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def image_affine(event_shape: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """``(shift, scale)`` of 8-bit pixels: ``pixels = 127.5 + 127.5 * model``."""
    return pixel_affine(0.0, 255.0, event_shape)
