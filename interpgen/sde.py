"""The one stepping loop of the SDE samplers, and its Euler-Maruyama step (math.md 1.3, 2.2).

For ``dX = f(t, X) dt + sigma(t) dW`` on a grid ``t_0 < ... < t_K`` (SI's forward SDE: ``f = b + eps s``,
``sigma^2 = 2 eps``), Euler-Maruyama is

    X_{k+1} = X_k + f(t_k, X_k) dt_k + sqrt(sigma^2(t_k) dt_k) xi_k,    xi_k ~ N(0, I),    dt_k = t_{k+1} - t_k.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from interpgen.tensors import batch_time, expand_like

#: ``step(x, t, dt, xi) -> x at t + dt``; ``xi`` is None when the loop draws no noise.
Step = Callable[[Tensor, float, float, "Tensor | None"], Tensor]


def standard_normal_like(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """``xi ~ N(0, I)`` with ``x``'s shape, dtype and device, drawn from ``generator`` (on its own device, then
    moved) or from torch's global stream when it is None."""
    device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)


def euler_maruyama_step(drift: Callable[[Tensor, Tensor], Tensor],
                        diffusion_squared: Callable[[Tensor], Tensor]) -> Step:
    """Euler-Maruyama, without the noise term when ``xi`` is None. ``drift(t, x)`` and ``diffusion_squared(t)``
    (``sigma^2``, shape ``(B,)``) take a time tensor of shape ``(B,)``."""

    def step(x: Tensor, t: float, dt: float, xi: Tensor | None) -> Tensor:
        tb = batch_time(t, x.shape[0], like=x)
        x = x + dt * drift(tb, x)
        if xi is None:
            return x
        return x + expand_like((dt * diffusion_squared(tb)).sqrt(), x) * xi

    return step


def integrate_sde(step: Step, x: Tensor, times: Sequence[float], *, generator: torch.Generator | None = None,
                  noise: bool = True, states: list[Tensor] | None = None) -> Tensor:
    """``x`` carried through ``times`` by ``step``, with a fresh ``xi ~ N(0, I)`` from ``generator`` at each step
    (``xi = None`` and no draws when ``noise`` is False). Each new state is appended to ``states`` when given."""
    for t, t_next in zip(times[:-1], times[1:]):
        x = step(x, t, t_next - t, standard_normal_like(x, generator) if noise else None)
        if states is not None:
            states.append(x)
    return x


__all__ = ["Step", "euler_maruyama_step", "integrate_sde", "standard_normal_like"]
