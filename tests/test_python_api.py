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
    # moons lie in roughly [-1.5, 2.5] x [-1, 1.5]: a trained model's samples are mostly there
    inside = ((samples[:, 0] > -2) & (samples[:, 0] < 3) & (samples[:, 1] > -1.5) & (samples[:, 1] < 2)).float().mean()
    assert inside > 0.9


def test_part_is_strict():
    with pytest.raises(ig.RecipeError, match="expected an integer, got float 2.5 @ model.hidden"):
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
