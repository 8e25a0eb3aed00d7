"""Couplings benchmark (issue 7): training-step time of each coupling against ``independent``,
and sliced W2 at small NFE on the 2D suite for independent, exact OT and one reflow round, next to
TorchCFM's OT-CFM at the same budget.

    python benchmarks/couplings.py timing  --out benchmarks/results/couplings_timing.json
    python benchmarks/couplings.py quality --out benchmarks/results/couplings_quality.json
    python benchmarks/couplings.py report  --out benchmarks/results/couplings.md   # tables from both

Timing: one training step (draw x0, pair, loss, backward, AdamW) of the same MLP (interpgen's
default, width 256, depth 4) for every variant, interleaved in one process on one intra-op
thread, median over ``--reps`` steps. TorchCFM's variants (``ConditionalFlowMatcher`` and
``ExactOptimalTransportConditionalFlowMatcher``, which solves with POT's ``ot.emd`` and draws the
pairs from the plan with numpy) train the same network, so the ratios compare pairing cost only.

Quality: each model trains ``--steps`` steps at batch ``--batch``; samples are drawn with Euler
at NFE 1, 2, 4, 8 from the same Gaussian draws and scored by sliced W2 against fresh target
samples. ``reflow`` trains a new model on ``--pairs`` pairs drawn from the independent model
(midpoint, 32 steps), with the ``paired`` dataset and coupling; the TorchCFM baseline uses its own
example MLP (width 64), like benchmarks/twod_comparison.py. Straightness (math.md 5) is measured
with Euler, 100 steps.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

import interpgen as ig
from interpgen_plugins.eval.metrics import sliced_wasserstein
from interpgen.protocols import Batch
from interpgen_plugins.reflow.pairs import generate_pairs, measure_straightness, save_pairs
from interpgen_plugins.datasets import shapes

TARGETS = ("checkerboard", "moons", "spirals", "eight_gaussians")
NFES = (1, 2, 4, 8)


def target_samples(name: str, n: int, seed: int) -> torch.Tensor:
    return getattr(shapes, name)(n, torch.Generator().manual_seed(seed))


def score(x: torch.Tensor, ref: torch.Tensor) -> float:
    return float(sliced_wasserstein(x, ref, num_projections=2048, generator=torch.Generator().manual_seed(7)))


# -- timing -----------------------------------------------------------------------------------------
def _interpgen_step(coupling: dict, interpolant: dict | None = None):
    interpolant = dict(interpolant or {"name": "linear"})
    coupling = dict(coupling)
    pipe = ig.Pipeline(data=ig.part("dataset", "eight_gaussians"),
                       coupling=ig.part("coupling", coupling.pop("name"), **coupling),
                       interpolant=ig.part("interpolant", interpolant.pop("name"), **interpolant))
    opt = torch.optim.AdamW(pipe.network.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)

    def step(x1: torch.Tensor) -> None:
        loss = pipe.loss(Batch(x1), generator=gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _torchcfm_step(matcher_name: str):
    import torchcfm.conditional_flow_matching as cfm

    matcher = getattr(cfm, matcher_name)(sigma=0.0)
    net = ig.Pipeline(data=ig.part("dataset", "eight_gaussians")).network  # the same MLP as interpgen's
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)

    def step(x1: torch.Tensor) -> None:
        x0 = torch.randn(x1.shape, generator=gen)
        t, xt, ut = matcher.sample_location_and_conditional_flow(x0, x1, t=torch.rand(x1.shape[0], generator=gen))
        loss = (net(xt, t) - ut).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def run_timing(args: argparse.Namespace) -> dict:
    variants = {
        "independent": lambda: _interpgen_step({"name": "independent"}),
        "exact_ot": lambda: _interpgen_step({"name": "exact_ot"}),
        "sinkhorn(reg=0.05)": lambda: _interpgen_step({"name": "sinkhorn", "reg": 0.05}),
        "schrodinger_bridge(sigma=0.5)": lambda: _interpgen_step(
            {"name": "schrodinger_bridge", "sigma": 0.5},
            {"name": "linear", "gamma": {"name": "a_brownian", "a": 0.25}}),
        "torchcfm_independent": lambda: _torchcfm_step("ConditionalFlowMatcher"),
        "torchcfm_exact_ot": lambda: _torchcfm_step("ExactOptimalTransportConditionalFlowMatcher"),
    }
    out: dict = {}
    for batch in args.batches:
        steps = {name: make() for name, make in variants.items()}
        data = [target_samples("eight_gaussians", batch, seed=i) for i in range(args.reps + args.warmup)]
        times: dict[str, list[float]] = {name: [] for name in steps}
        for i, x1 in enumerate(data):
            for name, step in steps.items():  # interleaved, so load changes hit every variant alike
                started = time.perf_counter()
                step(x1)
                if i >= args.warmup:
                    times[name].append(time.perf_counter() - started)
        med = {name: statistics.median(v) * 1e3 for name, v in times.items()}
        out[str(batch)] = {
            "median_ms": med,
            "overhead_vs_independent": {
                name: med[name] / med["torchcfm_independent" if name.startswith("torchcfm") else "independent"] - 1.0
                for name in med},
        }
        print(f"batch {batch}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in med.items()), flush=True)
    return out


# -- quality ----------------------------------------------------------------------------------------
def _interpgen_model(name: str, args: argparse.Namespace, coupling: str = "independent", data=None):
    pipe = ig.Pipeline(data=data if data is not None else ig.part("dataset", name),
                       coupling=ig.part("coupling", coupling), seed=args.seed)
    started = time.perf_counter()
    pipe.fit(ig.Train(steps=args.steps, batch_size=args.batch, lr=args.lr, seed=args.seed, log_every=args.steps))
    return pipe, time.perf_counter() - started


def _interpgen_scores(pipe, args: argparse.Namespace, ref: torch.Tensor) -> dict:
    sw2 = {}
    for nfe in args.nfe:
        x = pipe.sample(args.num, sampler="euler", steps=nfe, seed=args.seed).x
        sw2[nfe] = score(x, ref)
    return {"sw2": sw2, "straightness": measure_straightness(pipe, 1000, steps=100, seed=args.seed)}


def _torchcfm_ot(name: str, args: argparse.Namespace, ref: torch.Tensor) -> dict:
    from torchcfm.conditional_flow_matching import ExactOptimalTransportConditionalFlowMatcher
    from torchcfm.models.models import MLP

    torch.manual_seed(args.seed)
    model = MLP(dim=2, time_varying=True, w=64)
    fm = ExactOptimalTransportConditionalFlowMatcher(sigma=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    gen = torch.Generator().manual_seed(args.seed)
    started = time.perf_counter()
    for _ in range(args.steps):
        x1 = target_samples(name, args.batch, int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        x0 = torch.randn(x1.shape, generator=gen)
        t, xt, ut = fm.sample_location_and_conditional_flow(x0, x1, t=torch.rand(x1.shape[0], generator=gen))
        loss = (model(torch.cat([xt, t[:, None]], dim=-1)) - ut).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - started
    model.eval()
    x0 = torch.randn(args.num, 2, generator=torch.Generator().manual_seed(args.seed))
    sw2 = {}
    with torch.no_grad():
        for nfe in args.nfe:
            x, h = x0.clone(), 1.0 / nfe
            for k in range(nfe):  # Euler, as for interpgen
                t = torch.full((x.shape[0], 1), k * h)
                x = x + h * model(torch.cat([x, t], dim=-1))
            sw2[nfe] = score(x, ref)
    return {"sw2": sw2, "train_seconds": seconds}


def run_quality(args: argparse.Namespace) -> dict:
    out: dict = {}
    for name in args.targets:
        ref = target_samples(name, args.num, seed=10_000)
        row: dict = {"two_sample_floor": score(target_samples(name, args.num, seed=20_000), ref)}
        indep, secs = _interpgen_model(name, args)
        row["independent"] = _interpgen_scores(indep, args, ref) | {"train_seconds": secs}
        ot_pipe, secs = _interpgen_model(name, args, coupling="exact_ot")
        row["exact_ot"] = _interpgen_scores(ot_pipe, args, ref) | {"train_seconds": secs}
        pairs = generate_pairs(indep, args.pairs, sampler="midpoint", steps=32, seed=args.seed + 1)
        with tempfile.TemporaryDirectory() as tmp:
            path = save_pairs(Path(tmp) / "pairs.npz", pairs, indep.data_affine)
            reflowed, secs = _interpgen_model(name, args, coupling="paired",
                                              data=ig.part("dataset", "paired", path=str(path)))
        row["reflow"] = _interpgen_scores(reflowed, args, ref) | {"train_seconds": secs}
        row["torchcfm_exact_ot"] = _torchcfm_ot(name, args, ref)
        out[name] = row
        for model in ("independent", "exact_ot", "reflow", "torchcfm_exact_ot"):
            r = row[model]
            sw = "  ".join(f"{n}:{r['sw2'][n]:.3f}" for n in args.nfe)
            extra = f"  S={r['straightness']:.3f}" if "straightness" in r else ""
            print(f"{name:16s} {model:18s} {sw}{extra}  (floor {row['two_sample_floor']:.3f})", flush=True)
    return out


def write_report(results_dir: Path) -> str:
    """Markdown tables from ``couplings_timing.json`` and ``couplings_quality.json``."""
    lines = ["# Couplings benchmark", "", "Generated by `python benchmarks/couplings.py report` from the JSON files "
             "beside this one (see the script's docstring for the set-up).", ""]
    timing_file, quality_file = results_dir / "couplings_timing.json", results_dir / "couplings_quality.json"
    if timing_file.exists():
        timing = json.loads(timing_file.read_text())
        cfg = timing["config"]
        lines += ["## Training-step time (median ms, one intra-op thread, interleaved)", "",
                  f"{cfg['reps']} timed steps per variant after {cfg['warmup']} warm-up steps; overhead is against "
                  "`independent` for interpgen and against TorchCFM's `ConditionalFlowMatcher` for TorchCFM; "
                  "every variant trains the same MLP (width 256, depth 4).", "",
                  "| variant | " + " | ".join(f"B={b} ms | B={b} overhead" for b in timing["results"]) + " |",
                  "|---|" + "---:|---:|" * len(timing["results"])]
        names = next(iter(timing["results"].values()))["median_ms"]
        for name in names:
            cells = []
            for res in timing["results"].values():
                cells += [f"{res['median_ms'][name]:.1f}", f"{100 * res['overhead_vs_independent'][name]:+.0f}%"]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    if quality_file.exists():
        quality = json.loads(quality_file.read_text())
        cfg = quality["config"]
        nfes = [str(n) for n in cfg["nfe"]]
        lines += ["## Sliced W2 at small NFE (Euler), 2D suite", "",
                  f"{cfg['steps']} training steps at batch {cfg['batch']}, lr {cfg['lr']}; {cfg['num']} samples scored "
                  f"against fresh target samples; reflow: one round on {cfg['pairs']} pairs from the independent "
                  "model. S is the straightness of math.md 5 (Euler, 100 steps, 1000 paths). The floor is the "
                  "sliced W2 between two independent target samples of the same size.", "",
                  "| target | model | " + " | ".join(f"NFE {n}" for n in nfes) + " | S |",
                  "|---|---|" + "---:|" * (len(nfes) + 1)]
        for target, row in quality["results"].items():
            for model in ("independent", "exact_ot", "reflow", "torchcfm_exact_ot"):
                r = row[model]
                s_cell = f"{r['straightness']:.3f}" if "straightness" in r else "—"
                lines.append(f"| {target} | {model} | " + " | ".join(f"{r['sw2'][n]:.3f}" for n in nfes)
                             + f" | {s_cell} |")
            lines.append(f"| {target} | (floor) | " + " | ".join(f"{row['two_sample_floor']:.3f}" for _ in nfes)
                         + " | |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["timing", "quality", "report"])
    parser.add_argument("--batches", nargs="+", type=int, default=[256, 1024])
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--targets", nargs="+", default=list(TARGETS))
    parser.add_argument("--nfe", nargs="+", type=int, default=list(NFES))
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--pairs", type=int, default=8192)
    parser.add_argument("--num", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.mode == "report":
        text = write_report(Path(__file__).parent / "results")
        if args.out:
            args.out.write_text(text)
        print(text)
        return
    result = run_timing(args) if args.mode == "timing" else run_quality(args)
    config = {k: v for k, v in vars(args).items() if k != "out"}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"config": config, "results": result}, indent=2, default=str))


if __name__ == "__main__":
    main()
