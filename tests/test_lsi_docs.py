"""docs/lsi.md: its Python composition example (a user's own learnable prior + an autoencoder + a
latent network) runs as written, trains the user's prior and returns decoded samples."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

DOC = Path(__file__).resolve().parents[1] / "docs" / "lsi.md"


@pytest.mark.slow
def test_lsi_composition_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert blocks, "docs/lsi.md lost its Python example"
    namespace: dict = {}
    exec(compile(blocks[0], str(DOC), "exec"), namespace)
    pipe, samples = namespace["pipe"], namespace["samples"]
    from interpgen_plugins.lsi.objective import LSIObjective
    from interpgen_plugins.eval.metrics import sliced_wasserstein
    from interpgen_plugins.datasets.shapes import moons

    assert isinstance(pipe.objective, LSIObjective) and not getattr(pipe.autoencoder, "is_identity", False)
    assert type(pipe.prior).__name__ == "MixturePrior" and pipe.prior in pipe.trainable_modules()
    start = namespace["MixturePrior"]().means
    assert not torch.allclose(pipe.prior.means.detach(), start)  # the user's prior was trained
    assert samples.shape == (1000, 2) and torch.isfinite(samples).all()
    target = moons(2000, torch.Generator().manual_seed(1))
    untrained = pipe.decode(pipe.prior.sample(1000, (2,), generator=torch.Generator().manual_seed(2)))
    gen = torch.Generator().manual_seed(3)
    assert sliced_wasserstein(samples, target, generator=gen) < 0.5 * sliced_wasserstein(untrained, target, generator=gen)
