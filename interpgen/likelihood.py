"""Exact log-likelihood of data under a field's probability-flow ODE (formulas: math.md 1.9).

The augmented state ``(X, l)`` solves ``d/dt (X, l) = (b(t, X), div b(t, X))`` backward in time from ``(x, 0)``
at ``t_end`` to ``t_start`` (the ``(t_start, t_end)`` of ``field.time_range(stochastic=False)``), so
``l(t_start) = -int div b dt`` and ``log rho1(x) = prior.log_prob(X_{t_start}) + l(t_start)``. The divergence is
exact (one autograd pass per event element) or Hutchinson's, unbiased for probes with ``E[u u^T] = I``, with ONE
probe per trajectory drawn before integrating so adaptive solvers see a deterministic right-hand side.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from interpgen.protocols import Field, OdeSolver, Prior
from interpgen.sde import standard_normal_like

DIVERGENCES: tuple[str, ...] = ("auto", "exact", "hutchinson")
PROBES: tuple[str, ...] = ("rademacher", "gaussian")
#: ``divergence="auto"`` uses the exact divergence up to this many elements per example.
EXACT_MAX_ELEMENTS = 16


class LikelihoodResult(NamedTuple):
    """``log_prob``: ``log rho1(x)`` per example, shape ``(B,)``; ``x0``: the ODE's end point at
    ``t_start`` (the latent of ``x``), shape of ``x``; ``nfe``: field evaluations used."""

    log_prob: Tensor
    x0: Tensor
    nfe: int


def exact_divergence(b: Tensor, x: Tensor, *, create_graph: bool) -> Tensor:
    """``div b = sum_i d b_i / d x_i`` for ``b, x`` of shape ``(B, n)`` with ``b`` computed
    row-wise from ``x``: one backward pass per coordinate ``i``."""
    columns = []
    for i in range(x.shape[1]):
        (grad,) = torch.autograd.grad(b[:, i].sum(), x, create_graph=create_graph, retain_graph=True,
                                      allow_unused=True)
        columns.append(torch.zeros_like(x[:, i]) if grad is None else grad[:, i])
    return torch.stack(columns, dim=1).sum(dim=1)


def hutchinson_divergence(b: Tensor, x: Tensor, probe: Tensor, *, create_graph: bool) -> Tensor:
    """``u . grad_x (b . u)`` for ``b, x, u`` of shape ``(B, n)``: one vector-Jacobian product."""
    (grad,) = torch.autograd.grad((b * probe).sum(), x, create_graph=create_graph, retain_graph=create_graph,
                                  allow_unused=True)
    if grad is None:
        return torch.zeros_like(x[:, 0])
    return (grad * probe).sum(dim=1)


def draw_probe(kind: str, like: Tensor, generator: torch.Generator | None) -> Tensor:
    """A probe ``u`` shaped like ``like`` with ``E[u u^T] = I``: Rademacher (+-1) or N(0, I)."""
    if kind == "gaussian":
        return standard_normal_like(like, generator)
    if kind != "rademacher":
        raise ValueError(f"probe must be one of {', '.join(map(repr, PROBES))}, got {kind!r}")
    device = generator.device if generator is not None else like.device
    u = torch.randint(0, 2, like.shape, generator=generator, device=device).to(like.dtype) * 2 - 1
    return u.to(like.device)


def _divergence_method(divergence: str, elements: int) -> str:
    if divergence not in DIVERGENCES:
        raise ValueError(f"divergence must be one of {', '.join(map(repr, DIVERGENCES))}, got {divergence!r}")
    if divergence == "auto":
        return "exact" if elements <= EXACT_MAX_ELEMENTS else "hutchinson"
    return divergence


def augmented_dynamics(field: Field, event_shape: tuple[int, ...], method: str, probe: Tensor | None,
                       *, create_graph: bool) -> Callable[[Tensor, Tensor], Tensor]:
    """The right-hand side ``(t, [x, l]) -> [b(t, x), div b(t, x)]`` on packed states of shape
    ``(B, n + 1)`` (math.md 1.9). Without ``create_graph`` each call starts from a detached
    state and returns detached values, so no graph survives between steps."""

    def dynamics(t: Tensor, y: Tensor) -> Tensor:
        batch, n = y.shape[0], y.shape[1] - 1
        with torch.enable_grad():
            state = y[:, :n]
            if not create_graph or not state.requires_grad:
                state = state.detach().requires_grad_(True)
            (b,) = field.evaluate(state.reshape(batch, *event_shape), t, ("velocity",))
            b = b.reshape(batch, n)
            if not b.requires_grad:
                raise ValueError(
                    "the field's velocity carries no autograd graph back to x (does the field detach its "
                    "input?), so its divergence cannot be computed; log_likelihood needs a field that is "
                    "differentiable in x")
            if method == "exact":
                div = exact_divergence(b, state, create_graph=create_graph)
            else:
                assert probe is not None
                div = hutchinson_divergence(b, state, probe, create_graph=create_graph)
        out = torch.cat([b, div[:, None]], dim=1)
        return out if create_graph else out.detach()

    return dynamics


def log_likelihood(field: Field, prior: Prior, x: Tensor, *, solver: OdeSolver, divergence: str = "auto",
                   probe: str = "rademacher", generator: torch.Generator | None = None,
                   create_graph: bool = False) -> LikelihoodResult:
    """``log rho1(x)`` by the instantaneous change of variables, with ``solver`` an ODE solver
    (``integrate(fn, y, t_start, t_end)``, e.g. the ``dopri5`` or ``rk4`` sampler). ``divergence``: ``"exact"``,
    ``"hutchinson"`` or ``"auto"`` (exact up to :data:`EXACT_MAX_ELEMENTS` elements per example); ``probe``: one
    Hutchinson probe per example from ``generator``. ``create_graph=True`` keeps the graph so the result can be
    differentiated with respect to ``x`` and the model's parameters; otherwise the result is detached.
    """
    if not isinstance(solver, OdeSolver):
        raise TypeError(
            f"solver must be an ODE solver with integrate(fn, y, t_start, t_end), such as the dopri5 or rk4 "
            f"sampler; got {type(solver).__name__}")
    if probe not in PROBES:
        raise ValueError(f"probe must be one of {', '.join(map(repr, PROBES))}, got {probe!r}")
    batch, event_shape = x.shape[0], tuple(x.shape[1:])
    n = math.prod(event_shape)
    method = _divergence_method(divergence, n)
    flat = x.reshape(batch, n)
    if not create_graph:
        flat = flat.detach()
    u = draw_probe(probe, flat, generator) if method == "hutchinson" else None
    start = torch.cat([flat, flat.new_zeros(batch, 1)], dim=1)
    t_start, t_end = field.time_range(stochastic=False)
    before = field.nfe
    dynamics = augmented_dynamics(field, event_shape, method, u, create_graph=create_graph)
    end, _ = solver.integrate(dynamics, start, float(t_end), float(t_start))
    x0 = end[:, :n].reshape(batch, *event_shape)
    log_prob = prior.log_prob(x0) + end[:, n]
    if not create_graph:
        log_prob = log_prob.detach()
    return LikelihoodResult(log_prob=log_prob, x0=x0, nfe=field.nfe - before)
