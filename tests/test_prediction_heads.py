"""Networks with extra output channels (a DiT with learn_sigma) train and sample through the
pipeline: only the prediction channels are used (interpgen.fields.prediction_heads)."""

from __future__ import annotations

import pytest
import torch

import interpgen as ig
from interpgen.fields import prediction_heads


class Latents:
    event_shape, num_classes = (4, 8, 8), None

    def batches(self, batch_size, *, generator, shard=(0, 1)):
        while True:
            yield torch.randn(batch_size, *self.event_shape, generator=generator), None

    def reference(self, num, *, generator):
        return torch.randn(num, *self.event_shape, generator=generator)

    def data_affine(self):
        return None


def test_heads_split_and_drop_extra_channels():
    out = torch.arange(2 * 6 * 3, dtype=torch.float64).reshape(2, 6, 3)
    v, s = prediction_heads(out, ("velocity", "score"), 2)
    assert torch.equal(v, out[:, 0:2]) and torch.equal(s, out[:, 2:4])
    with pytest.raises(ValueError, match="returned 6 channels; 2 prediction\\(s\\) \\(velocity\\+score\\) of 4 channels need 8"):
        prediction_heads(out, ("velocity", "score"), 4)


def test_dit_with_learned_sigma_trains_and_samples():
    pipe = ig.Pipeline(data=Latents(), network=ig.part("network", "dit", size="S", patch=4, depth=1, width=32,
                                                       heads=2, learn_sigma=True))
    x = torch.randn(3, 4, 8, 8)
    assert pipe.network(x, torch.rand(3)).shape == (3, 8, 8, 8)
    pipe.fit(ig.Train(steps=2, batch_size=4, log_every=1))
    assert pipe.sample(3, steps=2).x.shape == (3, 4, 8, 8)
