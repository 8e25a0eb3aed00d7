"""Samples of bounded data stay in the data's range (issue 13, item 8): image data sets declare
``normalised_range = (-1, 1)`` (pixels in ``[low, high]``), ``Pipeline.sample`` clamps to it after
decoding unless ``raw=True``, and the range travels in the checkpoint so a loaded run clamps too."""

from __future__ import annotations

import pytest
import torch

import interpgen as ig
from interpgen.pipeline import Pipeline

EULER = ig.part("sampler", "euler", steps=2)


@pytest.fixture(scope="module")
def digits_pipe(registry):
    pipe = ig.Pipeline(data=ig.part("dataset", "digits", registry), registry=registry,
                       network=ig.part("network", "mlp", registry, hidden=16, depth=1))
    with torch.no_grad():  # an untrained model whose samples leave the pixel range
        for p in pipe.network.parameters():
            p.normal_(0.0, 1.0, generator=torch.Generator().manual_seed(0))
    return pipe


def test_image_samples_are_clamped_to_the_pixel_range_unless_raw(digits_pipe):
    assert digits_pipe.data.normalised_range == (-1.0, 1.0) and digits_pipe.data_range == (-1.0, 1.0)
    raw = digits_pipe.sample(40, sampler=EULER, seed=1, raw=True).x
    assert float(raw.min()) < 0.0 and float(raw.max()) > 16.0  # digits are 0..16: these left it
    clamped = digits_pipe.sample(40, sampler=EULER, seed=1).x
    assert float(clamped.min()) >= 0.0 and float(clamped.max()) <= 16.0
    torch.testing.assert_close(clamped, raw.clamp(0.0, 16.0))
    # in normalised space ([-1, 1]) as well
    normalised = digits_pipe.sample(40, sampler=EULER, seed=1, data_space=False).x
    torch.testing.assert_close(normalised, ((raw - 8.0) / 8.0).clamp(-1.0, 1.0))


def test_a_loaded_run_clamps_with_the_range_from_its_checkpoint(digits_pipe, registry, tmp_path):
    pipe = ig.Pipeline(data=ig.part("dataset", "digits", registry), registry=registry,
                       network=ig.part("network", "mlp", registry, hidden=16, depth=1))
    pipe.fit(ig.Train(steps=1, batch_size=8, log_every=1, pictures=False), run_dir=tmp_path / "run", progress=False)
    loaded = Pipeline.load(tmp_path / "run", registry=registry)
    assert loaded.data_range == (-1.0, 1.0) and loaded.run_dir == tmp_path / "run"
    loaded.load_state_dict(digits_pipe.state_dict())  # the wide-ranged weights
    raw = loaded.sample(40, sampler=EULER, seed=1, raw=True).x
    assert float(raw.max()) > 16.0
    torch.testing.assert_close(loaded.sample(40, sampler=EULER, seed=1).x, raw.clamp(0.0, 16.0))


def test_unbounded_data_is_never_clamped(registry):
    pipe = ig.Pipeline(data=ig.part("dataset", "moons", registry), registry=registry,
                       network=ig.part("network", "mlp", registry, hidden=8, depth=1))
    assert pipe.data_range is None
    torch.testing.assert_close(pipe.sample(30, sampler=EULER).x, pipe.sample(30, sampler=EULER, raw=True).x)
