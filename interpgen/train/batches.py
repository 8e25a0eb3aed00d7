"""Drawing training batches from a :class:`~interpgen.protocols.DataSource`, with a state that a
checkpoint can keep.

:class:`BatchStream` is what the engine iterates. Its state says where the stream is:

* a source whose ``batches()`` returns an iterator with ``state_at`` / ``load_state_dict``
  (the streamed data sets) keeps its own state, e.g. the global rows served and a fingerprint of
  the data, and jumps back to it without reading what came before;
* any other source is replayed: the state is ``{"batches": k}`` and loading it draws and drops
  ``k`` batches from a fresh stream (cheap for data in memory).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

from interpgen.protocols import Batch, DataSource
from interpgen.tensors import check_shard

#: Marks the replay state of a stream without a state of its own.
REPLAY_FORMAT = "interpgen.replay/1"


class BatchStream:
    """The source's batches as :class:`~interpgen.protocols.Batch` tuples.

    Sources written before sharding existed (``batches`` without a ``shard`` keyword) still work
    in one process; asking them for a shard of several processes is an error that names them.
    """

    def __init__(self, source: DataSource, batch_size: int, *, generator: torch.Generator,
                 shard: tuple[int, int] = (0, 1)):
        index, count = check_shard(shard)
        self.name = type(source).__name__
        if count == 1:
            self._inner = source.batches(batch_size, generator=generator)
        else:
            if "shard" not in inspect.signature(source.batches).parameters:
                raise TypeError(f"data source {self.name} cannot be split over {count} processes: "
                                "its batches() takes no shard=(index, count) argument")
            self._inner = source.batches(batch_size, generator=generator, shard=(index, count))
        self._native = callable(getattr(self._inner, "state_at", None))
        self.served = 0

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> Batch:
        item = next(self._inner)
        if not isinstance(item, tuple) or not 1 <= len(item) <= 3:
            raise TypeError(f"data source {self.name} yielded {type(item).__name__}; "
                            "expected (x1, labels) or (x1, labels, x0)")
        self.served += 1
        return Batch(*item)

    def state_at(self, batches: int) -> dict[str, Any]:
        """The state after ``batches`` batches (plain str/int values). The engine asks for the
        state at ``step * grad_accumulation`` rather than :meth:`state_dict`, because a thread
        pairing ahead may already have drawn the next batch."""
        return self._inner.state_at(batches) if self._native else {"format": REPLAY_FORMAT, "batches": int(batches)}

    def state_dict(self) -> dict[str, Any]:
        """The state after the batches drawn so far."""
        return self.state_at(self.served)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue after the batches ``state`` counts (a fresh stream only, for replay)."""
        replay = isinstance(state, dict) and state.get("format") == REPLAY_FORMAT
        if self._native:
            self._inner.load_state_dict(self._inner.state_at(int(state["batches"])) if replay else state)
            self.served = self._inner.served
            return
        if not replay:
            raise ValueError(f"data source {self.name} cannot load the stream state {str(state)[:80]}")
        if self.served:
            raise ValueError("a replayed stream can only load a state before its first batch")
        for _ in range(int(state["batches"])):
            next(self._inner)
        self.served = int(state["batches"])

    def close(self) -> None:
        """Stop the source's readers (DataLoader workers), if it has any."""
        close = getattr(self._inner, "close", None)
        if callable(close):
            close()


def batch_stream(source: DataSource, batch_size: int, *, generator: torch.Generator,
                 shard: tuple[int, int] = (0, 1)) -> BatchStream:
    """A :class:`BatchStream` over ``source`` (see there)."""
    return BatchStream(source, batch_size, generator=generator, shard=shard)
