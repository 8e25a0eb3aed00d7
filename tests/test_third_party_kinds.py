"""Every kind the example third-party plugin (tests/fixtures/interpgen-power-plugin) registers, exercised
end to end: the ``laplace`` prior, ``norm_sort`` coupling, ``ralston`` sampler, ``weighted_si``
objective and the ``power-info`` command (the ``power`` interpolant: test_third_party_plugin.py).
Each is checked against a closed form; a recipe using them trains, samples and is described by the
command from the command line."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import math
import os
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import interpgen as ig
from interpgen.cli import main
from interpgen.protocols import Batch

DIST = "interpgen-power-plugin"
PACKAGE = Path(__file__).parent / "fixtures" / DIST / "interpgen_power"
PARTS = {("interpolant", "power"), ("prior", "laplace"), ("coupling", "norm_sort"), ("sampler", "ralston"),
         ("objective", "weighted_si"), ("command", "power-info")}


@pytest.fixture(scope="module", autouse=True)
def installed():
    try:
        importlib.metadata.distribution(DIST)
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(f"{DIST} is not installed: run `pip install -e tests/fixtures/{DIST}` (see README)")
    ig.reload_plugins()


# -- registration -------------------------------------------------------------------------------------

def test_every_piece_is_listed_with_its_distribution(capsys):
    assert main(["plugins", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    mine = {(kind, e["name"]) for kind, entries in report.items() if kind != "failed"
            for e in entries if e["distribution"] == DIST}
    assert mine == PARTS
    assert all(e["plugin"] == "power" for kind, name in PARTS for e in report[kind] if e["name"] == name)
    assert not [f for f in report["failed"] if f["distribution"] == DIST]


def test_built_from_kernel_exports_only():
    """The fixture imports ``interpgen`` (never ``interpgen_plugins``) and defines no removed hook."""
    import interpgen_power
    from interpgen.hookspecs import REMOVED_HOOKS

    imported = set()
    for source in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module)
    assert "interpgen.fields" in imported and not [m for m in imported if m.startswith("interpgen_plugins")]
    assert not [hook for hook in REMOVED_HOOKS if hasattr(interpgen_power, hook)]


# -- prior ----------------------------------------------------------------------------------------------

def test_laplace_log_prob_matches_torch_distributions():
    prior = ig.registry().create("prior", "laplace", ig.part("prior", "laplace", scale=0.7), event_shape=(2, 3))
    x = torch.randn(16, 2, 3, dtype=torch.float64) * 2
    expected = torch.distributions.Laplace(0.0, 0.7).log_prob(x).sum(dim=(1, 2))
    torch.testing.assert_close(prior.log_prob(x), expected)
    assert prior.standard_normal is False


def test_laplace_samples_have_its_distribution():
    prior = ig.registry().create("prior", "laplace", ig.part("prior", "laplace", scale=0.5), event_shape=(2,))
    x = prior.sample(50_000, (2,), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert x.shape == (50_000, 2) and x.dtype == torch.float64 and torch.isfinite(x).all()
    again = prior.sample(50_000, (2,), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.equal(x, again)
    # Kolmogorov-Smirnov distance to the Laplace(0, 0.5) CDF (0.006 is p ~ 0.01 at n = 100000)
    flat = x.flatten().sort().values
    cdf = torch.distributions.Laplace(0.0, 0.5).cdf(flat)
    n = flat.numel()
    ks = torch.maximum((torch.arange(1, n + 1) / n - cdf).abs(), (torch.arange(n) / n - cdf).abs()).max()
    assert ks < 0.006
    with pytest.raises(ValueError, match=r"built for event shape \(2,\), got \(3,\)"):
        prior.sample(4, (3,))


def test_laplace_scale_is_checked():
    with pytest.raises(ig.RecipeError, match=r"scale must be a finite number > 0, got -1.0 @ prior"):
        ig.part("prior", "laplace", scale=-1.0)


# -- coupling -------------------------------------------------------------------------------------------

def test_norm_sort_pairs_by_rank_of_norms_and_keeps_marginals():
    coupling = ig.part("coupling", "norm_sort")
    g = torch.Generator().manual_seed(1)
    x0, x1 = torch.randn(64, 3, generator=g), 3 * torch.randn(64, 3, generator=g)
    paired, same = coupling.pair(x0, x1)
    assert same is x1
    torch.testing.assert_close(paired.norm(dim=1).sort().values, x0.norm(dim=1).sort().values)
    assert torch.equal(paired[paired.norm(dim=1).argsort()], x0[x0.norm(dim=1).argsort()])  # rows kept whole
    by_x1 = x1.norm(dim=1).argsort()
    assert (paired.norm(dim=1)[by_x1].diff() >= 0).all()  # co-monotone norms


# -- sampler --------------------------------------------------------------------------------------------

class AnalyticField:
    """A Field with velocity ``b(t, x)`` given in closed form, over ``[0, 1]``."""

    interpolant = None

    def __init__(self, velocity):
        self.velocity, self.nfe = velocity, 0

    def available(self):
        return ("velocity",)

    def evaluate(self, x, t, wants):
        assert wants == ("velocity",) and t.shape == (x.shape[0],)
        self.nfe += 1
        return (self.velocity(t, x),)

    def time_range(self, stochastic):
        return (0.0, 1.0)


def _relative_error(velocity, exact, steps):
    x0 = torch.linspace(-2, 2, 9, dtype=torch.float64).reshape(9, 1)
    field = AnalyticField(velocity)
    result = ig.part("sampler", "ralston", steps=steps).sample(field, x0)
    assert result.nfe == field.nfe == 2 * steps and result.trajectory is None
    return float((result.x - exact(x0)).abs().max() / exact(x0).abs().max())


@pytest.mark.parametrize("velocity, exact", [
    (lambda t, x: -x, lambda x0: x0 * math.exp(-1.0)),                           # x(t) = x0 e^{-t}
    (lambda t, x: (1 + t[:, None]) * x, lambda x0: x0 * math.exp(1.5)),           # x(t) = x0 e^{t + t^2/2}
], ids=["decay", "time-dependent"])
def test_ralston_is_second_order(velocity, exact):
    errors = [_relative_error(velocity, exact, steps) for steps in (16, 32, 64)]
    assert errors[-1] < 5e-4
    for coarse, fine in zip(errors, errors[1:]):
        assert 3.6 < coarse / fine < 4.4  # global error O(h^2)


def test_ralston_stages_are_ralstons():
    """One step: ``x0 (1 - h + h^2/2)`` for b = -x (every RK2), and exactly ``x0 + 1`` for b = 3 t^2,
    which only Ralston's nodes and weights (1/4 at t, 3/4 at t + 2h/3) integrate exactly (Heun gives 3/2)."""
    x0 = torch.tensor([[2.0], [-1.0]], dtype=torch.float64)
    one = ig.part("sampler", "ralston", steps=1)
    torch.testing.assert_close(one.sample(AnalyticField(lambda t, x: -x), x0).x, 0.5 * x0)
    quadratic = AnalyticField(lambda t, x: 3 * t[:, None] ** 2 * torch.ones_like(x))
    torch.testing.assert_close(one.sample(quadratic, x0).x, x0 + 1)
    result = ig.part("sampler", "ralston", steps=4).sample(quadratic, x0, return_trajectory=True)
    assert result.trajectory.shape == (5, 2, 1)
    torch.testing.assert_close(result.trajectory[:, 0, 0], 2 + torch.linspace(0, 1, 5, dtype=torch.float64) ** 3)


def test_ralston_integrates_backward_as_an_ode_solver():
    y1 = torch.tensor([[1.0, -3.0]], dtype=torch.float64)
    y0, calls = ig.part("sampler", "ralston", steps=64).integrate(lambda t, y: y, y1, 1.0, 0.0)
    assert calls == 128
    torch.testing.assert_close(y0, y1 * math.exp(-1.0), atol=1e-4, rtol=0)


# -- objective ------------------------------------------------------------------------------------------

def _pipeline(**objective):
    return ig.Pipeline(data=ig.part("dataset", "eight_gaussians"), prior=ig.part("prior", "laplace"),
                       interpolant=ig.part("interpolant", "power", p=2.0),
                       objective=ig.part("objective", "weighted_si", **objective),
                       network=ig.part("network", "mlp", hidden=8, depth=1))


@pytest.mark.parametrize("a, b", [(0.0, 0.0), (1.0, 0.5), (2.0, 3.0)])
def test_weighted_si_loss_of_a_zero_network_is_the_weighted_target_energy(a, b):
    """With f = 0 and the batch's own x0, the loss is mean_i w(t_i) mean_d T_i^2 with
    T = alpha' x0 + beta' x1 = p (1-t)^(p-1) (x1 - x0) and w = t^a (1-t)^b; t is the only draw."""
    pipe = _pipeline(a=a, b=b, t_eps=0.01)
    g = torch.Generator().manual_seed(3)
    x0, x1 = torch.randn(512, 2, generator=g), torch.randn(512, 2, generator=g) + 2
    loss = pipe.loss(Batch(x1, x0=x0, coupled=True), generator=torch.Generator().manual_seed(7),
                     network=lambda x, t: torch.zeros_like(x))
    t = 0.01 + 0.98 * torch.rand(512, generator=torch.Generator().manual_seed(7))
    target_sq = (2 * (1 - t)[:, None] * (x1 - x0)).pow(2).mean(dim=1)
    expected = (t ** a * (1 - t) ** b * target_sq).mean()
    torch.testing.assert_close(loss, expected)


def test_weighted_si_trains_the_velocity_and_is_checked():
    pipe = _pipeline(b=1.0)
    assert pipe.objective.t_eps == 0.0 and pipe.objective.heads == 1  # power's default for velocity
    field = pipe.field()
    assert field.predictions == ("velocity",) and "velocity" in field.available()
    with pytest.raises(ig.RecipeError, match=r"a must be a finite number >= 0, got -1.0 @ objective"):
        ig.part("objective", "weighted_si", a=-1.0)
    with pytest.raises(ValueError, match="weighted_si' trains in data space and needs the identity autoencoder"):
        ig.Pipeline(data=ig.part("dataset", "eight_gaussians"), autoencoder=ig.part("autoencoder", "dense"),
                    objective=ig.part("objective", "weighted_si"))


# -- end to end: recipe, train, sample with ralston, power-info -------------------------------------------

RECIPE = """
[data]
name = "eight_gaussians"

[prior]
name = "laplace"
scale = 0.7

[interpolant]
name = "power"
p = 1.5

[coupling]
name = "norm_sort"

[objective]
name = "weighted_si"
b = 1.0

[network]
name = "mlp"
hidden = 64
depth = 2

[train]
steps = 300
batch_size = 256
lr = 3e-3
log_every = 100
checkpoint_every = 300
pictures = false
"""


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("kinds")
    (root / "recipe.toml").write_text(RECIPE)
    run = root / "run"
    assert main(["train", str(root / "recipe.toml"), "--output", str(run), "--quiet"]) == 0
    return run


@pytest.mark.slow
def test_recipe_of_the_plugin_parts_trains_and_samples_with_ralston(trained_run, tmp_path, capsys):
    saved = (trained_run / "recipe.toml").read_text()
    for name in ("laplace", "power", "norm_sort", "weighted_si"):
        assert f'name = "{name}"' in saved
    out = tmp_path / "x.npy"
    assert main(["sample", str(trained_run), "--sampler", "ralston", "--steps", "10", "--num", "500",
                 "--output", str(out)]) == 0
    assert "(20 network evaluations per sample)" in capsys.readouterr().out
    x = np.load(out)
    assert x.shape == (500, 2) and np.isfinite(x).all()
    # the eight Gaussians (noise 0.3) sit at radius 2.8, angles k pi/4: most samples are near one
    # (2% of Laplace(0.7) draws are), and every mode is found
    angles = np.arange(8) * np.pi / 4
    centres = 2.8 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    distance = np.linalg.norm(x[:, None] - centres[None], axis=2)
    assert (distance.min(axis=1) < 1.0).mean() > 0.6
    assert np.bincount(distance.argmin(axis=1), minlength=8).min() >= 20


@pytest.mark.slow
def test_power_info_describes_the_run(trained_run, capsys):
    assert main(["power-info", str(trained_run), "--times", "0,0.5,1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    fields = {line.split()[0]: line.split(None, 1)[1] for line in lines[:7]}
    pipe = ig.Pipeline.load(trained_run)
    count = sum(p.numel() for p in pipe.network.parameters())
    assert fields["step"] == "300" and fields["network"] == f"mlp, {count} parameters"
    assert (fields["prior"], fields["interpolant"], fields["coupling"], fields["objective"]) == (
        "laplace", "power", "norm_sort", "weighted_si")
    rows = [[float(v) for v in line.split()] for line in lines[8:]]
    expected = [[t, (1 - t) ** 1.5, 1 - (1 - t) ** 1.5, 0.0] for t in (0.0, 0.5, 1.0)]
    np.testing.assert_allclose(rows, expected, atol=1e-6)


@pytest.mark.parametrize("argv, message", [
    (["--times", "0.5,2"], "error: --times must be comma-separated numbers in [0, 1], got '0.5,2'"),
    (["--times", "half"], "error: --times must be comma-separated numbers in [0, 1], got 'half'"),
    ([], "is not an interpgen run directory (no recipe.toml)"),
], ids=["time-outside", "not-a-number", "not-a-run"])
def test_power_info_bad_argument_is_one_message(tmp_path, capsys, argv, message):
    assert main(["power-info", str(tmp_path), *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1 and message in captured.err


# -- docs/plugins.md section 2: the examples run as written ---------------------------------------------

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def _section_two_examples() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## 2. Parts of every kind", 1)[1].split("\n## 3.", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


@pytest.mark.slow
def test_docs_examples_of_every_kind_run(tmp_path, monkeypatch, capsys):
    """The blocks of section 2 but the last, in order, are ``my_plugin.py``; the last trains with it."""
    *plugin_blocks, script = _section_two_examples()
    assert len(plugin_blocks) == 7  # interpolant, prior, coupling, sampler, objective, command, hook
    module = types.ModuleType("my_plugin")
    for block in plugin_blocks:
        exec(compile(block, str(DOC), "exec"), module.__dict__)
    monkeypatch.setitem(sys.modules, "my_plugin", module)
    monkeypatch.chdir(tmp_path)
    disabled = os.environ.get("INTERPGEN_DISABLE_PLUGINS")
    os.environ["INTERPGEN_DISABLE_PLUGINS"] = "power"  # the fixture registers the same names
    try:
        namespace: dict = {}
        exec(compile(script, str(DOC), "exec"), namespace)
        x = namespace["x"]
        assert x.shape == (1000, 2) and torch.isfinite(x).all()
        assert 1.8 < float(x.norm(dim=1).median()) < 3.6
        out = capsys.readouterr().out.splitlines()
        count = sum(p.numel() for p in namespace["pipe"].network.parameters())
        assert out[-4] == f"step 200, {count} network parameters"
        assert out[-2] == f"t = 0.50  alpha = {0.5 ** 1.5:.4f}  beta = {1 - 0.5 ** 1.5:.4f}"
        # while loaded, every part came from the example module, and the run reloads
        reg = ig.reload_plugins(extra={"example": module}).registry
        owners = {(kind, name): reg.get(kind, name).distribution for kind, name in PARTS if kind != "command"}
        assert set(owners.values()) == {"<python>"} and reg.command("power-info").distribution == "<python>"
        loaded = ig.Pipeline.load(tmp_path / "runs" / "example", registry=reg)
        assert isinstance(loaded.objective, module.WeightedSIObjective) and loaded.step == 200
    finally:
        if disabled is None:
            os.environ.pop("INTERPGEN_DISABLE_PLUGINS", None)
        else:
            os.environ["INTERPGEN_DISABLE_PLUGINS"] = disabled
        ig.reload_plugins()
    assert ig.registry().get("prior", "laplace").distribution == DIST
