"""The LSI study's recipes and script (benchmarks/lsi_study.py, recipes/lsi/ablations/): every ablation is
its base recipe with exactly the declared change, builds, and the script aggregates, judges and resumes."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

import interpgen as ig
from interpgen.recipe import load_recipe, recipe_to_dict

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("lsi_study", ROOT / "benchmarks" / "lsi_study.py")
study = importlib.util.module_from_spec(spec)
spec.loader.exec_module(study)

#: What each ablation changes in its base (dotted keys of the resolved recipe).
CHANGES = {
    "frozen": {"objective.stop_gradient"},
    "origflow": {"objective.parameterisation"},
    "denoising": {"objective.parameterisation", "sample.sampler.time_change_c"},
    "noisepred": {"objective.parameterisation", "sample.sampler.time_change_c", "sample.sampler.t_start"},
    "prior_laplacian": {"prior.name", "prior.loc", "prior.scale"},
    "prior_uniform": {"prior.name", "prior.low", "prior.high"},
    "prior_mixture": {"prior.name", "prior.std", "prior.seed"},
    "prior_learnable": {"prior.name", "prior.learnable", "prior.mean", "prior.std"},
    "noise_learned": {"autoencoder.learn_noise_scale"},
    "noise_none": {"autoencoder.noise_scale"},
}


def _flat(value, prefix=""):
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: value}


def test_every_variant_has_its_recipe():
    assert set(CHANGES) | {"joint", "pixel"} == set(study.VARIANTS)
    for data in study.BASES:
        for variant in study.VARIANTS:
            assert study.recipe_path(data, variant).is_file(), (data, variant)


@pytest.mark.parametrize("data", ["digits", "faces"])
@pytest.mark.parametrize("variant", sorted(CHANGES))
def test_ablation_is_its_base_with_one_change(registry, data, variant):
    base = _flat(recipe_to_dict(load_recipe(study.recipe_path(data, "joint"), registry), registry))
    recipe = load_recipe(study.recipe_path(data, variant), registry)
    ablation = _flat(recipe_to_dict(recipe, registry))
    changed = {k for k in base.keys() | ablation.keys() if base.get(k) != ablation.get(k)}
    assert changed == CHANGES[variant]
    pipe = ig.Pipeline.from_recipe(recipe, registry=registry, root=study.recipe_path(data, variant).parent)
    assert pipe.objective.noise_head is (variant.startswith("prior_"))  # the score of a non-Gaussian prior


@pytest.mark.parametrize("data", ["digits", "faces"])
def test_pixel_baseline_has_about_the_parameters_and_the_budget(registry, data):
    count = lambda m: sum(p.numel() for p in m.parameters()) if hasattr(m, "parameters") else 0  # noqa: E731
    lsi = ig.Pipeline.from_recipe(load_recipe(study.recipe_path(data, "joint"), registry), registry=registry)
    pixel_recipe = load_recipe(study.recipe_path(data, "pixel"), registry)
    pixel = ig.Pipeline.from_recipe(pixel_recipe, registry=registry)
    total = count(lsi.network) + count(lsi.autoencoder)
    assert abs(total - count(pixel.network)) / count(pixel.network) < 0.06
    assert pixel_recipe.train == lsi.recipe.train and pixel.data.num_classes == lsi.data.num_classes


def test_statistics_saving_and_verdicts():
    assert study.mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0, 3) and study.mean_std([4.0]) == (4.0, 0.0, 1)
    assert study.flops_saving(10.0, 20.0, 100.0, 10) == pytest.approx(1 - 210 / 1000)
    cell = lambda *values: {"100": {"by_seed": {"classifier_frechet": {str(i): v for i, v in enumerate(values)}}}}  # noqa: E731
    # the cuts move every run of a seed together (seed 1 by +4): pairing by seed sees through it
    table = {"digits": {"joint": cell(5.0, 9.0, 5.2), "frozen": cell(6.0, 10.1, 6.1),
                        "origflow": cell(5.5, 8.8, 5.4), "noise_none": cell(4.0, 8.1, 4.1),
                        "noise_learned": cell(7.0)}}
    assert study.verdict(table, "digits", "joint", "frozen") == (
        "holds (gap +1.00 ± s.e. 0.06 over 3 paired seeds)")
    assert study.verdict(table, "digits", "joint", "origflow").startswith("holds in the means, within the seeds' spread")
    assert study.verdict(table, "digits", "joint", "noise_none").startswith("does not hold: the opposite order")
    assert study.verdict(table, "digits", "joint", "noise_learned").endswith("(gap +2.00 ± s.e. 0.00 over 1 paired seeds)")
    assert study.verdict(table, "digits", "joint", "noise_learned").startswith("holds in the means")  # one seed: no "holds"
    assert study.verdict(table, "faces", "joint", "frozen") == "not measured"
    sw = {"joint": {"100": {"by_seed": {"sliced_wasserstein": {"0": 0.10, "1": 0.12}}}},
          "frozen": {"100": {"by_seed": {"sliced_wasserstein": {"0": 0.11, "1": 0.14}}}}}
    assert study.verdict({"digits": sw}, "digits", "joint", "frozen", "sliced_wasserstein") == (
        "holds (gap +0.0150 ± s.e. 0.0050 over 2 paired seeds)")


def _fake_result(data, variant, seed, steps, *, flops_steps, num, cache):
    value = {"joint": 5.0, "frozen": 6.0, "pixel": 4.0}.get(variant, 5.5) + 0.1 * seed
    flops = {"latent_model": 10.0 if variant != "pixel" else 40.0, "decoder": 3.0 if variant != "pixel" else 0.0,
             "encoder": 2.0, "nfe": 101, "sampling_per_sample": 1013.0 if variant != "pixel" else 4000.0,
             "parameters_total": 100, "parameters_latent_model": 90, "parameters_autoencoder": 10}
    evals = {str(n): {"classifier_frechet": value, "classifier_frechet_real": 4.5 + 0.1 * seed, "sliced_wasserstein": 0.1,
                      "flops": flops}
             for n in study.eval_steps(variant, flops_steps)}
    return {"data": data, "variant": variant, "seed": seed, "train_steps": steps, "evals": evals}


def test_the_script_resumes_and_writes_the_tables(tmp_path, monkeypatch):
    calls = []

    def fake(*args, **kw):
        calls.append(args[:3])
        return _fake_result(*args, **kw)

    monkeypatch.setattr(study, "train_and_score", fake)
    argv = ["--data", "digits", "--variants", "joint", "frozen", "pixel", "--seeds", "2", "--steps", "5",
            "--flops-steps", "10", "--out", str(tmp_path)]
    assert study.main(argv) == 0
    assert len(calls) == 6 and len(list((tmp_path / "runs").glob("*.json"))) == 6
    assert study.main(argv) == 0 and len(calls) == 6  # every run is there: nothing runs again
    next(iter((tmp_path / "runs").glob("digits_frozen_s1_*.json"))).unlink()
    assert study.main(argv + ["--seeds", "2"]) == 0 and calls[-1] == ("digits", "frozen", 1) and len(calls) == 7
    table = json.loads((tmp_path / "lsi_study.json").read_text())["table"]
    assert table["digits"]["joint"]["100"]["classifier_frechet"] == pytest.approx([5.05, math.sqrt(0.005), 2])
    assert table["digits"]["joint"]["100"]["excess"] == pytest.approx([0.5, 0.0, 2])  # minus real against real
    md = (tmp_path / "lsi_study.md").read_text()
    assert "| digits | 10 | 74.2% | 74.7% |" in md  # 1 - (3 + 10 * 10) / (10 * 40); 1 - 1013 / 4000
    assert "joint training beats the frozen (beta -> 0) autoencoder (digits): holds (gap +1.00 ± s.e. 0.00 over 2" in md
    assert "| digits | frozen: stop-gradient on z1 (beta -> 0) | 6.05 ± 0.07 (2) | 1.50 ± 0.00 (2) | 0.1000 | - |" in md
    # another budget is another study: the 5-step files are not mixed into it
    monkeypatch.setattr(study, "train_and_score", lambda *a, **k: (_ for _ in ()).throw(AssertionError("ran")))
    assert study.main([*argv, "--steps", "7", "--report"]) == 0
    assert json.loads((tmp_path / "lsi_study.json").read_text())["runs"] == 0
