"""Sample-quality metrics (interpgen/metrics.py) against closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from interpgen_plugins.eval.metrics import energy_distance, mmd, random_directions, sliced_wasserstein


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def gaussian_quantiles(n: int, mean: float = 0.0, std: float = 1.0) -> torch.Tensor:
    """``n`` deterministic 1-D 'samples' of N(mean, std^2): the quantiles at (i + 1/2)/n."""
    u = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    return (mean + std * torch.special.ndtri(u))[:, None]


# -- sliced Wasserstein ---------------------------------------------------------------------------

def test_sliced_w2_of_a_shift_equals_the_closed_form_with_the_same_directions():
    d, L = 3, 4096
    x = torch.randn(300, d, generator=gen(0), dtype=torch.float64)
    m = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    sw = sliced_wasserstein(x, x + m, num_projections=L, generator=gen(1))
    theta = random_directions(L, d, generator=gen(1))
    exact_here = math.sqrt(float((theta @ m).pow(2).mean()))  # SW2^2 = mean_theta (theta.m)^2
    assert sw == pytest.approx(exact_here, rel=1e-12)
    assert sw == pytest.approx(float(m.norm()) / math.sqrt(d), rel=0.03)  # E(theta.m)^2 = |m|^2/d


def test_sliced_w2_of_a_shift_with_unequal_sizes():
    x = torch.randn(50, 2, generator=gen(0), dtype=torch.float64)
    m = torch.tensor([0.3, -1.0], dtype=torch.float64)
    theta = random_directions(256, 2, generator=gen(2))
    exact = math.sqrt(float((theta @ m).pow(2).mean()))
    # x and x repeated twice are the same empirical measure
    assert sliced_wasserstein(x, torch.cat([x, x]) + m, num_projections=256, generator=gen(2)) == pytest.approx(
        exact, rel=1e-10)


def test_sliced_wasserstein_of_identical_sets_is_zero():
    x = torch.randn(200, 1, 2, 2, generator=gen(0))
    assert sliced_wasserstein(x, x) == 0.0
    assert sliced_wasserstein(x, x[torch.randperm(200, generator=gen(1))]) == 0.0
    assert sliced_wasserstein(x, torch.cat([x, x, x])) == 0.0


def test_one_dimensional_wasserstein_of_unequal_empirical_measures_exactly():
    # quantile functions: x = {0, 1, 2} steps at 1/3, 2/3; y = {0, 3} steps at 1/2
    x = torch.tensor([[2.0], [0.0], [1.0]])
    y = torch.tensor([[3.0], [0.0]])
    # W2^2 = 1*(1/2-1/3) + 4*(2/3-1/2) + 1*(1-2/3) = 7/6;  W1 = 1/6 + 2/6 + 1/3 = 5/6
    assert sliced_wasserstein(x, y, num_projections=8) == pytest.approx(math.sqrt(7 / 6), rel=1e-12)
    assert sliced_wasserstein(x, y, num_projections=8, p=1) == pytest.approx(5 / 6, rel=1e-12)
    assert sliced_wasserstein(y, x, num_projections=8) == pytest.approx(math.sqrt(7 / 6), rel=1e-12)


@pytest.mark.parametrize(("mu", "s"), [(0.0, 1.0), (1.5, 1.0), (0.0, 2.0), (-1.0, 0.5)])
def test_one_dimensional_w2_between_gaussians(mu, s):
    expected = math.sqrt(mu ** 2 + (s - 1) ** 2)
    # deterministic quantile samples of different sizes: the unequal-size path
    w = sliced_wasserstein(gaussian_quantiles(2000), gaussian_quantiles(3000, mu, s), num_projections=4)
    assert w == pytest.approx(expected, abs=0.01)
    # random samples
    x = torch.randn(20000, 1, generator=gen(0))
    y = mu + s * torch.randn(20000, 1, generator=gen(1))
    assert sliced_wasserstein(x, y, num_projections=4) == pytest.approx(expected, abs=0.04)


def test_sliced_wasserstein_is_reproducible_and_uses_the_generator():
    x, y = torch.randn(100, 5, generator=gen(0)), torch.randn(100, 5, generator=gen(1)) + 0.5
    assert sliced_wasserstein(x, y) == sliced_wasserstein(x, y)  # default: seed 0
    assert sliced_wasserstein(x, y, generator=gen(0)) == sliced_wasserstein(x, y)
    assert sliced_wasserstein(x, y, num_projections=16, generator=gen(3)) != sliced_wasserstein(
        x, y, num_projections=16, generator=gen(4))


def test_random_directions_are_unit_vectors():
    theta = random_directions(1000, 4, generator=gen(0))
    assert theta.shape == (1000, 4) and theta.dtype == torch.float64
    assert torch.allclose(theta.norm(dim=1), torch.ones(1000, dtype=torch.float64))
    assert theta.mean(0).abs().max() < 0.06


# -- MMD -------------------------------------------------------------------------------------------

def test_mmd_is_near_zero_for_one_distribution_and_positive_for_two():
    x = torch.randn(500, 2, generator=gen(0))
    y = torch.randn(500, 2, generator=gen(1))
    same = mmd(x, y)
    assert abs(same) < 0.005  # sampling noise is about 0.001
    assert mmd(x, y + torch.tensor([1.0, 0.0])) > 0.05
    assert mmd(x, 2.0 * y) > 0.03


def test_mmd_of_point_masses_has_the_closed_form():
    a, b, h = torch.tensor([0.0, 1.0]), torch.tensor([3.0, -1.0]), 2.0
    x, y = a.expand(4, 2), b.expand(6, 2)
    expected = 2.0 - 2.0 * math.exp(-float((a - b).pow(2).sum()) / (2 * h * h))  # k(a,a) = k(b,b) = 1
    assert mmd(x, y, bandwidths=(h,)) == pytest.approx(expected, rel=1e-12)
    both = (math.exp(-13 / 2) + math.exp(-13 / 8)) / 2
    assert mmd(x, y, bandwidths=(1.0, 2.0)) == pytest.approx(2.0 - 2.0 * both, rel=1e-12)


def test_mmd_rejects_bad_bandwidths():
    x = torch.randn(10, 2)
    with pytest.raises(ValueError, match="bandwidths must be a non-empty list of numbers > 0"):
        mmd(x, x, bandwidths=(1.0, 0.0))
    with pytest.raises(ValueError, match="median distance between samples is 0"):
        mmd(torch.zeros(10, 2), torch.zeros(10, 2))


# -- energy distance ------------------------------------------------------------------------------

def test_energy_distance_of_point_masses_is_twice_their_distance():
    a, b = torch.tensor([1.0, 2.0, -1.0]), torch.tensor([0.0, -2.0, 1.0])
    ed = energy_distance(a.expand(5, 3), b.expand(8, 3))
    assert ed == pytest.approx(2.0 * math.sqrt(1 + 16 + 4), rel=1e-12)
    assert energy_distance(a.expand(5, 3), a.expand(3, 3)) == 0.0


def _expected_abs_normal(mu: float, sigma: float) -> float:
    """E|D| for D ~ N(mu, sigma^2)."""
    phi = 0.5 * (1 + math.erf(-mu / (sigma * math.sqrt(2))))
    return sigma * math.sqrt(2 / math.pi) * math.exp(-mu * mu / (2 * sigma * sigma)) + mu * (1 - 2 * phi)


@pytest.mark.parametrize(("mu", "s"), [(1.0, 1.0), (0.0, 2.0), (-0.5, 0.5)])
def test_energy_distance_between_one_dimensional_gaussians(mu, s):
    # 2 E|X - Y| - E|X - X'| - E|Y - Y'| with X ~ N(0, 1), Y ~ N(mu, s^2)
    expected = 2 * _expected_abs_normal(mu, math.sqrt(1 + s * s)) - 2 / math.sqrt(math.pi) - 2 * s / math.sqrt(math.pi)
    ed = energy_distance(gaussian_quantiles(2000), gaussian_quantiles(2500, mu, s))
    assert ed == pytest.approx(expected, abs=5e-3)


def test_energy_distance_is_near_zero_for_one_distribution():
    x = torch.randn(800, 3, generator=gen(0))
    y = torch.randn(800, 3, generator=gen(1))
    assert abs(energy_distance(x, y)) < 0.03  # sampling noise is about 0.005
    assert energy_distance(x, y + 0.5) > 0.15


# -- shapes ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("metric", [sliced_wasserstein, mmd, energy_distance])
def test_shape_mismatch_is_a_clear_error(metric):
    with pytest.raises(ValueError, match=r"x and y must have the same event size: x has shape \(10, 2\) "
                                         r"\(2 numbers per sample\), y has shape \(10, 3\)"):
        metric(torch.randn(10, 2), torch.randn(10, 3))
    with pytest.raises(ValueError, match=r"x must have shape \(N, \*event\) with at least 2 dimensions, got \(10,\)"):
        metric(torch.randn(10), torch.randn(10, 1))


@pytest.mark.parametrize("metric", [sliced_wasserstein, mmd, energy_distance])
def test_events_are_flattened(metric):
    x = torch.randn(30, 1, 2, 2, generator=gen(0))
    y = torch.randn(40, 1, 2, 2, generator=gen(1)) + 1
    assert metric(x, y) == pytest.approx(metric(x.reshape(30, 4), y.reshape(40, 4)), rel=1e-12)
