"""Trainer overhead: steady-state steps per second of interpgen's trainer against a bare
PyTorch loop with the same network, loss and batch.

    python benchmarks/trainer_overhead.py --steps 300 --repeats 7

The bare loop is ``loss = pipe.loss(batch); opt.zero_grad(); loss.backward(); opt.step()``
with AdamW on the same pipeline (the default recipe's data, MLP and interpolant). The trainer
runs with the matching settings (no EMA, no clipping, no run directory), so the difference is
the engine itself: Accelerate's wrappers, per-step seeding, the NaN guard (one gradient-norm
reduction and one host sync a step) and the logging bookkeeping. A second pair compares the
trainer's default features (EMA and gradient clipping) with a bare loop doing the same work.

Steady state: each measurement times ``N`` and ``2N`` steps from a fresh pipeline and keeps
the difference, which cancels set-up costs. Trainer and bare loop alternate, one torch thread,
and the medians are reported. Results go to benchmarks/results/trainer_overhead.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

import interpgen as ig
from interpgen.train.batches import batch_stream
from interpgen.train.ema import averaged_model

RESULTS = Path(__file__).parent / "results"


def make_pipe(args: argparse.Namespace) -> ig.Pipeline:
    return ig.Pipeline(data=ig.part("dataset", args.data),
                       network=ig.part("network", "mlp", hidden=args.hidden, depth=args.depth))


def bare_loop(args: argparse.Namespace, steps: int, features: bool) -> float:
    pipe = make_pipe(args)
    params = [p for m in pipe.trainable_modules() for p in m.parameters()]
    opt = torch.optim.AdamW(params, lr=1e-3)
    if features:
        pipe.init_ema()
        average = averaged_model(pipe.ema, 0.999)
    data = batch_stream(pipe.data, args.batch, generator=torch.Generator().manual_seed(0))
    noise = torch.Generator().manual_seed(1)
    started = _clock()
    for step in range(steps):
        loss = pipe.loss(next(data), generator=noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if features:
            torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if features:
            average.multi_avg_fn.step = step
            average.update_parameters(pipe.network)
    return _elapsed(started)


def trainer(args: argparse.Namespace, steps: int, features: bool) -> float:
    pipe = make_pipe(args)
    cfg = ig.Train(steps=steps, batch_size=args.batch, log_every=max(steps // 4, 1), sample_every=0,
                   ema_decay=0.999 if features else 0.0, grad_clip=1.0 if features else 0.0)
    started = _clock()
    pipe.fit(cfg, progress=False)
    return _elapsed(started)


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _elapsed(started: tuple[float, float]) -> tuple[float, float]:
    wall, cpu = _clock()
    return wall - started[0], cpu - started[1]


def steady_rate(fn, args: argparse.Namespace, features: bool) -> tuple[float, float]:
    """Steps per second (by wall time, by this process's CPU time) from the difference of a
    2N-step and an N-step run."""
    short = fn(args, args.steps, features)
    long = fn(args, 2 * args.steps, features)
    return tuple(args.steps / max(b - a, 1e-9) for a, b in zip(short, long))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--data", default="checkerboard")
    args = parser.parse_args()
    torch.set_num_threads(1)
    trainer(args, 5, True)  # warm-up: imports, Accelerate state
    keys = ("bare", "trainer", "bare+ema+clip", "trainer+ema+clip")
    rates: dict[str, dict[str, list[float]]] = {clock: {k: [] for k in keys} for clock in ("wall", "cpu")}
    for _ in range(args.repeats):
        for features in (False, True):
            suffix = "+ema+clip" if features else ""
            for name, fn in (("bare", bare_loop), ("trainer", trainer)):
                wall, cpu = steady_rate(fn, args, features)
                rates["wall"][name + suffix].append(wall)
                rates["cpu"][name + suffix].append(cpu)
    medians = {clock: {k: statistics.median(v) for k, v in table.items()} for clock, table in rates.items()}
    ratios = {clock: {"trainer_over_bare": m["trainer"] / m["bare"],
                      "with_ema_and_clip": m["trainer+ema+clip"] / m["bare+ema+clip"]} for clock, m in medians.items()}
    result = {
        "setting": {"steps": args.steps, "repeats": args.repeats, "batch": args.batch, "hidden": args.hidden,
                    "depth": args.depth, "data": args.data, "torch_threads": 1, "torch": torch.__version__,
                    "machine": platform.machine(), "python": platform.python_version(),
                    "cpu_count": os.cpu_count(), "load_average_at_end": os.getloadavg()},
        "steps_per_second": rates,
        "median_steps_per_second": medians,
        "ratios": ratios,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "trainer_overhead.json").write_text(json.dumps(result, indent=2))
    lines = [
        "# Trainer overhead (steps per second, median of "
        f"{args.repeats}; MLP {args.depth}x{args.hidden}, batch {args.batch}, {args.data}, 1 thread)", "",
        "Wall: steps per wall-clock second. CPU: steps per second of this process's CPU time, which",
        "other processes on a shared machine disturb less (the run is single-threaded).", "",
        "| loop | wall steps/s | CPU steps/s | wall, all repeats |", "|---|---|---|---|",
        *[f"| {k} | {medians['wall'][k]:.1f} | {medians['cpu'][k]:.1f} | "
          f"{', '.join(f'{r:.0f}' for r in rates['wall'][k])} |" for k in keys], "",
        f"trainer / bare: wall {ratios['wall']['trainer_over_bare']:.3f}, CPU {ratios['cpu']['trainer_over_bare']:.3f}; "
        f"with EMA and clipping in both: wall {ratios['wall']['with_ema_and_clip']:.3f}, "
        f"CPU {ratios['cpu']['with_ema_and_clip']:.3f}", ""]
    (RESULTS / "trainer_overhead.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
