"""Pairing the next batch in a background thread (interpgen.train.pair_ahead): the same pairs as in
the calling thread, exact resume, and only where the coupling asks for it."""

from __future__ import annotations

import pytest
import torch

import interpgen as ig
from interpgen.train.batches import batch_stream
from interpgen_plugins.si.objective import interpolant_loss
from interpgen.train.pair_ahead import PairAhead


def _pipe(coupling: str = "exact_ot", **kw) -> ig.Pipeline:
    return ig.Pipeline(data=ig.part("dataset", "moons"), coupling=ig.part("coupling", coupling),
                       network=ig.part("network", "mlp", hidden=16, depth=1), **kw)


def _pairs(pipe: ig.Pipeline, *, threaded: bool, start_step: int = 0, micro: int = 1, count: int = 5):
    stream = batch_stream(pipe.data, 32, generator=torch.Generator().manual_seed(3))
    ahead = PairAhead(stream, pipe.prior, pipe.coupling, seed=7, rank=0, start_step=start_step, micro=micro,
                      device="cpu", threaded=threaded)
    try:
        return [next(ahead) for _ in range(count)]
    finally:
        ahead.close()


def test_worker_thread_gives_the_pairs_of_the_calling_thread():
    pipe = _pipe()
    threaded, inline = _pairs(pipe, threaded=True), _pairs(pipe, threaded=False)
    for a, b in zip(threaded, inline, strict=True):
        assert a.coupled and b.coupled
        assert torch.equal(a.x1, b.x1) and torch.equal(a.x0, b.x0)


def test_pairs_are_the_couplings_assignment_of_a_seeded_prior_draw():
    pipe = _pipe()
    first = _pairs(pipe, threaded=True, count=1)[0]
    x1 = next(batch_stream(pipe.data, 32, generator=torch.Generator().manual_seed(3))).x1
    assert torch.equal(first.x1, x1)
    # x0 is a permutation of a prior draw, and that permutation is the optimal assignment
    x0 = first.x0
    again, _ = pipe.coupling.pair(x0.flip(0), x1)
    assert torch.equal(again, x0)
    # the draw of step s does not depend on where the stream started (exact resume)
    later = _pairs(pipe, threaded=True, start_step=2, count=1)[0]
    assert not torch.equal(later.x0.sort(0).values, x0.sort(0).values)


def test_coupled_batches_are_not_paired_again():
    interp = ig.registry().create("interpolant", "linear")
    prior = ig.registry().create("prior", "gaussian", event_shape=(2,))

    class Refuses:
        def pair(self, x0, x1, labels=None):
            raise AssertionError("paired twice")

    x1, x0 = torch.randn(8, 2), torch.randn(8, 2)
    net = lambda x, t: torch.zeros_like(x)  # noqa: E731
    objective = ig.part("objective", "si", t_eps=0.0)
    loss = interpolant_loss(net, interp, prior, Refuses(), objective, x1, x0=x0, coupled=True,
                            generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(loss, (x1 - x0).pow(2).mean())


def test_only_couplings_that_ask_pair_ahead():
    assert _pipe("exact_ot").pairs_ahead() and _pipe("sinkhorn").pairs_ahead()
    assert not _pipe("independent").pairs_ahead()
    learnable = _pipe("exact_ot", prior=ig.part("prior", "gmm", components=2, learnable=True))
    assert not learnable.pairs_ahead()


@pytest.mark.slow
def test_resume_with_pairing_ahead_is_exact(tmp_path):
    cfg = dict(batch_size=32, checkpoint_every=6, log_every=3, seed=4, sample_every=0, pictures=False)
    straight = _pipe()
    losses = straight.fit(ig.Train(steps=12, **cfg), run_dir=tmp_path / "a")
    first = _pipe()
    first.fit(ig.Train(steps=6, **cfg), run_dir=tmp_path / "b")
    resumed = _pipe()
    rest = resumed.fit(ig.Train(steps=12, **cfg), run_dir=tmp_path / "b", resume=True)
    assert rest == losses[2:]
    for p, q in zip(straight.network.parameters(), resumed.network.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.slow
def test_pairing_ahead_changes_the_draws_not_the_training():
    on, off = _pipe(), _pipe()
    a = on.fit(ig.Train(steps=60, batch_size=64, log_every=60, pair_ahead=True, sample_every=0, pictures=False))
    b = off.fit(ig.Train(steps=60, batch_size=64, log_every=60, pair_ahead=False, sample_every=0, pictures=False))
    assert a != b  # other x0 draws
    assert abs(a[-1] - b[-1]) < 0.5 * max(a[-1], b[-1])  # both train to a similar loss
