"""Training-step time of each coupling through the trainer (`Pipeline.fit`), with and without
pairing the next batch ahead (interpgen.train.pair_ahead).

    python benchmarks/coupling_step_time.py [--batches 256 1024] [--steps 200] [--repeats 3]

Every variant trains the default MLP (4 x 256) on eight_gaussians with one intra-op thread; the
step time is (time of a run of ``warmup + steps`` steps - time of a run of ``warmup`` steps) /
``steps``, so start-up costs cancel. Variants run interleaved, ``repeats`` times; medians are
reported. Results go to benchmarks/results/coupling_step_time.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

import interpgen as ig

VARIANTS = {
    "independent": ({"name": "independent"}, None, True),
    "exact_ot": ({"name": "exact_ot"}, None, True),
    "exact_ot, pair_ahead=false": ({"name": "exact_ot"}, None, False),
    "sinkhorn(reg=0.05)": ({"name": "sinkhorn", "reg": 0.05}, None, True),
    "schrodinger_bridge(sigma=0.5)": ({"name": "schrodinger_bridge", "sigma": 0.5},
                                      {"name": "linear", "gamma": {"name": "a_brownian", "a": 0.25}}, True),
}


def run_seconds(coupling: dict, interpolant: dict | None, pair_ahead: bool, batch: int, steps: int) -> float:
    coupling, interpolant = dict(coupling), dict(interpolant or {"name": "linear"})
    pipe = ig.Pipeline(data=ig.part("dataset", "eight_gaussians"),
                       coupling=ig.part("coupling", coupling.pop("name"), **coupling),
                       interpolant=ig.part("interpolant", interpolant.pop("name"), **interpolant))
    started = time.perf_counter()
    pipe.fit(ig.Train(steps=steps, batch_size=batch, log_every=10**6, pair_ahead=pair_ahead))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "coupling_step_time"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    results: dict = {}
    for batch in args.batches:
        steps = max(20, args.steps * 256 // batch)
        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for _ in range(args.repeats):
            for name, (coupling, interpolant, ahead) in VARIANTS.items():
                short = run_seconds(coupling, interpolant, ahead, batch, args.warmup)
                long = run_seconds(coupling, interpolant, ahead, batch, args.warmup + steps)
                times[name].append((long - short) / steps * 1e3)
        results[str(batch)] = {name: {"median_ms": statistics.median(v), "all_ms": v} for name, v in times.items()}
        print(batch, {k: round(v["median_ms"], 2) for k, v in results[str(batch)].items()}, flush=True)
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2))
    lines = ["# Training-step time by coupling, through the trainer (median ms per step)", "",
             f"`python benchmarks/coupling_step_time.py`: MLP 4x256, eight_gaussians, one thread, "
             f"{args.repeats} interleaved repeats; overhead against `independent`.", "",
             "| variant | " + " | ".join(f"B={b} ms | B={b} overhead" for b in args.batches) + " |",
             "|---|" + "---:|---:|" * len(args.batches)]
    for name in VARIANTS:
        cells = []
        for b in args.batches:
            ms, base = results[str(b)][name]["median_ms"], results[str(b)]["independent"]["median_ms"]
            cells += [f"{ms:.2f}", f"{100 * (ms / base - 1):+.0f}%"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
