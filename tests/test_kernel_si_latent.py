"""The ``si`` objective on a frozen autoencoder (latent diffusion, docs/math.md 1.4 and 4): the model
lives in the latent space, the autoencoder does not train, and samples come back decoded in the
data's shape. Both a ``conv`` autoencoder (the lsi objective replaced by si) and a ``pretrained``
one (weights saved from an lsi model) are covered, trained from Python and reloaded from their runs."""

from __future__ import annotations

import pytest
import torch

import interpgen as ig
from interpgen.protocols import Batch
from interpgen_plugins.lsi import save_autoencoder
from interpgen_plugins.si.objective import interpolant_loss

DIGITS = {"labels": False}
CONV = {"channels": 8, "latent_channels": 2}
TRAIN = ig.Train(steps=4, batch_size=16, log_every=2, checkpoint_every=4, sample_every=0, pictures=False,
                 ema_decay=0.5)


def _weights(module):
    return [p.detach().clone() for p in module.parameters()]


def _si_pipe(autoencoder, **kw):
    return ig.Pipeline(data=ig.part("dataset", "digits", **DIGITS), autoencoder=autoencoder,
                       network=ig.part("network", "mlp", hidden=16, depth=1),
                       sampler=ig.part("sampler", "euler", steps=3), **kw)


def _check_trains_and_samples(pipe, tmp_path):
    assert pipe.event_shape == (1, 8, 8) and pipe.latent_shape == (2, 4, 4)
    assert pipe.autoencoder not in pipe.trainable_modules()
    ae_before, net_before = _weights(pipe.autoencoder), _weights(pipe.network)
    run = tmp_path / "run"
    losses = pipe.fit(TRAIN, run_dir=run, progress=False)
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
    assert all(torch.equal(a, b) for a, b in zip(ae_before, pipe.autoencoder.parameters()))  # frozen
    assert any(not torch.equal(a, b) for a, b in zip(net_before, pipe.network.parameters()))  # trained
    out = pipe.sample(6, seed=1)
    assert out.x.shape == (6, 1, 8, 8) and torch.isfinite(out.x).all() and out.nfe == 3
    latents = pipe.sample(6, seed=1, decode=False)
    assert latents.x.shape == (6, 2, 4, 4)
    torch.testing.assert_close(out.x, pipe.to_data_space(pipe.decode(latents.x)), rtol=0, atol=0)
    # the run reloads to the same model
    loaded = ig.Pipeline.load(run)
    assert loaded.latent_shape == (2, 4, 4) and loaded.step == 4
    torch.testing.assert_close(loaded.sample(6, seed=1).x, out.x, rtol=0, atol=0)
    return out


def test_si_on_a_frozen_conv_autoencoder(tmp_path):
    pipe = _si_pipe(ig.part("autoencoder", "conv", **CONV))
    assert ig.registry().entry_for(pipe.recipe.objective).name == "si"
    # the loss is SI's on the encoder's latents mu(x) + c xi (encoder noise drawn first)
    x, _ = next(pipe.data.batches(8, generator=torch.Generator().manual_seed(0)))
    loss = pipe.loss(Batch(x), generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        mean, scale = pipe.autoencoder.encode(x)
        z1 = mean + scale * torch.randn(mean.shape, generator=g)
        expected = interpolant_loss(pipe.network, pipe.interpolant, pipe.prior, pipe.coupling, pipe.objective, z1,
                                    num_classes=None, generator=g)
    torch.testing.assert_close(loss.detach(), expected)
    loss.backward()
    assert all(p.grad is None for p in pipe.autoencoder.parameters())
    _check_trains_and_samples(pipe, tmp_path)


def test_si_on_a_pretrained_autoencoder(tmp_path):
    lsi = ig.Pipeline(data=ig.part("dataset", "digits", **DIGITS), autoencoder=ig.part("autoencoder", "conv", **CONV),
                      interpolant=ig.part("interpolant", "lsi_bridge"), objective=ig.part("objective", "lsi"),
                      network=ig.part("network", "mlp", hidden=16, depth=1), seed=7)
    lsi.fit(ig.Train(steps=3, batch_size=16, log_every=3, sample_every=0, pictures=False), progress=False)
    path = save_autoencoder(lsi, tmp_path / "ae.pt")
    pipe = _si_pipe(ig.part("autoencoder", "pretrained", checkpoint=str(path), autoencoder=CONV | {"name": "conv"}))
    assert getattr(pipe.autoencoder, "frozen", False)
    for a, b in zip(pipe.autoencoder.parameters(), lsi.autoencoder.parameters(), strict=True):
        assert torch.equal(a, b) and not a.requires_grad
    out = _check_trains_and_samples(pipe, tmp_path)
    # decoded by the pretrained decoder: the same latents through lsi's decoder give the same images
    z = pipe.sample(6, seed=1, decode=False).x
    torch.testing.assert_close(out.x, pipe.to_data_space(lsi.decode(z)), rtol=0, atol=0)


def test_a_pretrained_autoencoder_needs_the_frozen_mode_under_lsi(tmp_path):
    """The other side of the same part: the lsi objective refuses to train a pretrained autoencoder."""
    lsi = ig.Pipeline(data=ig.part("dataset", "digits", **DIGITS), autoencoder=ig.part("autoencoder", "conv", **CONV),
                      interpolant=ig.part("interpolant", "lsi_bridge"), objective=ig.part("objective", "lsi"),
                      network=ig.part("network", "mlp", hidden=16, depth=1))
    path = save_autoencoder(lsi, tmp_path / "ae.pt")
    pretrained = ig.part("autoencoder", "pretrained", checkpoint=str(path), autoencoder=CONV | {"name": "conv"})
    common = dict(data=ig.part("dataset", "digits", **DIGITS), autoencoder=pretrained,
                  interpolant=ig.part("interpolant", "lsi_bridge"), network=ig.part("network", "mlp", hidden=16, depth=1))
    with pytest.raises(ValueError, match="set it to 'frozen'"):
        ig.Pipeline(**common, objective=ig.part("objective", "lsi"))
    pipe = ig.Pipeline(**common, objective=ig.part("objective", "lsi", encoder_training="frozen"))
    assert pipe.latent_shape == (2, 4, 4)
