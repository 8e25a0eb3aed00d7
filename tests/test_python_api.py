"""The Python API: the guide's example runs as written; user objects work beside registered parts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import interpgen as ig

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide.md"


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.mark.slow
def test_guide_example_runs(capsys):
    blocks = _python_blocks(GUIDE.read_text())
    assert blocks, "docs/guide.md lost its Python example"
    namespace: dict = {}
    exec(compile(blocks[0], str(GUIDE), "exec"), namespace)
    pipe, samples, logp = namespace["pipe"], namespace["samples"], namespace["logp"]
    assert samples.shape == (500, 2) and torch.isfinite(samples).all()
    assert logp.shape == (64,) and torch.isfinite(logp).all()
    # the user's prior was used as given, not replaced by a registered one
    assert type(pipe.prior).__name__ == "WidePrior"
    # the model moved the wide prior most of the way onto the moons
    from interpgen_plugins.eval.metrics import sliced_wasserstein
    from interpgen_plugins.datasets.shapes import moons

    target = moons(2000, torch.Generator().manual_seed(1))
    start = pipe.prior.sample(500, (2,), generator=torch.Generator().manual_seed(2))
    gen = torch.Generator().manual_seed(3)
    assert sliced_wasserstein(samples, target, generator=gen) < 0.4 * sliced_wasserstein(start, target, generator=gen)


def test_part_is_strict():
    with pytest.raises(ig.RecipeError, match="expected an integer, got float 2.5 @ network.hidden"):
        ig.part("network", "mlp", hidden=2.5)
    with pytest.raises(ig.RecipeError, match="unknown sampler 'eulr'; installed: .*euler"):
        ig.part("sampler", "eulr")


def test_sde_sampler_needs_a_score():
    class Box:
        standard_normal = False

        def sample(self, num, shape, *, generator=None, device=None, dtype=None):
            return torch.rand(num, *shape, generator=generator) * 2 - 1

        def log_prob(self, x):
            return torch.zeros(x.shape[0])

    pipe = ig.Pipeline(data=ig.part("dataset", "moons"), prior=Box())
    with pytest.raises(ValueError, match="needs the score"):
        pipe.sample(4, sampler=ig.part("sampler", "euler_maruyama", steps=4))
