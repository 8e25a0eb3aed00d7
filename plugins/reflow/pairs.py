"""Reflow (rectified flow, math.md 5): pairs ``(Z0, Z1)`` from a trained model, and the
straightness of its paths.

Given a trained velocity field ``v^k``, draw ``Z0 ~ rho0`` from the run's prior and solve the
probability-flow ODE to ``Z1 = ODESolve(v^k, Z0)``. The next model is trained on the coupling
``nu^{k+1} = Law(Z0, Z1)`` with the linear path (in a recipe: ``data = {name = "paired", path =
...}``, ``coupling = "paired"``, the run's prior kept for sampling). Reflow straightens paths,
measured by

    S = int_0^1 E || (Z1 - Z0) - dZ_t/dt ||^2 dt,

which is 0 exactly when every path is a straight line run at constant speed.

Pairs live in *model space* (where the network works); the run's data affine ``(shift,
scale)``, ``data = shift + scale * model``, is stored beside them so the reflowed model's samples
map back to data space like the original's. File format (``numpy.savez``): ``x0``, ``x1``
(float32, ``(N, *event)``), ``shift`` and ``scale`` when the run has an affine, ``labels`` (int64)
for a class-conditional run, and ``straightness`` (a 0-d float64 array).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor


def path_straightness(trajectory: Tensor, times: Tensor) -> Tensor:
    """``S`` of math.md 5 for each path, shape ``(B,)``, from its states on a time grid.

    ``trajectory`` is ``(K + 1, B, *event)``, the states at ``times`` ``(K + 1,)``. On each step
    ``dZ/dt`` is taken as the step's mean velocity ``(X_{k+1} - X_k) / h_k`` (for Euler this is the
    model's velocity at ``(t_k, X_k)``), ``Z1 - Z0`` as ``(X_K - X_0) / (t_K - t_0)`` (the mean
    velocity of the whole path, equal to ``Z1 - Z0`` on ``[0, 1]``), and the integral is the sum
    over steps of ``h_k || . ||^2`` (squared norm over all event dimensions)."""
    if trajectory.dim() < 2 or times.dim() != 1 or times.shape[0] != trajectory.shape[0] or times.shape[0] < 2:
        raise ValueError(f"need states (K + 1, B, *event) and times (K + 1,) with K >= 1, got "
                         f"{tuple(trajectory.shape)} and {tuple(times.shape)}")
    x = trajectory.reshape(trajectory.shape[0], trajectory.shape[1], -1).double()
    t = times.to(device=x.device, dtype=torch.float64)
    h = t[1:] - t[:-1]
    if not bool((h > 0).all()):
        raise ValueError("the time grid must increase")
    mean_velocity = (x[-1] - x[0]) / (t[-1] - t[0])
    step_velocity = (x[1:] - x[:-1]) / h.reshape(-1, 1, 1)
    return ((mean_velocity.unsqueeze(0) - step_velocity).pow(2).sum(-1) * h.reshape(-1, 1)).sum(0)


def reported_times(sampler: Any, result: Any) -> Tensor:
    """The time grid ``(K + 1,)`` the ODE sampler ``sampler`` reports with its trajectory
    (``SampleResult.times``): straightness needs it. A sampler that reports none (an adaptive
    solver, or a plugin's sampler that leaves ``times`` out) is refused by name."""
    times, trajectory = getattr(result, "times", None), getattr(result, "trajectory", None)
    if times is None or trajectory is None:
        raise ValueError(
            f"reflow measures straightness along the sampler's own time grid, and sampler "
            f"{type(sampler).__name__} reported none with its trajectory (SampleResult.times); use a fixed-step ODE "
            "sampler that reports its grid: euler, heun, midpoint or rk4 (any grid), or a plugin's sampler that "
            "returns times with its trajectory")
    times = torch.as_tensor(times, dtype=torch.float64).reshape(-1)
    if times.shape[0] != trajectory.shape[0]:
        raise ValueError(f"sampler {type(sampler).__name__} reported {times.shape[0]} times for a trajectory of "
                         f"{trajectory.shape[0]} states")
    return times


@dataclass(frozen=True)
class ReflowPairs:
    """Pairs in model space: ``x0`` the prior draws, ``x1`` the model's ODE solutions from them,
    ``labels`` (class-conditional runs) and the mean straightness of the sampled paths."""

    x0: Tensor
    x1: Tensor
    labels: Tensor | None
    straightness: float
    nfe: int


@torch.no_grad()
def generate_pairs(pipe: Any, num: int, *, sampler: Any = None, steps: int | None = None, seed: int = 0,
                   chunk: int = 2048, ema: bool = True) -> ReflowPairs:
    """Draw ``num`` prior samples ``Z0`` and integrate the model's ODE to ``Z1`` with
    ``sampler`` (a name or params; the run's sampler when None) and ``steps``. Work is done in
    chunks of ``chunk`` rows; one generator seeded with ``seed`` makes the whole set reproducible.
    For a class-conditional run each pair gets a label drawn uniformly from its classes.
    Straightness is measured along the same trajectories, on the grid the sampler reports
    (:func:`path_straightness`, :func:`reported_times`): any ODE sampler that reports its time grid
    is accepted, others are refused with a message."""
    if not isinstance(num, int) or num < 1 or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"num and chunk must be integers >= 1, got {num!r} and {chunk!r}")
    solver = pipe.sampler_for(sampler, steps=steps)
    if getattr(solver, "stochastic", False):
        raise ValueError(f"reflow pairs come from the probability-flow ODE: sampler {type(solver).__name__} "
                         "integrates an SDE; choose an ODE sampler that reports its grid (euler, heun, midpoint, rk4)")
    net = pipe.ema if (ema and pipe.ema is not None) else pipe.network
    device = next(net.parameters(), torch.empty(0)).device
    generator = torch.Generator(device=device).manual_seed(seed)
    num_classes = pipe.data.num_classes
    was_training = net.training
    net.eval()
    xs0, xs1, labels, total_s, nfe = [], [], [], 0.0, 0
    try:
        for start in range(0, num, chunk):
            n = min(chunk, num - start)
            y = (torch.randint(0, num_classes, (n,), generator=generator, device=device)
                 if num_classes is not None else None)
            field = pipe.field(ema=ema, labels=y)
            x0 = pipe.prior.sample(n, pipe.event_shape, generator=generator, device=device)
            result = solver.sample(field, x0, generator=generator, return_trajectory=True)
            total_s += float(path_straightness(result.trajectory, reported_times(solver, result)).sum())
            nfe = result.nfe
            xs0.append(x0.cpu())
            xs1.append(result.x.cpu())
            if y is not None:
                labels.append(y.cpu())
    finally:
        net.train(was_training)
    return ReflowPairs(x0=torch.cat(xs0), x1=torch.cat(xs1), labels=torch.cat(labels) if labels else None,
                       straightness=total_s / num, nfe=nfe)


def measure_straightness(pipe: Any, num: int = 2000, *, sampler: Any = "euler", steps: int | None = 100,
                         seed: int = 0) -> float:
    """Mean straightness ``S`` of ``num`` paths of the model (default: Euler, 100 steps), for
    reporting after training, e.g. for a reflowed run."""
    return generate_pairs(pipe, num, sampler=sampler, steps=steps, seed=seed).straightness


def save_pairs(path: str | Path, pairs: ReflowPairs, affine: tuple[Tensor, Tensor] | None) -> Path:
    """Write ``pairs`` (and the run's data affine) as the .npz the ``paired`` dataset reads."""
    out = Path(path)
    if out.suffix != ".npz":
        raise ValueError(f"the pairs file must end in .npz, got {out}")
    arrays: dict[str, np.ndarray] = {
        "x0": pairs.x0.float().numpy(), "x1": pairs.x1.float().numpy(),
        "straightness": np.asarray(pairs.straightness, dtype=np.float64),
    }
    if affine is not None:
        arrays["shift"], arrays["scale"] = (torch.as_tensor(a).detach().cpu().float().numpy() for a in affine)
    if pairs.labels is not None:
        arrays["labels"] = pairs.labels.numpy().astype(np.int64)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    return out
