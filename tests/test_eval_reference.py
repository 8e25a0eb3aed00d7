"""Scoring a run against other data (issue 13, item 9): a reflowed run against the original run's
data (``reference_run``), or against a named data set (``reference_data``), with the rows mapped
into the run's normalised space when the two are normalised differently."""

from __future__ import annotations

import pytest
import torch

import interpgen as ig
from interpgen_plugins.eval.evaluate import evaluate_run
from interpgen_plugins.eval.reference import InRunSpace, reference_source
from interpgen_plugins.reflow.pairs import generate_pairs, save_pairs

TRAIN = ig.Train(steps=3, batch_size=32, log_every=1, pictures=False)
CHEAP = {"num": 64, "steps": 2, "sampler": "euler", "classifier": False, "write": False}


@pytest.fixture(scope="module")
def runs(registry, tmp_path_factory):
    """An original moons run and one reflow round trained on its pairs."""
    root = tmp_path_factory.mktemp("reflow")
    mlp = ig.part("network", "mlp", registry, hidden=16, depth=1)
    first = ig.Pipeline(data=ig.part("dataset", "moons", registry), registry=registry, network=mlp)
    first.fit(TRAIN, run_dir=root / "original", progress=False)
    pairs = save_pairs(root / "pairs.npz", generate_pairs(first, 256, sampler="euler", steps=4), first.data_affine)
    second = ig.Pipeline(data=ig.part("dataset", "paired", registry, path=str(pairs)), registry=registry,
                         network=mlp, coupling=ig.part("coupling", "paired", registry))
    second.fit(TRAIN, run_dir=root / "reflow", progress=False)
    return root


def test_a_reflowed_run_is_scored_against_the_original_runs_data(runs, registry):
    own = evaluate_run(runs / "reflow", registry=registry, **CHEAP)
    assert own["run"]["scored_against"] == "the run's own data"  # the pairs: the previous model's samples
    original = evaluate_run(runs / "original", registry=registry, **CHEAP)
    against = evaluate_run(runs / "reflow", registry=registry, reference_run=runs / "original", **CHEAP)
    assert against["run"]["scored_against"] == f"the data of run {(runs / 'original').resolve()}"
    # the same reference and real rows as the original run's own evaluation: moons, not the pairs
    assert against["baseline"] == original["baseline"] != own["baseline"]


def test_a_named_data_set_and_bad_references(runs, registry):
    pipe = ig.Pipeline.load(runs / "reflow", registry=registry)
    source, about = reference_source(pipe, registry, data="moons")
    assert about == "data set 'moons'" and tuple(source.event_shape) == (2,)
    report = evaluate_run(runs / "reflow", registry=registry, reference_data={"name": "moons", "noise": 0.05},
                          **CHEAP)
    assert report["run"]["scored_against"] == "data set 'moons'"
    with pytest.raises(ValueError, match=r"data set 'digits' has event shape \(1, 8, 8\), but the run's samples "
                                         r"have \(2,\)"):
        reference_source(pipe, registry, data="digits")
    with pytest.raises(ValueError, match="not both"):
        reference_source(pipe, registry, data="moons", reference_run=runs / "original")
    with pytest.raises(ig.CheckpointError, match="reference run .* does not exist"):
        reference_source(pipe, registry, reference_run=runs / "nowhere")


def test_rows_are_mapped_into_the_runs_normalised_space():
    class Source:  # stored in its own space: data = 1 + 2 x
        event_shape, num_classes = (2,), None

        def take(self, part, index=None):
            return torch.tensor([[0.0, 1.0], [2.0, -1.0]]), None

        def reference(self, num, *, generator):
            return torch.tensor([[0.5, 0.5]])

    run_affine = (torch.tensor([3.0, 3.0]), torch.tensor([4.0, 4.0]))  # the run: data = 3 + 4 x
    mapped = InRunSpace(Source(), (torch.tensor(1.0), torch.tensor(2.0)), run_affine)
    x, _ = mapped.take("train")
    torch.testing.assert_close(x, (1 + 2 * torch.tensor([[0.0, 1.0], [2.0, -1.0]]) - 3) / 4)
    torch.testing.assert_close(mapped.reference(1, generator=None), torch.tensor([[-0.25, -0.25]]))
    assert mapped.data_affine() is run_affine and mapped.event_shape == (2,)
