"""Pairing the next batch while the current one trains.

An exact or entropic minibatch coupling (math.md 5) solves an assignment on the CPU for every
batch; on a small network that solver costs as much as the training step itself. It needs
nothing from the step (only ``x1`` and a prior draw ``x0``), so :class:`PairAhead` draws ``x0``
and runs ``coupling.pair`` for batch ``k + 1`` in one background thread while batch ``k``
trains. The solvers spend their time in C code that releases the GIL (POT's network simplex,
torch kernels), so on a machine with a free core the pairing is hidden behind the step.

Draws stay reproducible: ``x0`` for the ``i``-th micro-batch of step ``s`` comes from a generator
seeded by ``derived_seed(seed, rank, s, i, PAIR_STREAM)``, whatever thread runs it and whatever
was trained before, so an interrupted and resumed run pairs exactly as an unbroken one (for
couplings without random draws of their own). The batches come out with ``coupled=True``, which
tells the loss not to pair again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import torch

from interpgen.train.distributed import PAIR_STREAM, derived_seed, move_batch
from interpgen.protocols import Batch


class PairAhead:
    """An iterator over ``stream``'s batches, each with ``x0`` drawn from ``prior`` and paired
    by ``coupling`` (``coupled=True``), computed one batch ahead in a worker thread.

    ``start_step`` is the training step of the first batch and ``micro`` the micro-batches per
    step (gradient accumulation); ``threaded=False`` does the same work in the calling thread
    (the tests hold the two equal). ``capture`` (optional) is called after each batch is served,
    while the worker is idle, and its result kept in ``captured``: the state of the data stream
    and the coupling's generators as of the batches served, for a checkpoint. Call :meth:`close`
    when done.
    """

    def __init__(self, stream: Iterator[Batch], prior: Any, coupling: Any, *, seed: int, rank: int,
                 start_step: int, micro: int, device: torch.device | str, threaded: bool = True,
                 capture: Callable[[], Any] | None = None):
        self.stream, self.prior, self.coupling = stream, prior, coupling
        self.capture, self.captured = capture, capture() if capture is not None else None
        self.seed, self.rank, self.micro = seed, rank, micro
        self.device = torch.device(device)
        self.index = start_step * micro  # micro-batches served so far, counted from step 0
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="interpgen-pair-ahead") if threaded else None
        self.pending: Future | None = None

    def _pair(self, index: int) -> Batch:
        batch = move_batch(next(self.stream), self.device)
        if batch.x0 is not None:
            raise ValueError("pairing ahead draws x0 from the prior, but the data brings its own x0 (paired data)")
        step, micro_index = divmod(index, self.micro)
        generator = torch.Generator(device=self.device).manual_seed(
            derived_seed(self.seed, self.rank, step, micro_index, PAIR_STREAM))
        x1 = batch.x1
        with torch.no_grad():
            x0 = self.prior.sample(x1.shape[0], tuple(x1.shape[1:]), generator=generator, device=x1.device,
                                   dtype=x1.dtype)
            x0, x1 = self.coupling.pair(x0, x1, batch.labels)
        return Batch(x1, batch.labels, x0, coupled=True)

    def __iter__(self) -> PairAhead:
        return self

    def __next__(self) -> Batch:
        if self.executor is None:
            batch = self._pair(self.index)
            self.captured = self.capture() if self.capture is not None else None
        else:
            if self.pending is None:
                self.pending = self.executor.submit(self._pair, self.index)
            batch = self.pending.result()  # re-raises the worker's error here
            if self.capture is not None:
                self.captured = self.capture()
            self.pending = self.executor.submit(self._pair, self.index + 1)
        self.index += 1
        return batch

    def close(self) -> None:
        """Stop the worker (the batch it may be pairing is dropped)."""
        if self.executor is not None:
            if self.pending is not None:
                self.pending.cancel()
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.executor = None
