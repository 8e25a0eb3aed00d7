"""Sample-quality measures between two sets of samples ``x: (N, *event)`` and ``y: (M, *event)``.

All three compare empirical distributions, need no trained feature network and work for any
event shape (examples are flattened to vectors of ``d`` numbers). Computations run in float64
on the inputs' device; each returns a Python float.

* :func:`sliced_wasserstein`: ``SW_p = (E_theta[W_p^p(theta.x, theta.y)])^(1/p)`` over random
  unit directions ``theta``;
* :func:`mmd`: unbiased squared maximum mean discrepancy with Gaussian kernels;
* :func:`energy_distance`: ``2 E|X - Y| - E|X - X'| - E|Y - Y'|``;
* :func:`frechet_distance`: the squared Fréchet (2-Wasserstein) distance between two Gaussians,
  and :func:`feature_frechet_distance` between Gaussians fitted to two sets of features (FID's
  formula; :mod:`.feature_classifier` supplies the features).

MMD and the energy distance build ``N x M`` distance matrices: keep ``N, M`` in the thousands.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["energy_distance", "feature_frechet_distance", "frechet_distance", "gaussian_moments", "mmd",
           "random_directions", "sliced_wasserstein"]

#: Directions projected at once by :func:`sliced_wasserstein` (bounds memory to about
#: ``(N + M) * 256`` float64 numbers).
_DIRECTION_CHUNK = 256
#: Points of each set used for the median heuristic of :func:`mmd`.
_MEDIAN_POINTS = 1024


def _flatten_pair(x: Tensor, y: Tensor, *, min_rows: int = 1) -> tuple[Tensor, Tensor]:
    """``(N, *event) -> (N, d)`` in float64, checking that both sides describe the same event."""
    for name, v in (("x", x), ("y", y)):
        if not isinstance(v, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of shape (N, *event), got {type(v).__name__}")
        if v.dim() < 2:
            raise ValueError(f"{name} must have shape (N, *event) with at least 2 dimensions, "
                             f"got {tuple(v.shape)}")
        if v.shape[0] < min_rows:
            raise ValueError(f"{name} needs at least {min_rows} samples, got {v.shape[0]}")
    xf = x.reshape(x.shape[0], -1).to(torch.float64)
    yf = y.reshape(y.shape[0], -1).to(device=x.device, dtype=torch.float64)
    if xf.shape[1] != yf.shape[1]:
        raise ValueError(f"x and y must have the same event size: x has shape {tuple(x.shape)} "
                         f"({xf.shape[1]} numbers per sample), y has shape {tuple(y.shape)} "
                         f"({yf.shape[1]} numbers per sample)")
    return xf, yf


def random_directions(num: int, dim: int, *, generator: torch.Generator | None = None) -> Tensor:
    """``num`` directions uniform on the unit sphere of ``R^dim``, ``(num, dim)`` float64 on the
    CPU: normalised standard Gaussian vectors drawn with ``generator``."""
    if num < 1 or dim < 1:
        raise ValueError(f"need num >= 1 and dim >= 1, got num={num}, dim={dim}")
    g = torch.randn(num, dim, generator=generator, dtype=torch.float64)
    return g / g.norm(dim=1, keepdim=True)


def _wasserstein_pp_1d(xs: Tensor, ys: Tensor, p: float) -> Tensor:
    """``W_p^p`` between the empirical measures of the columns of sorted ``xs: (N, L)`` and
    ``ys: (M, L)``, one value per column.

    ``W_p^p = int_0^1 |F^-1(u) - G^-1(u)|^p du`` with the empirical quantile functions, which
    are step functions jumping at ``i/N`` and ``j/M``. For ``N == M`` the integral is the mean
    of ``|xs_i - ys_i|^p``; otherwise it is evaluated exactly on the common grid of both sets
    of jump points (each piece weighted by its length).
    """
    n, m = xs.shape[0], ys.shape[0]
    if n == m:
        return (xs - ys).abs().pow(p).mean(dim=0)
    # Jump points u = k / lcm(n, m) would be exact but can be huge; merge the two grids instead.
    ux = torch.arange(1, n + 1, dtype=torch.float64, device=xs.device) / n
    uy = torch.arange(1, m + 1, dtype=torch.float64, device=xs.device) / m
    cuts = torch.unique(torch.cat([ux, uy]))  # sorted, ends with 1
    cuts[-1] = 1.0
    lower = torch.cat([cuts.new_zeros(1), cuts[:-1]])
    weights = cuts - lower
    middle = 0.5 * (cuts + lower)
    ix = torch.clamp((middle * n).floor().long(), max=n - 1)
    iy = torch.clamp((middle * m).floor().long(), max=m - 1)
    return ((xs[ix] - ys[iy]).abs().pow(p) * weights[:, None]).sum(dim=0)


def sliced_wasserstein(x: Tensor, y: Tensor, *, num_projections: int = 1024, p: float = 2,
                       generator: torch.Generator | None = None) -> float:
    """Sliced Wasserstein distance ``SW_p = (1/L sum_l W_p^p(theta_l . x, theta_l . y))^(1/p)``.

    The ``L = num_projections`` directions come from :func:`random_directions` with
    ``generator`` (when None, a generator seeded with 0, so the value is reproducible). The
    1-D distances are exact for the empirical measures (see :func:`_wasserstein_pp_1d`): for
    equal sample sizes sort and compare, otherwise compare the quantile functions on the
    common grid of their jump points. For ``d = 1`` every direction is ``+-1`` and ``SW_p`` is
    the 1-D ``W_p``.
    """
    if not isinstance(num_projections, int) or num_projections < 1:
        raise ValueError(f"num_projections must be an integer >= 1, got {num_projections!r}")
    if not p >= 1:
        raise ValueError(f"p must be >= 1, got {p!r}")
    xf, yf = _flatten_pair(x, y)
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    theta = random_directions(num_projections, xf.shape[1], generator=generator).to(xf.device)
    total = xf.new_zeros(())
    for chunk in theta.split(_DIRECTION_CHUNK):
        xs = torch.sort(xf @ chunk.T, dim=0).values
        ys = torch.sort(yf @ chunk.T, dim=0).values
        total = total + _wasserstein_pp_1d(xs, ys, p).sum()
    return float((total / num_projections) ** (1.0 / p))


def _distances(a: Tensor, b: Tensor) -> Tensor:
    """``|a_i - b_j|`` from the differences themselves (no ``|a|^2 + |b|^2 - 2 a.b`` expansion,
    whose rounding would turn equal points into distances of order 1e-8)."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def _mean_off_diagonal(k: Tensor) -> Tensor:
    n = k.shape[0]
    return (k.sum() - k.diagonal().sum()) / (n * (n - 1))


def mmd(x: Tensor, y: Tensor, *, bandwidths: Sequence[float] | None = None) -> float:
    """Unbiased squared MMD with an average of Gaussian kernels.

    ``MMD^2 = mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j) - 2 mean_{i, j} k(x_i, y_j)``
    with ``k(a, b) = 1/H sum_h exp(-|a - b|^2 / (2 h^2))`` over the ``H`` bandwidths. By default
    the bandwidths are ``(0.5, 1, 2)`` times the median distance between distinct points of the
    pooled sample (estimated on at most 1024 evenly strided points of each set). The estimate is unbiased, so it can be slightly negative when the two
    distributions agree.
    """
    xf, yf = _flatten_pair(x, y, min_rows=2)
    dxx, dyy, dxy = (_distances(a, b).pow(2) for a, b in ((xf, xf), (yf, yf), (xf, yf)))
    if bandwidths is None:
        median = _median_distance(xf, yf)
        if median == 0.0:
            raise ValueError("the median distance between samples is 0 (too many repeated points); "
                             "pass bandwidths explicitly")
        bandwidths = (0.5 * median, median, 2.0 * median)
    widths = [float(h) for h in bandwidths]
    if not widths or any(not h > 0 for h in widths):
        raise ValueError(f"bandwidths must be a non-empty list of numbers > 0, got {bandwidths!r}")

    def kernel(d2: Tensor) -> Tensor:
        return sum(torch.exp(-d2 / (2.0 * h * h)) for h in widths) / len(widths)

    value = _mean_off_diagonal(kernel(dxx)) + _mean_off_diagonal(kernel(dyy)) - 2.0 * kernel(dxy).mean()
    return float(value)


def _median_distance(x: Tensor, y: Tensor) -> float:
    """Median distance between distinct points of the pooled sample (the median heuristic),
    computed on at most :data:`_MEDIAN_POINTS` evenly strided points of each set."""
    def subset(v: Tensor) -> Tensor:
        step = max(1, -(-v.shape[0] // _MEDIAN_POINTS))
        return v[::step]

    pooled = torch.cat([subset(x), subset(y)])
    d = _distances(pooled, pooled)
    n = d.shape[0]
    off_diagonal = d.flatten()[1:].view(n - 1, n + 1)[:, :-1]
    return float(off_diagonal.median())


def energy_distance(x: Tensor, y: Tensor) -> float:
    """Energy distance ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` (Euclidean norm).

    ``E|X - Y|`` is the mean over all ``N M`` pairs; the within-sample terms average over
    ``i != j`` (divided by ``N (N - 1)``), which makes them unbiased for independent copies
    ``X, X'``. The population value is 0 exactly when the distributions agree.
    """
    xf, yf = _flatten_pair(x, y, min_rows=2)
    dxy = _distances(xf, yf).mean()
    dxx = _mean_off_diagonal(_distances(xf, xf))
    dyy = _mean_off_diagonal(_distances(yf, yf))
    return float(2.0 * dxy - dxx - dyy)


def gaussian_moments(features: Tensor) -> tuple[Tensor, Tensor]:
    """Mean ``(d,)`` and unbiased covariance ``(d, d)`` of ``features: (N, *event)`` in float64."""
    f, _ = _flatten_pair(features, features, min_rows=2)
    mean = f.mean(dim=0)
    centred = f - mean
    return mean, centred.T @ centred / (f.shape[0] - 1)


def _symmetric_sqrt(m: Tensor) -> Tensor:
    """``m^(1/2)`` of a symmetric positive semi-definite matrix by eigen-decomposition
    (eigenvalues below 0 from rounding are set to 0)."""
    w, v = torch.linalg.eigh(0.5 * (m + m.T))
    return (v * w.clamp(min=0.0).sqrt()) @ v.T


def frechet_distance(mean1: Tensor, cov1: Tensor, mean2: Tensor, cov2: Tensor) -> float:
    """Squared Fréchet distance between ``N(mean1, cov1)`` and ``N(mean2, cov2)``:

    ``d^2 = |m1 - m2|^2 + tr(S1 + S2 - 2 (S1^(1/2) S2 S1^(1/2))^(1/2))``,

    the squared 2-Wasserstein distance between the two Gaussians (FID reports this squared
    value). Computed in float64 with symmetric eigen-decompositions, so it is exact up to
    rounding even for singular covariances; for commuting (e.g. diagonal) covariances it
    reduces to ``|m1 - m2|^2 + |S1^(1/2) - S2^(1/2)|_F^2``.
    """
    m1, m2 = mean1.to(torch.float64).flatten(), mean2.to(device=mean1.device, dtype=torch.float64).flatten()
    s1, s2 = cov1.to(torch.float64), cov2.to(device=mean1.device, dtype=torch.float64)
    d = m1.shape[0]
    for name, s in (("cov1", s1), ("cov2", s2)):
        if tuple(s.shape) != (d, d):
            raise ValueError(f"{name} must have shape ({d}, {d}) to match the means, got {tuple(s.shape)}")
    if m2.shape[0] != d:
        raise ValueError(f"mean1 and mean2 must have the same length, got {d} and {m2.shape[0]}")
    root1 = _symmetric_sqrt(s1)
    middle = root1 @ s2 @ root1
    cross = torch.linalg.eigvalsh(0.5 * (middle + middle.T)).clamp(min=0.0).sqrt().sum()
    value = (m1 - m2).pow(2).sum() + torch.trace(s1) + torch.trace(s2) - 2.0 * cross
    return float(value.clamp(min=0.0))


def feature_frechet_distance(x: Tensor, y: Tensor) -> float:
    """:func:`frechet_distance` between Gaussians fitted (:func:`gaussian_moments`) to the
    features ``x: (N, d)`` and ``y: (M, d)``."""
    _flatten_pair(x, y, min_rows=2)
    return frechet_distance(*gaussian_moments(x), *gaussian_moments(y))
