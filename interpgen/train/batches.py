"""Drawing training batches from a :class:`~interpgen.protocols.DataSource`."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import torch

from interpgen.protocols import Batch, DataSource
from interpgen.tensors import check_shard


def batch_stream(source: DataSource, batch_size: int, *, generator: torch.Generator,
                 shard: tuple[int, int] = (0, 1)) -> Iterator[Batch]:
    """The source's batches as :class:`~interpgen.protocols.Batch` tuples.

    Sources written before sharding existed (``batches`` without a ``shard`` keyword) still work
    in one process; asking them for a shard of several processes is an error that names them.
    """
    index, count = check_shard(shard)
    if count == 1:
        stream = source.batches(batch_size, generator=generator)
    else:
        if "shard" not in inspect.signature(source.batches).parameters:
            raise TypeError(f"data source {type(source).__name__} cannot be split over {count} processes: "
                            "its batches() takes no shard=(index, count) argument")
        stream = source.batches(batch_size, generator=generator, shard=(index, count))
    for item in stream:
        if not isinstance(item, tuple) or not 1 <= len(item) <= 3:
            raise TypeError(f"data source {type(source).__name__} yielded {type(item).__name__}; "
                            "expected (x1, labels) or (x1, labels, x0)")
        yield Batch(*item)
