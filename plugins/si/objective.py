"""The training loss: the MSE form of the stochastic-interpolant losses (math.md 1.4).

For each prediction ``p`` the network output ``f(x_t, t)`` is regressed on the interpolant's
target ``T_p(x0, x1, z, t)``, whose conditional mean given ``x_t`` is the field ``p``:

    L = E_{t, (x0, x1) ~ nu, z} || f_p(x_t, t) - T_p ||^2,   x_t = alpha x0 + beta x1 + gamma z,

averaged over the event dimensions. Antithetic pairs (math.md 1.4, implementation notes) evaluate
the loss at ``z`` and ``-z`` and average, cancelling the ``gamma' z`` and ``z / gamma`` variance near
the ends. Times are uniform on ``[t_eps, 1 - t_eps]`` or logit-normal (sigmoid of a normal)
squeezed into the same interval.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from interpgen.fields import prediction_heads
from interpgen.protocols import Coupling, Interpolant, Prior
from interpgen.recipe import Objective


def sample_times(objective: Objective, num: int, *, generator: torch.Generator | None,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """Training times in ``[t_eps, 1 - t_eps]`` from the objective's time distribution."""
    if objective.time_sampling == "uniform":
        u = torch.rand(num, generator=generator, device=device, dtype=dtype)
    else:  # logit_normal: t = sigmoid(m + s n)
        n = torch.randn(num, generator=generator, device=device, dtype=dtype)
        u = torch.sigmoid(objective.logit_normal_mean + objective.logit_normal_std * n)
    eps = float(objective.t_eps or 0.0)
    return eps + (1.0 - 2.0 * eps) * u


def drop_labels(labels: Tensor, probability: float, null_label: int, *,
                generator: torch.Generator | None = None) -> Tensor:
    """Each label independently replaced by ``null_label`` with ``probability`` (per sample, not
    per batch: a batch then always mixes conditional and unconditional examples)."""
    if probability <= 0.0:
        return labels
    drop = torch.rand(labels.shape, generator=generator, device=labels.device) < probability
    return torch.where(drop, torch.full_like(labels, null_label), labels)


def interpolant_loss(network: Callable[..., Tensor], interpolant: Interpolant, prior: Prior, coupling: Coupling,
                     objective: Objective, x1: Tensor, labels: Tensor | None = None, *,
                     x0: Tensor | None = None, coupled: bool = False, num_classes: int | None = None,
                     generator: torch.Generator | None = None) -> Tensor:
    """One minibatch estimate of the loss above (a scalar).

    ``x0`` is the data's own source sample for paired data; otherwise it is drawn from the
    prior; ``coupled`` says it is already paired by the coupling (see
    :mod:`interpgen.pair_ahead`). With ``objective.label_dropout > 0`` labels are dropped to the null class
    ``num_classes`` per sample before the network sees them."""
    batch = x1.shape[0]
    if x0 is None:
        x0 = prior.sample(batch, tuple(x1.shape[1:]), generator=generator, device=x1.device, dtype=x1.dtype)
    elif x0.shape != x1.shape:
        raise ValueError(f"paired data: x0 has shape {tuple(x0.shape)} but x1 has {tuple(x1.shape)}")
    if not coupled:
        x0, x1 = coupling.pair(x0, x1, labels)
    if labels is not None and objective.label_dropout > 0:
        if num_classes is None:
            raise ValueError("objective.label_dropout needs labelled data with a known number of classes")
        labels = drop_labels(labels, objective.label_dropout, num_classes, generator=generator)
    t = sample_times(objective, batch, generator=generator, device=x1.device, dtype=x1.dtype)
    z = torch.randn(x1.shape, generator=generator, device=x1.device, dtype=x1.dtype)
    signs = (1.0, -1.0) if objective.antithetic and not interpolant.deterministic else (1.0,)
    preds = objective.predictions
    total = x1.new_zeros(())
    for sign in signs:
        zs = sign * z
        xt = interpolant.interpolate(x0, x1, zs, t)
        out = network(xt, t, labels) if labels is not None else network(xt, t)
        for name, pred in zip(preds, prediction_heads(out, preds, x1.shape[1])):
            target = interpolant.target(name, x0, x1, zs, t, gaussian_base=prior.standard_normal)
            total = total + (pred - target).pow(2).reshape(batch, -1).mean(dim=1).mean()
    return total / len(signs)
