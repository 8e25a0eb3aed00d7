"""Batches: sharding over processes, paired data, per-sample label dropout (interpgen.train.batches,
interpgen.tensors, the si objective)."""

from __future__ import annotations

import pytest
import torch

import interpgen as ig
from interpgen.train.batches import batch_stream
from interpgen.tensors import drop_labels
from interpgen_plugins.si.objective import interpolant_loss
from interpgen.protocols import Batch
from interpgen_plugins.datasets.finite import FiniteSource


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _source(n: int = 24) -> FiniteSource:
    return FiniteSource(torch.arange(n, dtype=torch.float64).reshape(n, 1), labels=torch.arange(n) % 3, num_classes=3)


@pytest.mark.parametrize("count", [2, 3])
def test_shards_split_the_single_process_batch(count):
    source = _source()
    whole = batch_stream(source, 2 * count, generator=gen(0))
    shards = [batch_stream(source, 2, generator=gen(0), shard=(i, count)) for i in range(count)]
    for _ in range(7):  # crosses epoch boundaries
        full = next(whole)
        parts = [next(s) for s in shards]
        torch.testing.assert_close(torch.cat([p.x1 for p in parts]), full.x1, rtol=0, atol=0)
        torch.testing.assert_close(torch.cat([p.labels for p in parts]), full.labels, rtol=0, atol=0)


def test_synthetic_shards_are_disjoint_slices_of_one_draw(registry):
    source = registry.create("dataset", "moons")
    full = next(batch_stream(source, 8, generator=gen(3)))
    a = next(batch_stream(source, 4, generator=gen(3), shard=(0, 2)))
    b = next(batch_stream(source, 4, generator=gen(3), shard=(1, 2)))
    torch.testing.assert_close(torch.cat([a.x1, b.x1]), full.x1, rtol=0, atol=0)


@pytest.mark.parametrize("shard", [(2, 2), (-1, 2), (0, 0)])
def test_bad_shard_is_rejected(shard):
    with pytest.raises(ValueError, match="0 <= index < count"):
        next(batch_stream(_source(), 2, generator=gen(0), shard=shard))


def test_source_without_shard_keyword_runs_alone_but_not_split():
    class Old:
        event_shape, num_classes = (1,), None

        def batches(self, batch_size, *, generator):
            while True:
                yield torch.zeros(batch_size, 1), None

    assert next(batch_stream(Old(), 3, generator=gen(0))).x1.shape == (3, 1)
    with pytest.raises(TypeError, match="Old cannot be split over 2 processes"):
        next(batch_stream(Old(), 3, generator=gen(0), shard=(0, 2)))


def test_label_dropout_is_per_sample():
    labels = torch.zeros(10_000, dtype=torch.long)
    dropped = drop_labels(labels, 0.25, null_label=10, generator=gen(0))
    assert set(dropped.unique().tolist()) == {0, 10}
    assert abs(float((dropped == 10).double().mean()) - 0.25) < 0.02
    # rows of 8: if dropping were per batch every row would be all-null or all-kept
    rows = (dropped.reshape(-1, 8) == 10).sum(dim=1)
    assert ((rows > 0) & (rows < 8)).any()
    assert torch.equal(drop_labels(labels, 0.0, 10, generator=gen(0)), labels)


def _parts():
    reg = ig.registry()
    make = lambda kind, name: reg.entry_for(ig.part(kind, name)).create(ig.part(kind, name), event_shape=(2,))  # noqa: E731
    return make("interpolant", "linear"), make("prior", "gaussian"), make("coupling", "independent")


def test_loss_sees_dropped_labels_as_null_class():
    interp, prior, coupling = _parts()
    seen = []

    def net(x, t, labels=None):
        seen.append(labels.clone())
        return torch.zeros_like(x)

    labels = torch.arange(64) % 4
    objective = ig.part("objective", "si", t_eps=0.0, label_dropout=0.5)
    interpolant_loss(net, interp, prior, coupling, objective, torch.randn(64, 2), labels, num_classes=4, generator=gen(1))
    got = seen[0]
    kept = got != 4
    assert torch.equal(got[kept], labels[kept]) and 0 < int((~kept).sum()) < 64
    with pytest.raises(ValueError, match="label_dropout needs labelled data"):
        interpolant_loss(net, interp, prior, coupling, objective, torch.randn(4, 2), labels[:4], generator=gen(1))


def test_paired_x0_replaces_the_prior_draw():
    interp, prior, coupling = _parts()
    x1, x0 = torch.randn(16, 2, generator=gen(2)), torch.randn(16, 2, generator=gen(3)) + 5.0
    objective = ig.part("objective", "si", time_sampling="uniform", t_eps=0.0)
    net = lambda x, t: torch.zeros_like(x)  # noqa: E731
    loss = interpolant_loss(net, interp, prior, coupling, objective, x1, x0=x0, generator=gen(4))
    # zero network: the loss is the mean squared velocity target x1 - x0
    torch.testing.assert_close(loss, (x1 - x0).pow(2).mean())
    with pytest.raises(ValueError, match=r"x0 has shape \(16, 3\) but x1 has \(16, 2\)"):
        interpolant_loss(net, interp, prior, coupling, objective, x1, x0=torch.zeros(16, 3), generator=gen(4))


def test_batch_defaults():
    b = Batch(torch.zeros(2, 1))
    assert b.labels is None and b.x0 is None
