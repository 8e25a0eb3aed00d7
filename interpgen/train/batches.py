"""Drawing training batches from a :class:`~interpgen.protocols.DataSource`."""

from __future__ import annotations

import inspect
from typing import Any

import torch

from interpgen.protocols import Batch, DataSource
from interpgen.tensors import check_shard


class batch_stream:  # noqa: N801 - used like the generator function it replaces
    """The source's batches as :class:`~interpgen.protocols.Batch` tuples.

    Sources written before sharding existed (``batches`` without a ``shard`` keyword) still work
    in one process; asking them for a shard of several processes is an error that names them.
    When the iterator ``batches`` returns has ``state_dict()`` and ``load_state_dict()``, its
    position goes into checkpoints (``stateful``); other streams are replayed on resume.
    """

    def __init__(self, source: DataSource, batch_size: int, *, generator: torch.Generator,
                 shard: tuple[int, int] = (0, 1)):
        index, count = check_shard(shard)
        self.name = type(source).__name__
        if count == 1:
            self.inner = iter(source.batches(batch_size, generator=generator))
        elif "shard" not in inspect.signature(source.batches).parameters:
            raise TypeError(f"data source {self.name} cannot be split over {count} processes: "
                            "its batches() takes no shard=(index, count) argument")
        else:
            self.inner = iter(source.batches(batch_size, generator=generator, shard=(index, count)))
        self.stateful = callable(getattr(self.inner, "state_dict", None)) and callable(
            getattr(self.inner, "load_state_dict", None))

    def __iter__(self) -> batch_stream:
        return self

    def __next__(self) -> Batch:
        item = next(self.inner)
        if not isinstance(item, tuple) or not 1 <= len(item) <= 3:
            raise TypeError(f"data source {self.name} yielded {type(item).__name__}; "
                            "expected (x1, labels) or (x1, labels, x0)")
        return Batch(*item)

    def state_dict(self) -> Any:
        return self.inner.state_dict() if self.stateful else None

    def load_state_dict(self, state: Any) -> None:
        self.inner.load_state_dict(state)
