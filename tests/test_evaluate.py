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
    assert report["sampling"]["num"] == 300 and report["sampling"]["nfe_per_sample"] == 4
    assert report["reference"] == {"num": 300, "part": "fresh draw", "space": "model"}
    for section in ("metrics", "baseline"):
        assert set(report[section]) == {"sliced_wasserstein", "mmd", "energy_distance"}
        assert all(np.isfinite(v) for v in report[section].values())
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
    assert fd["matched"] > fd["baseline"] > 0 and fd["value"] > 0  # 20 steps of training: far from real
    assert Path(fd["classifier"]).parent == tmp_path / "cache" / "classifiers" and fd["from_cache"] is False
    assert main(["eval", str(run), "--num", "50", "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "[classifier_frechet]" in out and "from_cache" in out and "True" in out
    assert json.loads((run / EVAL_FILE).read_text())["sampling"]["nfe_per_sample"] == 2


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
    assert same["value"] == pytest.approx(0.0, abs=1e-9)
    assert same["matched"] == same["baseline"] > 0 and same["half_size"] == 20 and same["splits"] == 4
    shifted = _frechet(torch.nn.Identity(), x + 1.0, x, splits=4)
    # shifting the samples by (1, 1, 1) moves their mean by sqrt(3), covariances unchanged
    assert shifted["value"] == pytest.approx(3.0, rel=1e-6)  # features are float32
    assert shifted["baseline"] == same["baseline"] and shifted["matched"] != same["matched"]
    assert _sample_labels(torch.tensor([4, 7, 1]), 7).tolist() == [4, 7, 1, 4, 7, 1, 4]
    assert _sample_labels(None, 5) is None
