"""Analytic test oracles: exact fields of an interpolant between Gaussian-type end points.

math.md section 8. For any object following the :class:`~interpgen.protocols.Interpolant`
protocol, ``x_t = alpha x0 + beta x1 + gamma z`` with ``x0``, ``x1`` and ``z ~ N(0, I)``
independent. When ``x0`` and ``x1`` are Gaussian (or ``x1`` a Gaussian mixture) every
conditional expectation of math.md 1.2 has a closed form, which makes these oracles the
reference the conversions, samplers and likelihoods are tested against.

Everything is computed in float64. Batches: ``x`` has shape ``(B, d)`` and ``t`` shape ``(B,)``
(a Python float is broadcast over the batch). The meaning of ``"noise"`` follows
:data:`interpgen.protocols.PREDICTIONS`: ``E[z | x_t]`` for a two-sided interpolant and
``E[x0 | x_t]`` when ``gamma == 0`` (``interpolant.deterministic``).

* :class:`GaussianOracle`: ``x0 ~ N(m0, S0)``, ``x1 ~ N(m1, S1)`` (math.md 8a).
* :class:`MixtureOracle`: ``x0 ~ N(m0, S0)``, ``x1 ~ sum_k w_k N(m_k, S_k)`` (math.md 8b).
* :class:`OracleField`: an oracle seen as a trained model (the ``Field`` protocol).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from interpgen.protocols import PREDICTIONS, Interpolant

__all__ = ["GaussianOracle", "MixtureOracle", "OracleField"]

_DTYPE = torch.float64


# -- small helpers ---------------------------------------------------------------------------

def _vector(value: Any, name: str) -> Tensor:
    v = torch.as_tensor(value, dtype=_DTYPE)
    if v.dim() != 1:
        raise ValueError(f"{name} must be a vector of shape (d,), got shape {tuple(v.shape)}")
    return v


def _matrix(value: Any, name: str, d: int) -> Tensor:
    m = torch.as_tensor(value, dtype=_DTYPE)
    if m.shape != (d, d):
        raise ValueError(f"{name} must have shape ({d}, {d}), got {tuple(m.shape)}")
    if not torch.allclose(m, m.T, atol=1e-12, rtol=1e-10):
        raise ValueError(f"{name} must be symmetric")
    if torch.linalg.eigvalsh(m).min() < -1e-12:
        raise ValueError(f"{name} must be positive semi-definite")
    return m


def _times(t: float | Tensor, batch: int) -> Tensor:
    if isinstance(t, Tensor) and t.dim() == 1:
        if t.shape[0] != batch:
            raise ValueError(f"expected t of shape ({batch},), got {tuple(t.shape)}")
        return t.to(_DTYPE)
    return torch.full((batch,), float(t), dtype=_DTYPE)


def _as_batch(x: Tensor, d: int) -> Tensor:
    x = torch.as_tensor(x, dtype=_DTYPE)
    if x.dim() != 2 or x.shape[1] != d:
        raise ValueError(f"expected x of shape (B, {d}), got {tuple(x.shape)}")
    return x


def _sym_sqrt(m: Tensor) -> Tensor:
    """Symmetric square root of a (batch of) positive semi-definite matrices."""
    vals, vecs = torch.linalg.eigh(m)
    return (vecs * vals.clamp_min(0.0).sqrt().unsqueeze(-2)) @ vecs.transpose(-1, -2)


def _gaussian_log_density(diff: Tensor, cov: Tensor) -> Tensor:
    """``log N(diff; 0, cov)`` with ``diff`` (..., d) and ``cov`` (..., d, d)."""
    d = diff.shape[-1]
    chol = torch.linalg.cholesky(cov)
    sol = torch.linalg.solve_triangular(chol, diff.unsqueeze(-1), upper=False).squeeze(-1)
    log_det = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    return -0.5 * (sol * sol).sum(-1) - 0.5 * log_det - 0.5 * d * math.log(2.0 * math.pi)


def _check_prediction(name: str) -> None:
    if name not in PREDICTIONS:
        raise ValueError(f"unknown prediction {name!r}; expected one of {', '.join(PREDICTIONS)}")


class _Schedule:
    """``alpha, beta, gamma`` and their derivatives at ``t``, each (B,), in float64."""

    def __init__(self, interpolant: Interpolant, t: Tensor):
        self.alpha = interpolant.alpha(t).to(_DTYPE)
        self.beta = interpolant.beta(t).to(_DTYPE)
        self.gamma = interpolant.gamma(t).to(_DTYPE)
        self.alpha_dot = interpolant.alpha_dot(t).to(_DTYPE)
        self.beta_dot = interpolant.beta_dot(t).to(_DTYPE)
        self.gamma_gamma_dot = interpolant.gamma_gamma_dot(t).to(_DTYPE)


def _col(v: Tensor) -> Tensor:
    """(B,) -> (B, 1)."""
    return v.unsqueeze(-1)


def _mat(v: Tensor) -> Tensor:
    """(B,) -> (B, 1, 1)."""
    return v.reshape(-1, 1, 1)


# -- Gaussian -> Gaussian --------------------------------------------------------------------

class GaussianOracle:
    """Exact fields for ``x0 ~ N(m0, S0)``, ``x1 ~ N(m1, S1)``, ``z ~ N(0, I)`` (math.md 8a).

    ``mu_t = alpha m0 + beta m1``, ``Sigma_t = alpha^2 S0 + beta^2 S1 + gamma^2 I`` and
    ``C_t = alpha alpha' S0 + beta beta' S1 + gamma gamma' I = Sigma_t' / 2`` (with
    ``gamma gamma'`` taken from the interpolant's closed-form ``gamma_gamma_dot``).
    ``rho_t = N(mu_t, Sigma_t)``; ``Sigma_t`` must be invertible wherever a field is asked for.
    """

    def __init__(self, interpolant: Interpolant, m0: Any, S0: Any, m1: Any, S1: Any):
        self.interpolant = interpolant
        self.m0 = _vector(m0, "m0")
        self.dim = d = self.m0.shape[0]
        self.m1 = _vector(m1, "m1")
        if self.m1.shape[0] != d:
            raise ValueError(f"m1 must have shape ({d},), got {tuple(self.m1.shape)}")
        self.S0 = _matrix(S0, "S0", d)
        self.S1 = _matrix(S1, "S1", d)

    # schedule-level quantities
    def _parts(self, t: float | Tensor, batch: int) -> tuple[_Schedule, Tensor, Tensor, Tensor, Tensor]:
        sc = _Schedule(self.interpolant, _times(t, batch))
        eye = torch.eye(self.dim, dtype=_DTYPE)
        mean = _col(sc.alpha) * self.m0 + _col(sc.beta) * self.m1
        mean_dot = _col(sc.alpha_dot) * self.m0 + _col(sc.beta_dot) * self.m1
        cov = _mat(sc.alpha ** 2) * self.S0 + _mat(sc.beta ** 2) * self.S1 + _mat(sc.gamma ** 2) * eye
        half_cov_dot = (_mat(sc.alpha * sc.alpha_dot) * self.S0 + _mat(sc.beta * sc.beta_dot) * self.S1
                        + _mat(sc.gamma_gamma_dot) * eye)
        return sc, mean, mean_dot, cov, half_cov_dot

    def mean(self, t: float | Tensor) -> Tensor:
        """``mu_t`` of shape (B, d) (B = 1 for a float ``t``)."""
        batch = t.shape[0] if isinstance(t, Tensor) and t.dim() == 1 else 1
        return self._parts(t, batch)[1]

    def cov(self, t: float | Tensor) -> Tensor:
        """``Sigma_t`` of shape (B, d, d)."""
        batch = t.shape[0] if isinstance(t, Tensor) and t.dim() == 1 else 1
        return self._parts(t, batch)[3]

    def predict(self, name: str, x: Tensor, t: float | Tensor) -> Tensor:
        """The exact field ``name`` (one of PREDICTIONS) at ``(x, t)``, shape (B, d).

        With ``w = Sigma_t^{-1} (x - mu_t)``: score ``-w``; velocity ``mu_t' + C_t w``;
        x0 ``m0 + alpha S0 w``; x1 ``m1 + beta S1 w``; noise ``gamma w`` (two-sided) or the
        x0 prediction (``gamma == 0``).
        """
        _check_prediction(name)
        x = _as_batch(x, self.dim)
        sc, mean, mean_dot, cov, half_cov_dot = self._parts(t, x.shape[0])
        w = torch.linalg.solve(cov, (x - mean).unsqueeze(-1)).squeeze(-1)
        if name == "noise" and self.interpolant.deterministic:
            name = "x0"
        if name == "score":
            return -w
        if name == "velocity":
            return mean_dot + (half_cov_dot @ w.unsqueeze(-1)).squeeze(-1)
        if name == "x0":
            return self.m0 + _col(sc.alpha) * (w @ self.S0.T)
        if name == "x1":
            return self.m1 + _col(sc.beta) * (w @ self.S1.T)
        return _col(sc.gamma) * w  # noise, two-sided

    def divergence(self, x: Tensor, t: float | Tensor) -> Tensor:
        """``div b = tr(C_t Sigma_t^{-1})`` (constant in x), shape (B,)."""
        x = _as_batch(x, self.dim)
        _, _, _, cov, half_cov_dot = self._parts(t, x.shape[0])
        return torch.diagonal(torch.linalg.solve(cov, half_cov_dot), dim1=-2, dim2=-1).sum(-1)

    def log_prob(self, x: Tensor, t: float | Tensor) -> Tensor:
        """``log rho_t(x) = log N(x; mu_t, Sigma_t)``, shape (B,)."""
        x = _as_batch(x, self.dim)
        _, mean, _, cov, _ = self._parts(t, x.shape[0])
        return _gaussian_log_density(x - mean, cov)

    def flow_map(self, x0: Tensor, t: float | Tensor) -> Tensor:
        """Exact ODE flow ``X_t = mu_t + (Sigma_t Sigma_0^{-1})^{1/2} (X_0 - mu_0)`` from time 0.

        math.md 8a; valid when S0, S1 and I commute (e.g. diagonal covariances), which is
        checked. ``Sigma_0`` must be invertible.
        """
        if not torch.allclose(self.S0 @ self.S1, self.S1 @ self.S0, atol=1e-12, rtol=1e-10):
            raise ValueError("flow_map needs commuting covariances S0 and S1 (e.g. diagonal)")
        x0 = _as_batch(x0, self.dim)
        batch = x0.shape[0]
        _, mean_t, _, cov_t, _ = self._parts(t, batch)
        _, mean_0, _, cov_0, _ = self._parts(0.0, batch)
        # For commuting SPD matrices (Sigma_t Sigma_0^{-1})^{1/2} = Sigma_t^{1/2} Sigma_0^{-1/2}.
        root = _sym_sqrt(cov_t) @ torch.linalg.inv(_sym_sqrt(cov_0))
        return mean_t + (root @ (x0 - mean_0).unsqueeze(-1)).squeeze(-1)

    def sample_marginal(self, n: int, t: float, generator: torch.Generator | None = None) -> Tensor:
        """``n`` exact draws of ``x_t ~ N(mu_t, Sigma_t)``, shape (n, d)."""
        _, mean, _, cov, _ = self._parts(t, 1)
        noise = torch.randn(n, self.dim, generator=generator, dtype=_DTYPE)
        return mean + noise @ _sym_sqrt(cov[0]).T

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws of the t = 0 marginal ``N(mu_0, Sigma_0)``: ``N(m0, S0)`` when
        alpha(0) = 1, beta(0) = gamma(0) = 0; for ``vp`` it includes the small data term of
        math.md 1.7, for ``mirror`` it is the data."""
        return self.sample_marginal(n, 0.0, generator)

    def sample_data(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws of the data ``x1 ~ N(m1, S1)``, shape (n, d)."""
        noise = torch.randn(n, self.dim, generator=generator, dtype=_DTYPE)
        return self.m1 + noise @ _sym_sqrt(self.S1).T


# -- Gaussian -> Gaussian mixture ------------------------------------------------------------

class MixtureOracle:
    """Exact fields for ``x0 ~ N(m0, S0)``, ``x1 ~ sum_k w_k N(m_k, S_k)`` (math.md 8b).

    Per component ``mu_k = alpha m0 + beta m_k``, ``Sigma_k = alpha^2 S0 + beta^2 S_k + gamma^2 I``,
    ``C_k = alpha alpha' S0 + beta beta' S_k + gamma gamma' I``; ``rho_t = sum_k w_k N(mu_k, Sigma_k)``
    and every field is the posterior-weighted average of the per-component Gaussian field, with
    posterior weights ``pi_k(x) = w_k N(x; mu_k, Sigma_k) / rho_t(x)`` computed in log space.
    """

    def __init__(self, interpolant: Interpolant, m0: Any, S0: Any, weights: Any,
                 means: Any, covs: Any):
        self.interpolant = interpolant
        self.m0 = _vector(m0, "m0")
        self.dim = d = self.m0.shape[0]
        self.S0 = _matrix(S0, "S0", d)
        w = torch.as_tensor(weights, dtype=_DTYPE)
        if w.dim() != 1 or w.numel() == 0 or bool((w < 0).any()) or not math.isclose(float(w.sum()), 1.0, abs_tol=1e-9):
            raise ValueError("weights must be a non-empty vector of non-negative numbers summing to 1, "
                             f"got {w.tolist()}")
        self.weights = w
        k = w.shape[0]
        self.means = torch.as_tensor(means, dtype=_DTYPE)
        if self.means.shape != (k, d):
            raise ValueError(f"means must have shape ({k}, {d}), got {tuple(self.means.shape)}")
        covs_t = torch.as_tensor(covs, dtype=_DTYPE)
        if covs_t.shape != (k, d, d):
            raise ValueError(f"covs must have shape ({k}, {d}, {d}), got {tuple(covs_t.shape)}")
        self.covs = torch.stack([_matrix(c, f"covs[{i}]", d) for i, c in enumerate(covs_t)])

    def _parts(self, t: float | Tensor, batch: int) -> tuple[_Schedule, Tensor, Tensor, Tensor, Tensor]:
        """Per-component ``mu_k`` (B,K,d), ``mu_k'`` (B,K,d), ``Sigma_k`` and ``C_k`` (B,K,d,d)."""
        sc = _Schedule(self.interpolant, _times(t, batch))
        eye = torch.eye(self.dim, dtype=_DTYPE)
        a, b = sc.alpha.reshape(-1, 1, 1), sc.beta.reshape(-1, 1, 1)
        ad, bd = sc.alpha_dot.reshape(-1, 1, 1), sc.beta_dot.reshape(-1, 1, 1)
        mean = a * self.m0 + b * self.means
        mean_dot = ad * self.m0 + bd * self.means
        a4, b4 = a.unsqueeze(-1), b.unsqueeze(-1)
        ad4, bd4 = ad.unsqueeze(-1), bd.unsqueeze(-1)
        g2 = sc.gamma.reshape(-1, 1, 1, 1) ** 2
        ggd = sc.gamma_gamma_dot.reshape(-1, 1, 1, 1)
        cov = a4 ** 2 * self.S0 + b4 ** 2 * self.covs + g2 * eye
        half_cov_dot = a4 * ad4 * self.S0 + b4 * bd4 * self.covs + ggd * eye
        return sc, mean, mean_dot, cov, half_cov_dot

    def _posterior(self, x: Tensor, mean: Tensor, cov: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(log rho_t, pi_k, w_k = Sigma_k^{-1}(x - mu_k))``."""
        diff = x.unsqueeze(1) - mean
        log_joint = torch.log(self.weights) + _gaussian_log_density(diff, cov)
        log_rho = torch.logsumexp(log_joint, dim=1)
        post = torch.exp(log_joint - log_rho.unsqueeze(1))
        w = torch.linalg.solve(cov, diff.unsqueeze(-1)).squeeze(-1)
        return log_rho, post, w

    def mean(self, t: float | Tensor) -> Tensor:
        """Mixture mean ``sum_k w_k mu_k``, shape (B, d)."""
        batch = t.shape[0] if isinstance(t, Tensor) and t.dim() == 1 else 1
        mean = self._parts(t, batch)[1]
        return (self.weights.reshape(1, -1, 1) * mean).sum(1)

    def cov(self, t: float | Tensor) -> Tensor:
        """Mixture covariance ``sum_k w_k (Sigma_k + mu_k mu_k^T) - mu mu^T``, shape (B, d, d)."""
        batch = t.shape[0] if isinstance(t, Tensor) and t.dim() == 1 else 1
        _, mean, _, cov, _ = self._parts(t, batch)
        wk = self.weights.reshape(1, -1, 1, 1)
        second = (wk * (cov + mean.unsqueeze(-1) * mean.unsqueeze(-2))).sum(1)
        mu = (self.weights.reshape(1, -1, 1) * mean).sum(1)
        return second - mu.unsqueeze(-1) * mu.unsqueeze(-2)

    def predict(self, name: str, x: Tensor, t: float | Tensor) -> Tensor:
        """The exact field ``name`` at ``(x, t)``: ``sum_k pi_k(x) f_k(x)`` with ``f_k`` the
        Gaussian field of component k (math.md 8b), shape (B, d)."""
        _check_prediction(name)
        x = _as_batch(x, self.dim)
        sc, mean, mean_dot, cov, half_cov_dot = self._parts(t, x.shape[0])
        _, post, w = self._posterior(x, mean, cov)
        if name == "noise" and self.interpolant.deterministic:
            name = "x0"
        if name == "score":
            per = -w
        elif name == "velocity":
            per = mean_dot + (half_cov_dot @ w.unsqueeze(-1)).squeeze(-1)
        elif name == "x0":
            per = self.m0 + sc.alpha.reshape(-1, 1, 1) * (w @ self.S0.T)
        elif name == "x1":
            per = self.means + sc.beta.reshape(-1, 1, 1) * (self.covs @ w.unsqueeze(-1)).squeeze(-1)
        else:
            per = sc.gamma.reshape(-1, 1, 1) * w
        return (post.unsqueeze(-1) * per).sum(1)

    def divergence(self, x: Tensor, t: float | Tensor) -> Tensor:
        """``div b = sum_k pi_k [tr(C_k Sigma_k^{-1}) + (g_k - s) . b_k]`` with
        ``g_k = -Sigma_k^{-1}(x - mu_k)`` and ``s = sum_k pi_k g_k`` (math.md 8b), shape (B,)."""
        x = _as_batch(x, self.dim)
        _, mean, mean_dot, cov, half_cov_dot = self._parts(t, x.shape[0])
        _, post, w = self._posterior(x, mean, cov)
        g = -w
        score = (post.unsqueeze(-1) * g).sum(1, keepdim=True)
        vel = mean_dot + (half_cov_dot @ w.unsqueeze(-1)).squeeze(-1)
        trace = torch.diagonal(torch.linalg.solve(cov, half_cov_dot), dim1=-2, dim2=-1).sum(-1)
        return (post * (trace + ((g - score) * vel).sum(-1))).sum(1)

    def log_prob(self, x: Tensor, t: float | Tensor) -> Tensor:
        """``log rho_t(x) = logsumexp_k (log w_k + log N(x; mu_k, Sigma_k))``, shape (B,)."""
        x = _as_batch(x, self.dim)
        _, mean, _, cov, _ = self._parts(t, x.shape[0])
        return self._posterior(x, mean, cov)[0]

    def sample_marginal(self, n: int, t: float, generator: torch.Generator | None = None) -> Tensor:
        """``n`` exact draws of ``x_t ~ rho_t``: a component by weight, then its Gaussian."""
        _, mean, _, cov, _ = self._parts(t, 1)
        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        noise = torch.randn(n, self.dim, generator=generator, dtype=_DTYPE)
        roots = _sym_sqrt(cov[0])
        return mean[0, comp] + (roots[comp] @ noise.unsqueeze(-1)).squeeze(-1)

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws of the t = 0 marginal (``N(m0, S0)`` under exact boundary conditions)."""
        return self.sample_marginal(n, 0.0, generator)

    def sample_data(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws of the data mixture ``x1``, shape (n, d)."""
        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        noise = torch.randn(n, self.dim, generator=generator, dtype=_DTYPE)
        roots = _sym_sqrt(self.covs)
        return self.means[comp] + (roots[comp] @ noise.unsqueeze(-1)).squeeze(-1)


# -- an oracle as a Field --------------------------------------------------------------------

class OracleField:
    """An oracle behind the :class:`~interpgen.protocols.Field` protocol: a "perfectly trained
    model" for sampler and likelihood tests.

    ``evaluate`` flattens ``x`` to ``(B, d)``, computes in float64 and returns each prediction
    in ``x``'s shape, dtype and device; ``nfe`` counts ``evaluate`` calls (one per call,
    whatever is asked). Every prediction is available and the time range is ``[0, 1]``. The
    results carry autograd's graph back to ``x`` (likelihood tests take divergences through them).
    """

    def __init__(self, oracle: GaussianOracle | MixtureOracle):
        self.oracle = oracle
        self.interpolant = oracle.interpolant
        self.nfe = 0

    def available(self) -> tuple[str, ...]:
        return PREDICTIONS

    def evaluate(self, x: Tensor, t: Tensor, wants: Sequence[str]) -> tuple[Tensor, ...]:
        for name in wants:
            _check_prediction(name)
        self.nfe += 1
        flat = x.reshape(x.shape[0], -1).to(device="cpu", dtype=_DTYPE)  # differentiable in x
        tt = t.to(device="cpu", dtype=_DTYPE) if isinstance(t, Tensor) else t
        return tuple(self.oracle.predict(name, flat, tt).reshape(x.shape).to(device=x.device, dtype=x.dtype)
                     for name in wants)

    def time_range(self, stochastic: bool) -> tuple[float, float]:
        return (0.0, 1.0)
