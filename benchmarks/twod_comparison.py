"""2D comparison: interpgen's default recipe against Meta's flow_matching and TorchCFM.

Each library trains on the same target for the same number of steps at the same batch size and
learning rate, with the network and ODE solvers its own examples use; then each is sampled at a
given number of network evaluations (NFE) and scored by sliced Wasserstein-2 against fresh target
samples. For the baselines every fixed-step solver they offer that fits the NFE exactly (Euler with
NFE steps, midpoint with NFE/2, RK4 with NFE/4) is tried and the best is reported.

    python benchmarks/twod_comparison.py --out benchmarks/results/twod.json

Needs the ``bench`` extra (flow-matching, and torchcfm installed with ``--no-deps``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn

import interpgen as ig
from interpgen_plugins.eval.metrics import sliced_wasserstein
from interpgen_plugins.datasets import shapes

TARGETS = ("checkerboard", "moons", "spirals", "eight_gaussians")
NFES = (2, 4, 8, 16, 64)


def target_samples(name: str, n: int, seed: int) -> torch.Tensor:
    return getattr(shapes, name)(n, torch.Generator().manual_seed(seed))


def score(x: torch.Tensor, ref: torch.Tensor) -> float:
    return float(sliced_wasserstein(x, ref, num_projections=2048, generator=torch.Generator().manual_seed(7)))


# -- interpgen --------------------------------------------------------------------------------
def run_interpgen(name: str, args: argparse.Namespace, ref: torch.Tensor) -> dict:
    recipe_overrides = [f"data.name={name}", f"train.steps={args.steps}", f"train.batch_size={args.batch}",
                        f"train.lr={args.lr}", f"train.seed={args.seed}", *args.set]
    recipe = ig.load_recipe(Path(ig.__file__).parent / "default_recipe.toml", ig.registry(), overrides=recipe_overrides)
    pipe = ig.Pipeline.from_recipe(recipe)
    started = time.perf_counter()
    pipe.fit(recipe.train)
    seconds = time.perf_counter() - started
    out: dict = {"train_seconds": seconds, "sw2": {}, "by_sampler": {}}
    default = recipe.sample.sampler
    per_eval = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}
    for nfe in args.nfe:
        rows = {}
        for sampler, cost in per_eval.items():
            if nfe % cost:
                continue
            result = pipe.sample(args.num, sampler=ig.part("sampler", sampler), steps=nfe // cost, seed=args.seed)
            rows[sampler] = {"sw2": score(result.x, ref), "nfe": result.nfe}
        out["by_sampler"][nfe] = rows
        default_name = ig.registry().entry_for(default).name
        out["sw2"][nfe] = rows[default_name]["sw2"] if default_name in rows else min(r["sw2"] for r in rows.values())
    return out


# -- baselines --------------------------------------------------------------------------------
class FlowMatchingExampleMLP(nn.Module):
    """The MLP of flow_matching's 2D example: concat(x, t) through four Swish layers of width 512."""

    def __init__(self, dim: int = 2, hidden: int = 512):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim + 1, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
                                 nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = t.reshape(-1, 1).expand(x.shape[0], 1)
        return self.net(torch.cat([x, t], dim=1))


def _train(model: nn.Module, loss_fn, name: str, args: argparse.Namespace) -> float:
    gen = torch.Generator().manual_seed(args.seed)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    started = time.perf_counter()
    for _ in range(args.steps):
        x1 = target_samples(name, args.batch, int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        loss = loss_fn(x1, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - started


def _best_fixed_step(solve, nfe: int, ref: torch.Tensor) -> dict:
    rows = {}
    for method, cost in (("euler", 1), ("midpoint", 2), ("rk4", 4)):
        if nfe % cost == 0:
            rows[method] = score(solve(method, nfe // cost), ref)
    best = min(rows, key=rows.get)
    return {"sw2": rows[best], "method": best, "all": rows}


def run_flow_matching(name: str, args: argparse.Namespace, ref: torch.Tensor) -> dict:
    from flow_matching.path import AffineProbPath
    from flow_matching.path.scheduler import CondOTScheduler
    from flow_matching.solver import ODESolver

    torch.manual_seed(args.seed)
    model = FlowMatchingExampleMLP()
    path = AffineProbPath(scheduler=CondOTScheduler())

    def loss_fn(x1, gen):
        x0 = torch.randn(x1.shape, generator=gen)
        t = torch.rand(x1.shape[0], generator=gen)
        sample = path.sample(x_0=x0, x_1=x1, t=t)
        return (model(sample.x_t, sample.t) - sample.dx_t).pow(2).mean()

    seconds = _train(model, loss_fn, name, args)
    model.eval()
    solver = ODESolver(velocity_model=lambda x, t: model(x, t))
    x0 = torch.randn(args.num, 2, generator=torch.Generator().manual_seed(args.seed))

    def solve(method: str, steps: int) -> torch.Tensor:
        with torch.no_grad():
            return solver.sample(x_init=x0, step_size=None, method=method, time_grid=torch.linspace(0, 1, steps + 1))

    return {"train_seconds": seconds} | _sweep(solve, args, ref)


def run_torchcfm(name: str, args: argparse.Namespace, ref: torch.Tensor) -> dict:
    from torchcfm.conditional_flow_matching import ConditionalFlowMatcher
    from torchcfm.models.models import MLP
    from torchdiffeq import odeint

    torch.manual_seed(args.seed)
    model = MLP(dim=2, time_varying=True, w=64)
    fm = ConditionalFlowMatcher(sigma=0.0)

    def loss_fn(x1, gen):
        x0 = torch.randn(x1.shape, generator=gen)
        t, xt, ut = fm.sample_location_and_conditional_flow(x0, x1, t=torch.rand(x1.shape[0], generator=gen))
        return (model(torch.cat([xt, t[:, None]], dim=-1)) - ut).pow(2).mean()

    seconds = _train(model, loss_fn, name, args)
    model.eval()
    x0 = torch.randn(args.num, 2, generator=torch.Generator().manual_seed(args.seed))

    def rhs(t, x):
        return model(torch.cat([x, t.expand(x.shape[0], 1)], dim=-1))

    def solve(method: str, steps: int) -> torch.Tensor:
        with torch.no_grad():
            return odeint(rhs, x0, torch.linspace(0, 1, steps + 1), method=method)[-1]

    return {"train_seconds": seconds} | _sweep(solve, args, ref)


def _sweep(solve, args: argparse.Namespace, ref: torch.Tensor) -> dict:
    out: dict = {"sw2": {}, "detail": {}}
    for nfe in args.nfe:
        best = _best_fixed_step(solve, nfe, ref)
        out["sw2"][nfe] = best["sw2"]
        out["detail"][nfe] = best
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", nargs="+", default=list(TARGETS))
    parser.add_argument("--nfe", nargs="+", type=int, default=list(NFES))
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num", type=int, default=5000, help="samples per evaluation")
    parser.add_argument("--libraries", nargs="+", default=["interpgen", "flow_matching", "torchcfm"])
    parser.add_argument("--set", action="append", default=[], help="recipe override for interpgen")
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op threads for every library (1 is fastest for these small MLPs)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    runners = {"interpgen": run_interpgen, "flow_matching": run_flow_matching, "torchcfm": run_torchcfm}
    results: dict = {"config": {k: v for k, v in vars(args).items() if k != "out"}, "targets": {}}
    for name in args.targets:
        ref = target_samples(name, args.num, seed=10_000)
        floor = score(target_samples(name, args.num, seed=20_000), ref)
        results["targets"][name] = {"two_sample_floor": floor}
        for lib in args.libraries:
            res = runners[lib](name, args, ref)
            results["targets"][name][lib] = res
            row = "  ".join(f"{nfe}:{res['sw2'][nfe]:.3f}" for nfe in args.nfe)
            print(f"{name:16s} {lib:14s} {row}   (train {res['train_seconds']:.0f}s; floor {floor:.3f})", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
