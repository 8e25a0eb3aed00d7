"""Entropic optimal transport in the log domain, in torch on the batch's device (math.md 5,
"Schrödinger-bridge coupling": ``pi = sinkhorn(unif, unif, M, reg)``).

The entropic plan between uniform weights ``a = 1/B1`` and ``b = 1/B0`` minimises
``<pi, M> - reg H(pi)`` and has the form ``log pi_ij = (f_i + g_j - M_ij) / reg + log a_i + log b_j``.
Sinkhorn's iterations alternate the two exact marginal projections in log space,

    f_i = -reg logsumexp_j((g_j - M_ij) / reg + log b_j),
    g_j = -reg logsumexp_i((f_i - M_ij) / reg + log a_i),

which stays finite for any ``reg > 0`` (the plain kernel ``exp(-M/reg)`` underflows for small
``reg``). After each ``g`` update the columns sum exactly to ``b``; iteration stops when the rows
are within ``tol`` of ``a`` in L1 (checked every :data:`CHECK_EVERY` iterations so a GPU is not
synchronised each step) or after ``max_iter`` iterations.

Small ``reg`` converges slowly from zero potentials, so the solver first anneals
(epsilon scaling): it runs :data:`CHECK_EVERY` iterations at each of ``max M, max M / 2, ...`` down
to ``reg``, each stage starting from the previous stage's potentials (these warm-up iterations
count towards ``max_iter``). The fixed point, hence the plan, is the same as without annealing.

When ``max M / reg <=`` :data:`SCALING_LIMIT` nothing can underflow in float64 and the same
iterations run in the scaling form ``u = a / (K v)``, ``v = b / (K^T u)`` with the kernel
``K = exp(-M / reg)`` computed once (``f = reg log u``, ``g = reg log v``): two matrix-vector
products per iteration instead of two log-sum-exps over the whole matrix. Same plan, several
times faster; the log domain takes over for smaller ``reg``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

#: How often (in iterations) the row-marginal error is measured.
CHECK_EVERY = 10

#: Largest ``max M / reg`` solved in the scaling (kernel) form: exp(-200) is far above float64's
#: smallest normal number, so neither the kernel nor ``K v`` underflows.
SCALING_LIMIT = 200.0


def _scaling_sinkhorn(cost: Tensor, reg: float, max_iter: int, tol: float) -> Tensor:
    """Sinkhorn in the scaling form, in float64; returns the log plan in ``cost``'s dtype."""
    n, m = cost.shape
    scaled = cost.double() / reg
    kernel = torch.exp(-scaled)
    a, b = 1.0 / n, 1.0 / m
    v = torch.ones(m, dtype=torch.float64, device=cost.device)
    for it in range(1, max_iter + 1):
        u = a / (kernel @ v)
        v = b / (kernel.T @ u)
        if it % CHECK_EVERY == 0 or it == max_iter:
            error = (u * (kernel @ v) - a).abs().sum()
            if float(error) <= tol:
                break
    log_plan = torch.log(u).unsqueeze(1) - scaled + torch.log(v).unsqueeze(0)
    return log_plan.to(cost.dtype)


def log_sinkhorn(cost: Tensor, reg: float, *, max_iter: int = 1000, tol: float = 1e-6) -> Tensor:
    """The log of the entropic plan between uniform weights, shape of ``cost``, computed in the
    cost's dtype on its device (pass float64 for tight tolerances)."""
    if cost.dim() != 2:
        raise ValueError(f"sinkhorn needs a 2-D cost matrix, got shape {tuple(cost.shape)}")
    if not (reg > 0 and math.isfinite(reg)):
        raise ValueError(f"sinkhorn needs a regularisation > 0, got {reg!r}")
    if float(cost.max()) / reg <= SCALING_LIMIT:
        return _scaling_sinkhorn(cost, reg, max_iter, tol)
    n, m = cost.shape
    log_a, log_b = -math.log(n), -math.log(m)
    scaled = cost / reg
    f = torch.zeros(n, dtype=cost.dtype, device=cost.device)
    g = torch.zeros(m, dtype=cost.dtype, device=cost.device)
    used = 0
    stage = float(cost.max()) / 2.0
    while stage > reg and used + CHECK_EVERY < max_iter:  # annealing: potentials in cost units
        for _ in range(CHECK_EVERY):
            f = -stage * torch.logsumexp((g.unsqueeze(0) - cost) / stage + log_b, dim=1)
            g = -stage * torch.logsumexp((f.unsqueeze(1) - cost) / stage + log_a, dim=0)
        used += CHECK_EVERY
        stage /= 2.0
    f, g = f / reg, g / reg  # the loop below works with potentials divided by reg
    for it in range(used + 1, max_iter + 1):
        f = -torch.logsumexp(g.unsqueeze(0) - scaled + log_b, dim=1)
        g = -torch.logsumexp(f.unsqueeze(1) - scaled + log_a, dim=0)
        if it % CHECK_EVERY == 0 or it == max_iter:
            log_plan = f.unsqueeze(1) + g.unsqueeze(0) - scaled + (log_a + log_b)
            error = (log_plan.exp().sum(1) - 1.0 / n).abs().sum()
            if float(error) <= tol:
                return log_plan
    return f.unsqueeze(1) + g.unsqueeze(0) - scaled + (log_a + log_b)


def sample_rows(log_plan: Tensor, generator: torch.Generator) -> Tensor:
    """For each row ``i`` one column ``j ~ pi(j | i) = pi_ij / sum_j pi_ij`` by inverse-CDF
    sampling with uniforms drawn from ``generator`` (on its own device, then moved), shape
    ``(rows,)``, long, on the plan's device."""
    probs = torch.softmax(log_plan.double(), dim=1)
    cdf = probs.cumsum(dim=1)
    cdf[:, -1] = 1.0
    u = torch.rand(log_plan.shape[0], 1, generator=generator, device=generator.device, dtype=torch.float64)
    index = torch.searchsorted(cdf, u.to(cdf.device), right=True).squeeze(1)
    return index.clamp_(max=log_plan.shape[1] - 1)
