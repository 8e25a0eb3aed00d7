"""Couplings (math.md 5): exact minibatch OT against POT and brute force, Sinkhorn marginals and
its limit, the Schrödinger-bridge check, class-aware OT, paired data sources."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import ot
import pytest
import torch

import interpgen as ig
from interpgen.protocols import Coupling
from interpgen_plugins.couplings import (ClassOTCoupling, EntropicCoupling, ExactOTCoupling, PairedCoupling,
                                         PairedSource, SchrodingerBridgeCoupling, TransformedPairs)
from interpgen_plugins.couplings.assignment import assignment_cost, optimal_permutation, squared_distances
from interpgen_plugins.couplings.entropic import log_sinkhorn, sample_rows
from interpgen_plugins.couplings.paired_data import PairedTransform, build_paired_transform

RECIPES = Path(__file__).resolve().parents[1] / "recipes" / "couplings"


def _batch(b: int, d: int, seed: int, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, d, generator=g, dtype=dtype), 2.0 * torch.rand(b, d, generator=g, dtype=dtype) - 1.0


def test_all_couplings_and_paired_datasets_are_registered(registry):
    assert {"independent", "exact_ot", "sinkhorn", "schrodinger_bridge", "class_ot", "paired"} <= set(
        registry.names("coupling"))
    assert {"paired", "paired_transform"} <= set(registry.names("dataset"))
    for name in ("exact_ot", "sinkhorn", "schrodinger_bridge", "class_ot", "paired"):
        assert isinstance(registry.create("coupling", name), Coupling)


# -- exact assignment -----------------------------------------------------------------------------

def test_squared_distances_is_the_flattened_squared_euclidean_cost():
    x1, x0 = torch.randn(3, 2, 2, dtype=torch.float64), torch.randn(4, 2, 2, dtype=torch.float64)
    expected = ((x1.reshape(3, 1, 4) - x0.reshape(1, 4, 4)) ** 2).sum(-1)
    torch.testing.assert_close(squared_distances(x1, x0), expected, rtol=1e-12, atol=1e-12)


SOLVERS = ["auto", "network_simplex", "lsa"]


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("b", [2, 5, 6])
def test_assignment_matches_brute_force(b, solver):
    for seed in range(5):
        x0, x1 = _batch(b, 3, seed)
        cost = squared_distances(x1, x0)
        perm = optimal_permutation(cost, solver)
        best = min(itertools.permutations(range(b)), key=lambda p: float(cost[torch.arange(b), list(p)].sum()))
        assert perm.tolist() == list(best)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("b", [3, 8, 16, 32])
def test_assignment_is_a_permutation_matching_pot_emd(b, solver):
    for seed in range(4):
        x0, x1 = _batch(b, 2, 100 + seed)
        cost = squared_distances(x1, x0)
        perm = optimal_permutation(cost, solver)
        assert sorted(perm.tolist()) == list(range(b)) and perm.dtype == torch.long
        plan = ot.emd(np.full(b, 1.0 / b), np.full(b, 1.0 / b), cost.numpy())
        assert (plan > 0).sum() == b  # generic data: the emd plan is a permutation matrix
        assert perm.tolist() == plan.argmax(axis=1).tolist()


@pytest.mark.parametrize("solver", SOLVERS)
def test_assignment_with_ties_and_duplicates_is_optimal_and_deterministic(solver):
    g = torch.Generator().manual_seed(3)
    base0 = torch.randint(0, 3, (5, 2), generator=g).double()
    base1 = torch.randint(0, 3, (5, 2), generator=g).double()
    x0, x1 = torch.cat([base0, base0]), torch.cat([base1, base1[:3], base1[:2]])  # repeated rows, integer costs
    cost = squared_distances(x1, x0)
    perm = optimal_permutation(cost, solver)
    assert sorted(perm.tolist()) == list(range(10))
    emd_cost = ot.emd2(np.full(10, 0.1), np.full(10, 0.1), cost.numpy()) * 10
    assert float(assignment_cost(cost, perm)) == pytest.approx(emd_cost, abs=1e-9)
    assert all(torch.equal(optimal_permutation(cost, solver), perm) for _ in range(3))


def test_assignment_rejects_bad_cost_matrices():
    with pytest.raises(ValueError, match=r"square cost matrix, got shape \(2, 3\)"):
        optimal_permutation(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="NaN or inf"):
        optimal_permutation(torch.tensor([[0.0, math.nan], [1.0, 0.0]]))
    with pytest.raises(ValueError, match="solver must be one of auto, network_simplex, lsa, got 'hungarian'"):
        optimal_permutation(torch.zeros(2, 2), "hungarian")


def test_the_two_exact_solvers_agree_on_a_training_sized_batch():
    x0, x1 = _batch(256, 2, 9, dtype=torch.float32)
    cost = squared_distances(x1, x0)
    simplex, lsa = optimal_permutation(cost, "network_simplex"), optimal_permutation(cost, "lsa")
    assert float(assignment_cost(cost.double(), simplex)) == pytest.approx(float(assignment_cost(cost.double(), lsa)),
                                                                           rel=1e-12)


def test_exact_ot_reorders_x0_only_and_uses_every_row_once():
    coupling = ExactOTCoupling()
    x0, x1 = torch.randn(12, 1, 3, 3), torch.randn(12, 1, 3, 3)
    p0, p1 = coupling.pair(x0, x1, torch.arange(12))
    assert p1 is x1
    perm = optimal_permutation(squared_distances(x1, x0))
    assert torch.equal(p0, x0[perm])
    # each x0 row appears exactly once (no duplicates, nothing dropped: TorchCFM issue 142)
    assert sorted(map(tuple, p0.reshape(12, -1).tolist())) == sorted(map(tuple, x0.reshape(12, -1).tolist()))
    # and the transport cost is no larger than the independent pairing's
    assert ((p0 - x1) ** 2).sum() <= ((x0 - x1) ** 2).sum()


def test_exact_ot_errors_name_the_coupling():
    with pytest.raises(ValueError) as info:
        ExactOTCoupling().pair(torch.zeros(4, 2), torch.zeros(5, 2))
    assert str(info.value) == ("coupling 'exact_ot': x0 and x1 must have the same batch size, got x0 of shape "
                               "(4, 2) and x1 of shape (5, 2)")
    with pytest.raises(ValueError, match=r"one space .* got event shapes \(2,\) and \(3,\)"):
        ExactOTCoupling().pair(torch.zeros(4, 2), torch.zeros(4, 3))


# -- Sinkhorn -------------------------------------------------------------------------------------

def test_log_sinkhorn_marginals_and_pot_agreement():
    x0, x1 = _batch(20, 2, 7)
    cost = squared_distances(x1, x0)
    reg = 0.1 * float(cost.mean())
    plan = log_sinkhorn(cost, reg, max_iter=5000, tol=1e-12).exp()
    torch.testing.assert_close(plan.sum(1), torch.full((20,), 0.05, dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(plan.sum(0), torch.full((20,), 0.05, dtype=torch.float64), rtol=0, atol=1e-12)
    pot = ot.sinkhorn(np.full(20, 0.05), np.full(20, 0.05), cost.numpy(), reg, numItermax=20000, stopThr=1e-14)
    np.testing.assert_allclose(plan.numpy(), pot, atol=1e-10)


def test_sinkhorn_approaches_the_exact_plan_as_reg_shrinks():
    x0, x1 = _batch(16, 2, 11)
    cost = squared_distances(x1, x0)
    exact = torch.from_numpy(ot.emd(np.full(16, 1 / 16), np.full(16, 1 / 16), cost.numpy()))
    gaps = []
    for rel in (1.0, 0.1, 0.01, 0.001):
        plan = log_sinkhorn(cost, rel * float(cost.mean()), max_iter=1000, tol=1e-9).exp()
        gaps.append(float((plan - exact).abs().sum()))
    assert all(a > b for a, b in zip(gaps, gaps[1:])), gaps
    assert gaps[-1] < 1e-3, gaps


def test_log_sinkhorn_is_stable_for_tiny_reg():
    x0, x1 = _batch(8, 2, 1)
    plan = log_sinkhorn(squared_distances(x1, x0), 1e-6, max_iter=50, tol=1e-9)
    assert torch.isfinite(plan.exp()).all()
    with pytest.raises(ValueError, match="regularisation > 0, got 0.0"):
        log_sinkhorn(squared_distances(x1, x0), 0.0)


def test_sample_rows_follows_the_conditional_plan():
    plan = torch.tensor([[0.1, 0.0, 0.3], [0.0, 0.5, 0.1]], dtype=torch.float64)
    log_plan = plan.log().repeat(20000, 1)
    index = sample_rows(log_plan, torch.Generator().manual_seed(0)).reshape(20000, 2)
    freq0 = torch.bincount(index[:, 0], minlength=3).double() / 20000
    freq1 = torch.bincount(index[:, 1], minlength=3).double() / 20000
    torch.testing.assert_close(freq0, torch.tensor([0.25, 0.0, 0.75], dtype=torch.float64), atol=0.015, rtol=0)
    torch.testing.assert_close(freq1, torch.tensor([0.0, 5 / 6, 1 / 6], dtype=torch.float64), atol=0.015, rtol=0)
    assert freq0[1] == 0 and freq1[0] == 0  # zero-mass entries are never drawn


def test_sinkhorn_coupling_with_small_reg_is_the_exact_pairing(registry):
    coupling = registry.create("coupling", "sinkhorn", ig.part("coupling", "sinkhorn", registry, reg=1e-3,
                                                               max_iter=500, tol=1e-6))
    assert isinstance(coupling, EntropicCoupling)
    x0, x1 = _batch(32, 2, 5)
    p0, p1 = coupling.pair(x0, x1)
    assert p1 is x1
    assert torch.equal(p0, ExactOTCoupling().pair(x0, x1)[0])


def test_sinkhorn_coupling_draws_rows_of_x0_reproducibly(registry):
    params = ig.part("coupling", "sinkhorn", registry, reg=0.5, seed=3)
    x0, x1 = torch.randn(64, 2), torch.randn(64, 2)
    a = registry.create("coupling", "sinkhorn", params).pair(x0, x1)[0]
    b = registry.create("coupling", "sinkhorn", params).pair(x0, x1)[0]
    assert torch.equal(a, b) and a.dtype == x0.dtype
    rows = {tuple(r) for r in x0.tolist()}
    assert all(tuple(r) in rows for r in a.tolist())  # every output is one of the x0 rows (maybe repeated)


def test_sinkhorn_params_are_validated(registry):
    with pytest.raises(ig.RecipeError, match="reg must be a finite number > 0, got -1.0"):
        ig.part("coupling", "sinkhorn", registry, reg=-1.0)


# -- Schrödinger bridge ------------------------------------------------------------------------------

def test_schrodinger_bridge_uses_reg_two_sigma_squared(registry):
    coupling = registry.create("coupling", "schrodinger_bridge",
                               ig.part("coupling", "schrodinger_bridge", registry, sigma=0.5))
    assert isinstance(coupling, SchrodingerBridgeCoupling)
    x0, x1 = _batch(10, 2, 2)
    assert coupling.effective_reg(squared_distances(x1, x0)) == 0.5
    torch.testing.assert_close(coupling.plan(x0, x1), log_sinkhorn(squared_distances(x1, x0), 0.5,
                                                                   max_iter=1000, tol=1e-4))


def test_schrodinger_bridge_checks_the_interpolant(registry):
    sb = registry.create("coupling", "schrodinger_bridge", ig.part("coupling", "schrodinger_bridge", registry, sigma=0.5))
    good = ig.part("interpolant", "linear", registry, gamma={"name": "a_brownian", "a": 0.25})
    sb.check_compatible(interpolant=good)
    unit = registry.create("coupling", "schrodinger_bridge")
    unit.check_compatible(interpolant=ig.part("interpolant", "linear", registry, gamma="brownian"))
    with pytest.raises(ValueError) as info:
        sb.check_compatible(interpolant=ig.part("interpolant", "linear", registry, gamma="brownian"))
    assert str(info.value) == (
        "coupling 'schrodinger_bridge' with sigma = 0.5 needs the Brownian-bridge interpolant x_t = (1-t) x0 + t x1 "
        "+ 0.5 sqrt(t(1-t)) z, i.e. interpolant = {name = \"linear\", gamma = {name = \"a_brownian\", a = 0.25}}; "
        "this interpolant's gamma^2 differ(s)")
    with pytest.raises(ValueError, match="alpha, beta differ"):
        sb.check_compatible(interpolant=ig.part("interpolant", "trig", registry,
                                                gamma={"name": "a_brownian", "a": 0.25}))


def test_pipeline_refuses_a_schrodinger_bridge_with_the_wrong_sigma(registry):
    with pytest.raises(ValueError, match="sigma = 2 needs the Brownian-bridge"):
        ig.Pipeline(data=ig.part("dataset", "moons", registry), registry=registry,
                    coupling=ig.part("coupling", "schrodinger_bridge", registry, sigma=2.0),
                    interpolant=ig.part("interpolant", "linear", registry, gamma="brownian"))


# -- class-aware OT -------------------------------------------------------------------------------------

def test_class_ot_never_pairs_across_label_groups():
    g = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 2, 0, 1, 2, 2, 0, 1, 0, 2, 1, 0])
    x0, x1 = torch.randn(12, 3, generator=g, dtype=torch.float64), torch.randn(12, 3, generator=g, dtype=torch.float64)
    coupling = ClassOTCoupling(seed=4)
    index = coupling.assignment(x0, x1, labels)
    assert sorted(index.tolist()) == list(range(12))  # every x0 used once
    # each x0 serves a single label: the x0 groups partition the batch ...
    groups = {int(k): set(index[labels == k].tolist()) for k in labels.unique()}
    assert sum(len(s) for s in groups.values()) == 12
    # ... and inside a group the pairing is the exact OT assignment between the group's rows
    for k, members in groups.items():
        rows = torch.nonzero(labels == k).squeeze(1)
        chosen = sorted(members)
        best = optimal_permutation(squared_distances(x1[rows], x0[chosen]))
        assert index[rows].tolist() == [chosen[j] for j in best.tolist()]
    p0, p1 = ClassOTCoupling(seed=4).pair(x0, x1, labels)
    assert p1 is x1 and torch.equal(p0, x0[index])


def test_class_ot_without_labels_is_exact_ot():
    x0, x1 = _batch(9, 2, 8)
    assert torch.equal(ClassOTCoupling(seed=0).pair(x0, x1)[0], ExactOTCoupling().pair(x0, x1)[0])


# -- paired coupling and paired data ------------------------------------------------------------------

def test_paired_coupling_keeps_the_pairs_and_checks_the_data(registry):
    x0, x1 = torch.randn(4, 2), torch.randn(4, 2)
    p0, p1 = PairedCoupling().pair(x0, x1)
    assert p0 is x0 and p1 is x1
    PairedCoupling().check_compatible(data=PairedSource(x0, x1))
    with pytest.raises(ValueError, match="coupling 'paired' needs paired data .* SyntheticSource is not paired"):
        ig.Pipeline(data=ig.part("dataset", "moons", registry), coupling=ig.part("coupling", "paired", registry),
                    registry=registry)


def _write_pairs(path: Path, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    x0 = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
    x1 = x0 + 100.0
    np.savez(path, x0=x0, x1=x1, shift=np.array([1.0, 2.0], np.float32), scale=np.array([3.0, 4.0], np.float32),
             labels=np.arange(n) % 3)
    return x0, x1


def test_paired_dataset_serves_rows_with_their_partners(tmp_path, registry):
    _write_pairs(tmp_path / "pairs.npz")
    params = ig.part("dataset", "paired", registry, path="pairs.npz", labels_key="labels")
    source = registry.create("dataset", "paired", params, root=tmp_path)
    assert source.paired and source.event_shape == (2,) and source.num_classes == 3
    shift, scale = source.data_affine()
    assert shift.tolist() == [1.0, 2.0] and scale.tolist() == [3.0, 4.0]
    stream = source.batches(4, generator=torch.Generator().manual_seed(0))
    seen = []
    for _ in range(2):  # one epoch of 10 rows gives two full batches of 4
        x1, labels, x0 = next(stream)
        assert torch.equal(x1 - x0, torch.full_like(x1, 100.0))
        assert torch.equal(labels, (x0[:, 0] / 2).long() % 3)
        seen += x0[:, 0].tolist()
    assert len(set(seen)) == 8  # no row twice in an epoch


def test_paired_dataset_errors(tmp_path, registry):
    np.savez(tmp_path / "bad.npz", x0=np.zeros((3, 2)), x1=np.zeros((4, 2)))
    bad = ig.part("dataset", "paired", registry, path="bad.npz")
    with pytest.raises(ValueError, match=r"x0 and x1 must have one shape \(N, \*event\), got \(3, 2\) and \(4, 2\)"):
        registry.create("dataset", "paired", bad, root=tmp_path)
    other = ig.part("dataset", "paired", registry, path="bad.npz", x0_key="source")
    with pytest.raises(ValueError, match="no array named 'source'; the file holds: x0, x1"):
        registry.create("dataset", "paired", other, root=tmp_path)
    with pytest.raises(FileNotFoundError, match="missing.npz does not exist"):
        registry.create("dataset", "paired", ig.part("dataset", "paired", registry, path="missing.npz"), root=tmp_path)


class _Rows:
    """A tiny unpaired data source with an affine, for paired_transform."""

    num_classes = None

    def __init__(self, data: torch.Tensor, affine):
        self.data, self.event_shape, self._affine = data, tuple(data.shape[1:]), affine

    def batches(self, batch_size, *, generator, shard=(0, 1)):
        while True:
            yield self.data[torch.randperm(len(self.data), generator=generator)[:batch_size]], None

    def reference(self, num, *, generator):
        return self.data[:num]

    def data_affine(self):
        return self._affine


@pytest.mark.parametrize("transform", ["horizontal_flip", "vertical_flip", "negate"])
def test_paired_transform_pairs_rows_with_their_transform(transform, registry):
    data = torch.randn(6, 1, 3, 4)
    affine = (torch.randn(1, 3, 4), torch.rand(1, 3, 4) + 0.5)
    pairs = build_paired_transform(PairedTransform(data=_Rows(data, affine), transform=transform), registry=registry)
    assert isinstance(pairs, TransformedPairs) and pairs.paired
    x1, labels, x0 = next(pairs.batches(4, generator=torch.Generator().manual_seed(1)))
    expected = {"horizontal_flip": x0.flip(-1), "vertical_flip": x0.flip(-2), "negate": -x0}[transform]
    assert labels is None and torch.equal(x1, expected)
    # the affine follows the transform: transform(data(m)) = shift' + scale' * transform(m)
    shift, scale = pairs.data_affine()
    m = torch.randn(5, 1, 3, 4)
    torch.testing.assert_close(pairs.apply(affine[0] + affine[1] * m), shift + scale * pairs.apply(m))


def test_paired_transform_rejects_a_flip_the_shape_cannot_take(registry):
    with pytest.raises(ValueError, match=r"'vertical_flip' needs examples with at least 2 dimension\(s\)"):
        build_paired_transform(PairedTransform(data=_Rows(torch.randn(4, 2), None), transform="vertical_flip"),
                               registry=registry)


def test_paired_transform_of_a_registered_dataset(registry):
    params = ig.part("dataset", "paired_transform", registry, data="moons", transform="negate")
    pairs = registry.create("dataset", "paired_transform", params)
    x1, _, x0 = next(pairs.batches(8, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(x1, -x0) and pairs.data_affine() is None


@pytest.mark.parametrize("recipe", sorted(p.name for p in RECIPES.glob("*.toml")))
def test_coupling_recipes_load(recipe, registry):
    loaded = ig.load_recipe(RECIPES / recipe, registry)
    assert registry.entry_for(loaded.coupling) is not None


def test_scaling_and_log_domain_sinkhorn_give_the_same_plan(monkeypatch):
    import interpgen_plugins.couplings.entropic as entropic

    x0, x1 = _batch(24, 2, 13)
    cost = squared_distances(x1, x0)
    reg = 0.2 * float(cost.mean())
    assert float(cost.max()) / reg <= entropic.SCALING_LIMIT  # the scaling form is the one used here
    scaling = log_sinkhorn(cost, reg, max_iter=5000, tol=1e-12)
    monkeypatch.setattr(entropic, "SCALING_LIMIT", 0.0)
    logdomain = log_sinkhorn(cost, reg, max_iter=5000, tol=1e-12)
    torch.testing.assert_close(scaling.exp(), logdomain.exp(), rtol=0, atol=1e-12)
