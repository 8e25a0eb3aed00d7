"""Classifier-free guidance end to end: label dropout while training, guidance when sampling
(Pipeline.sample(guidance=...), `interpgen sample --guidance`)."""

from __future__ import annotations

import pytest
import torch

import interpgen as ig
from interpgen.guidance import GuidedNetwork


class TwoClusters:
    """Labelled 2D data: class 0 around (-2, 0), class 1 around (+2, 0)."""

    event_shape, num_classes = (2,), 2

    def batches(self, batch_size, *, generator, shard=(0, 1)):
        while True:
            yield self.draw(batch_size, generator)

    def draw(self, n, generator):
        labels = torch.randint(0, 2, (n,), generator=generator)
        x = 0.3 * torch.randn(n, 2, generator=generator)
        x[:, 0] += 4.0 * labels - 2.0
        return x, labels

    def reference(self, num, *, generator):
        return self.draw(num, generator)[0]

    def data_affine(self):
        return None


def _pipeline(dropout: float) -> ig.Pipeline:
    return ig.Pipeline(data=TwoClusters(), network=ig.part("network", "mlp", hidden=64, depth=2),
                       objective=ig.part("objective", "si", label_dropout=dropout))


@pytest.mark.slow
def test_guided_samples_follow_their_labels():
    pipe = _pipeline(0.2)
    pipe.fit(ig.Train(steps=600, batch_size=128, lr=3e-3, log_every=600))
    labels = pipe.sampling_labels(400)
    assert torch.equal(labels[:4], torch.tensor([0, 1, 0, 1]))
    for w in (1.0, 3.0):
        out = pipe.sample(400, steps=8, labels=labels, guidance=w)
        assert out.labels is labels
        x = out.x
        side = torch.where(labels == 1, x[:, 0], -x[:, 0])
        assert float((side > 0).double().mean()) > 0.95, w
    # the unconditional model (w = 0) puts mass on both clusters
    x0 = pipe.sample(400, steps=8, labels=torch.zeros(400, dtype=torch.long), guidance=0.0).x
    assert 0.2 < float((x0[:, 0] > 0).double().mean()) < 0.8


def test_field_wraps_the_sampling_network_with_guidance():
    pipe = _pipeline(0.1)
    pipe.init_ema()
    labels = torch.tensor([0, 1])
    field = pipe.field(labels=labels, guidance=2.5)
    assert isinstance(field.network, GuidedNetwork) and field.network.network is pipe.ema
    assert field.network.scale == 2.5
    assert pipe.field(labels=labels).network is pipe.ema  # no guidance: the plain EMA network
    with pytest.raises(ValueError, match="needs the labels"):
        pipe.field(guidance=2.0)


def test_guidance_on_an_unconditional_model_is_an_error():
    pipe = ig.Pipeline(data=ig.part("dataset", "moons"), network=ig.part("network", "mlp", hidden=16, depth=1))
    with pytest.raises(ValueError, match="trained without labels"):
        pipe.field(labels=torch.zeros(2, dtype=torch.long), guidance=2.0)
    with pytest.raises(ValueError, match="trained without classes"):
        pipe.sampling_labels(4, label=1)
    assert pipe.sampling_labels(4) is None


def test_sampling_labels_range_is_checked():
    pipe = _pipeline(0.0)
    assert torch.equal(pipe.sampling_labels(3, label=1), torch.tensor([1, 1, 1]))
    with pytest.raises(ValueError, match=r"label must be in \[0, 2\)"):
        pipe.sampling_labels(3, label=2)
