"""Evaluation: the Fréchet distance against closed forms, the cached feature classifier, and
``interpgen eval`` on trained runs (interpgen/metrics.py, feature_classifier.py, evaluate.py)."""

from __future__ import annotations

import json
import os
import sys
import tempfile

if "datasets" not in sys.modules:  # datasets reads HF_HOME when imported: keep its cache out of ~
    os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="interpgen-test-hf-")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import interpgen as ig  # noqa: E402
from interpgen.cli import main  # noqa: E402
from interpgen_plugins.eval.evaluate import EVAL_FILE, evaluate, load_feature_net  # noqa: E402
from interpgen_plugins.eval.feature_classifier import ClassifierSettings, cached_classifier, classifier_features  # noqa: E402
from interpgen_plugins.eval.metrics import feature_frechet_distance, frechet_distance, gaussian_moments  # noqa: E402
from interpgen_plugins.datasets.finite import FiniteSource  # noqa: E402

f64 = torch.float64


# -- Fréchet distance ---------------------------------------------------------------------------------

def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form():
    m1, m2 = torch.tensor([0.0, 1.0, -2.0], dtype=f64), torch.tensor([1.0, 1.0, 0.0], dtype=f64)
    v1, v2 = torch.tensor([1.0, 4.0, 9.0], dtype=f64), torch.tensor([4.0, 1.0, 0.25], dtype=f64)
    expected = float(((m1 - m2) ** 2).sum() + ((v1.sqrt() - v2.sqrt()) ** 2).sum())  # 5 + (1 + 1 + 6.25)
    assert expected == pytest.approx(13.25)
    assert frechet_distance(m1, torch.diag(v1), m2, torch.diag(v2)) == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_of_full_covariances_matches_scipy_sqrtm():
    from scipy.linalg import sqrtm

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    s1, s2 = a @ a.T + 0.1 * np.eye(4), b @ b.T
    m1, m2 = rng.normal(size=4), rng.normal(size=4)
    root = sqrtm(s1)
    expected = np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * np.real(sqrtm(root @ s2 @ root)))
    got = frechet_distance(*(torch.from_numpy(v) for v in (m1, s1, m2, s2)))
    assert got == pytest.approx(float(expected), rel=1e-9)
    assert got == pytest.approx(frechet_distance(*(torch.from_numpy(v) for v in (m2, s2, m1, s1))), rel=1e-9)
    assert frechet_distance(torch.from_numpy(m1), torch.from_numpy(s1), torch.from_numpy(m1),
                            torch.from_numpy(s1)) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_in_one_dimension_and_bad_shapes():
    # (m1 - m2)^2 + (s1 - s2)^2 for N(1, 2^2) and N(-1, 0.5^2)
    value = frechet_distance(torch.tensor([1.0]), torch.tensor([[4.0]]), torch.tensor([-1.0]), torch.tensor([[0.25]]))
    assert value == pytest.approx(4.0 + 1.5 ** 2)
    with pytest.raises(ValueError, match=r"cov2 must have shape \(2, 2\) to match the means, got \(3, 3\)"):
        frechet_distance(torch.zeros(2), torch.eye(2), torch.zeros(2), torch.eye(3))


def test_feature_frechet_distance_uses_fitted_moments():
    x = torch.randn(500, 3, generator=torch.Generator().manual_seed(0), dtype=f64)
    y = 2.0 * torch.randn(400, 3, generator=torch.Generator().manual_seed(1), dtype=f64) + 1.0
    mean, cov = gaussian_moments(x)
    assert torch.allclose(cov, torch.from_numpy(np.cov(x.numpy(), rowvar=False)), atol=1e-12)
    assert feature_frechet_distance(x, y) == pytest.approx(frechet_distance(mean, cov, *gaussian_moments(y)))
    assert feature_frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)


# -- the feature classifier -----------------------------------------------------------------------------

def _blobs(shift: float = 0.0) -> FiniteSource:
    """Two separable classes in 4-D: class c is centred at (-1)^(c+1) * 2 in every coordinate."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(120) % 2
    x = torch.randn(120, 4, generator=g) * 0.5 + (2.0 * labels - 1.0)[:, None] * 2.0 + shift
    return FiniteSource(x[:100], labels=labels[:100], num_classes=2, heldout=x[100:], heldout_labels=labels[100:])


def test_classifier_is_trained_once_cached_and_keyed_by_the_data(tmp_path):
    settings = ClassifierSettings(epochs=3, batch_size=20, width=8, features=6)
    first = cached_classifier(_blobs(), settings, directory=tmp_path)
    assert not first.from_cache and first.path.parent == tmp_path and first.path.is_file()
    assert first.test_accuracy == 1.0
    again = cached_classifier(_blobs(), settings, directory=tmp_path)
    assert again.from_cache and again.path == first.path and again.test_accuracy == first.test_accuracy
    x = _blobs().take("heldout")[0]
    assert torch.equal(classifier_features(again.model, x), classifier_features(first.model, x))
    assert classifier_features(first.model, x).shape == (20, 6)
    other = cached_classifier(_blobs(shift=0.1), settings, directory=tmp_path)
    assert other.path != first.path and not other.from_cache
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, no leftovers


def test_classifier_needs_labels(tmp_path):
    with pytest.raises(ValueError, match="needs class labels, and this data set has none"):
        cached_classifier(FiniteSource(torch.zeros(4, 2)), directory=tmp_path)


# -- evaluate and `interpgen eval` ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def moons_pipe():
    pipe = ig.Pipeline(data=ig.part("dataset", "moons"), network=ig.part("network", "mlp", hidden=16, depth=2),
                       sampler=ig.part("sampler", "euler", steps=4))
    pipe.fit(ig.Train(steps=20, batch_size=64, log_every=10))
    return pipe


def test_evaluate_synthetic_data_against_fresh_draws(moons_pipe):
    report = evaluate(moons_pipe, moons_pipe.data, num=300, seed=0)
    sampling = report["sampling"]
    assert sampling["num"] == 300 and sampling["nfe_per_sample"] == 4
    assert sampling["sampler"] == "euler" and sampling["steps"] == 4  # the registered name and the steps used
    assert report["reference"] == {"num": 300, "part": "fresh draw", "space": "model"}
    for section in ("metrics", "baseline"):
        assert set(report[section]) == {"sliced_wasserstein", "mmd", "energy_distance", "sizes"}
        assert all(np.isfinite(v) for k, v in report[section].items() if k != "sizes")
    assert report["metrics"]["sizes"] == "300 samples vs 300 reference rows"
    assert report["baseline"]["sizes"] == "300 rows of a second fresh draw vs 300 reference rows"
    # an untrained-ish model is farther from the data than a second draw of the data itself
    assert report["metrics"]["energy_distance"] > report["baseline"]["energy_distance"]
    assert report["classifier_frechet"] == {"skipped": "needs a finite data set with class labels"}
    assert evaluate(moons_pipe, moons_pipe.data, num=300, seed=0)["metrics"] == report["metrics"]


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_feature_net_frechet_distance(moons_pipe, tmp_path):
    net = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh()))
    net.save(str(tmp_path / "features.pt"))
    report = evaluate(moons_pipe, moons_pipe.data, num=200, classifier=False, feature_net=tmp_path / "features.pt")
    section = report["feature_net_frechet"]
    assert section["value"] > 0 and section["baseline"] >= 0 and section["half_size"] == 100
    assert "classifier_frechet" not in report
    with pytest.raises(FileNotFoundError, match="feature network .*missing.pt does not exist"):
        load_feature_net(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="is not a TorchScript feature network"):
        load_feature_net(tmp_path / "junk.pt")


DIGITS_RECIPE = """
[data]
name = "digits"
holdout = 0.2

[network]
name = "mlp"
hidden = 32
depth = 2

[objective]
label_dropout = 0.1

[train]
steps = 20
batch_size = 32
log_every = 10
checkpoint_every = 20

[sample]
sampler = { name = "euler", steps = 3 }
"""


@pytest.mark.slow
def test_eval_command_on_a_digits_run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INTERPGEN_CACHE", str(tmp_path / "cache"))
    (tmp_path / "digits.toml").write_text(DIGITS_RECIPE)
    run = tmp_path / "run"
    assert main(["train", str(tmp_path / "digits.toml"), "--output", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--num", "100", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((run / EVAL_FILE).read_text())
    assert printed == saved
    assert saved["run"]["data"] == "digits" and saved["run"]["step"] == 20
    assert saved["sampling"]["num"] == 100 and saved["sampling"]["conditional"] is True
    assert saved["reference"]["part"] == "heldout" and saved["reference"]["num"] == 100
    fd = saved["classifier_frechet"]
    assert fd["classifier_test_accuracy"] > 0.85 and fd["half_size"] == 50 and fd["splits"] == 20
    assert fd["value"] > fd["baseline"] > 0 and fd["all_rows"] > 0  # 20 steps of training: far from real
    # the headline and its baseline at the same sizes; the all-rows number labelled by its own
    assert fd["sizes"] == ("50 samples (baseline: 50 reference rows) vs the other 50 reference rows, "
                           "mean over 20 random halvings")
    assert fd["all_rows_sizes"] == "100 samples vs 100 reference rows"
    assert saved["sampling"]["sampler"] == "euler" and saved["sampling"]["steps"] == 3
    assert Path(fd["classifier"]).parent == tmp_path / "cache" / "classifiers" and fd["from_cache"] is False
    assert main(["eval", str(run), "--num", "50", "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "[classifier_frechet]" in out and "from_cache" in out and "True" in out
    assert json.loads((run / EVAL_FILE).read_text())["sampling"]["nfe_per_sample"] == 2
    # class-conditional samples as a picture: one row per class
    assert main(["sample", str(run), "--num", "40", "--output", str(tmp_path / "digits.png")]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        f"wrote (40, 1, 8, 8) samples to {tmp_path / 'digits.png'} as a picture: one row per class, at most 16 "
        "images each")
    # holdout = 0: the reference is the training rows, and the report says so
    from interpgen.plugin_manager import registry
    from interpgen_plugins.eval.evaluate import load_run

    pipe = load_run(run)
    spec = ig.part("dataset", "digits", holdout=0)
    source = registry().entry_for(spec).create(spec, root=pipe.root, registry=registry())
    report = evaluate(pipe, source, num=100, cache=tmp_path / "cache")
    assert report["reference"]["part"] == "training rows (holdout = 0: nothing is held out)"
    assert report["baseline"]["sizes"] == "100 other training rows vs 100 reference rows"
    assert "classifier_train_accuracy" in report["classifier_frechet"]
    assert "classifier_test_accuracy" not in report["classifier_frechet"]


def test_eval_command_reports_a_bad_run_dir(tmp_path, capsys):
    assert main(["eval", str(tmp_path / "nope")]) == 2
    assert f"run directory {tmp_path / 'nope'} does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["eval", str(tmp_path / "empty")]) == 2
    assert "is not an interpgen run directory" in capsys.readouterr().err


def test_matched_and_baseline_use_the_same_cuts():
    from interpgen_plugins.eval.evaluate import _frechet, _sample_labels

    x = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
    same = _frechet(torch.nn.Identity(), x, x, splits=4)
    assert same["all_rows"] == pytest.approx(0.0, abs=1e-9)
    # the headline value is at the baseline's sizes (half A vs half B): samples equal to the
    # reference score exactly the baseline
    assert same["value"] == same["baseline"] > 0 and same["half_size"] == 20 and same["splits"] == 4
    assert same["sizes"] == "20 samples (baseline: 20 reference rows) vs the other 20 reference rows, mean over 4 " \
        "random halvings" and same["all_rows_sizes"] == "40 samples vs 40 reference rows"
    shifted = _frechet(torch.nn.Identity(), x + 1.0, x, splits=4)
    # shifting the samples by (1, 1, 1) moves their mean by sqrt(3), covariances unchanged
    assert shifted["all_rows"] == pytest.approx(3.0, rel=1e-6)  # features are float32
    assert shifted["baseline"] == same["baseline"] and shifted["value"] != same["value"]
    generator = torch.Generator().manual_seed(0)
    expected = []
    for _ in range(4):  # the headline by hand: A's samples against B, over the same cuts
        order = torch.randperm(40, generator=generator)
        expected.append(feature_frechet_distance(x[order[:20]] + 1.0, x[order[20:]]))
    assert shifted["value"] == pytest.approx(sum(expected) / 4, rel=1e-12)
    assert _frechet(torch.nn.Identity(), x[:3], x[:3]) == {"value": pytest.approx(0.0, abs=1e-9),
                                                           "sizes": "3 samples vs 3 reference rows"}
    assert _sample_labels(torch.tensor([4, 7, 1]), 7).tolist() == [4, 7, 1, 4, 7, 1, 4]
    assert _sample_labels(None, 5) is None


def test_holdout_zero_is_labelled_as_the_training_rows(moons_pipe):
    from interpgen_plugins.eval.metrics import energy_distance

    rows = moons_pipe.data.reference(200, generator=torch.Generator().manual_seed(5))
    report = evaluate(moons_pipe, FiniteSource(rows), num=150, seed=3, classifier=False)  # nothing held out
    assert report["reference"] == {"num": 100, "part": "training rows (holdout = 0: nothing is held out)",
                                   "space": "model"}
    assert report["metrics"]["sizes"] == "150 samples vs 100 reference rows"
    assert report["baseline"]["sizes"] == "100 other training rows vs 100 reference rows"
    order = torch.randperm(200, generator=torch.Generator().manual_seed(3))  # disjoint halves of the rows
    expected = energy_distance(rows[order[100:]], rows[order[:100]])
    assert report["baseline"]["energy_distance"] == pytest.approx(expected, rel=1e-12)


@pytest.fixture(scope="module")
def moons_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("eval") / "run"
    assert main(["train", "--output", str(run), "--quiet", "--set", "data.name=moons", "--set", "network.hidden=16",
                 "--set", "train.steps=4", "--set", "train.batch_size=16", "--set", "train.log_every=2",
                 "--set", "train.checkpoint_every=4", "--set", "train.sample_every=0"]) == 0
    return run


def test_eval_takes_the_sampling_options_of_sample(moons_run, capsys):
    capsys.readouterr()
    assert main(["eval", str(moons_run), "--num", "200", "--sampler", "midpoint", "--nfe", "6", "--seed", "2",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    sampling = report["sampling"]
    assert (sampling["sampler"], sampling["steps"], sampling["nfe_per_sample"], sampling["nfe_budget"]) == (
        "midpoint", 3, 6, 6)
    assert report["run"]["seed"] == 2 and (report["flops"]["steps"], report["flops"]["nfe"]) == (3, 6)
    assert main(["eval", str(moons_run), "--set", "sample.num=120", "--set", "sample.sampler.name=dopri5",
                 "--json"]) == 0
    sampling = json.loads(capsys.readouterr().out)["sampling"]
    assert sampling["num"] == 120 and sampling["sampler"] == "dopri5" and sampling["steps"] == "adaptive"
    assert main(["eval", str(moons_run), "--num", "100", "--sampler", "heun", "--steps", "2"]) == 0
    text = capsys.readouterr().out
    assert "  sampler                    heun\n  steps                      2\n" in text
    assert "None" not in text and "Sampler" not in text


@pytest.mark.parametrize("args, message", [
    (["--set", "train.lr=1"], "--set changes only sample.* keys of a trained run"),
    (["--set", "sample.sampler.steps=0"], "steps must be an integer >= 1, got 0 @ sample.sampler.steps"),
    (["--sampler", "heun", "--nfe", "5"], "the nearest budgets it can hit: 4 (--steps 2) and 6 (--steps 3)"),
    (["--guidance", "2"], "guidance=2.0 needs a class-conditional model"),
    (["--guidance", "nan"], "--guidance must be a finite number, got nan"),
    (["--num", "0"], "--num must be an integer >= 1, got 0"),
    (["--num", "1"], "--num must be an integer >= 2, got 1"),
])
def test_eval_refuses_bad_values_with_one_message(moons_run, capsys, args, message):
    before = (moons_run / EVAL_FILE).read_bytes() if (moons_run / EVAL_FILE).exists() else None
    capsys.readouterr()
    assert main(["eval", str(moons_run), *args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: ") and message in err and "Traceback" not in err
    assert ((moons_run / EVAL_FILE).read_bytes() if (moons_run / EVAL_FILE).exists() else None) == before
