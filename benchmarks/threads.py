"""Torch intra-op threads against training speed: the MLP, U-Net and DiT recipes, each trained for
a fixed number of steps with 1 thread, 2 threads and torch's default, one fresh process per run.

    python benchmarks/threads.py --steps 150 --repeats 3
    python benchmarks/threads.py --recipes mlp --threads 1 2 4 0     # 0: torch's default

* ``mlp``: the embedded default recipe (2D checkerboard, MLP 4x256, batch 256);
* ``unet``: ``recipes/images/digits.toml`` (8x8 digits, U-Net of 693k parameters, batch 64);
* ``dit``: the same digits recipe with a small DiT (patch 2, depth 4, width 128, 4 heads; 16 tokens).

Each run is a fresh process that sets the count through the recipe (``train.threads``; 0 keeps
torch's default, the number of cores unless ``OMP_NUM_THREADS`` says otherwise, which is
removed from the environment here), trains ``--warmup`` steps, then times ``--steps`` more
(wall and CPU time of the process). Settings alternate within each repeat (the order rotates
between repeats), so a change in the machine's load falls on all of them. Reported: steps/s
(median over repeats and its range), the ratio of each setting's median to the best setting's,
and the range of the same ratio within each repeat. Results go to benchmarks/results/threads.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
DIT = """
[network]
name = "dit"
patch = 2
depth = 4
width = 128
heads = 4
"""

CHILD = r"""
import json, sys, time
from pathlib import Path
import attrs, torch
import interpgen as ig
from interpgen.recipe import load_recipe
path, threads, warmup, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
default = torch.get_num_threads()
reg = ig.registry()
recipe = load_recipe(path, reg, overrides=[f"train.threads={threads}", "train.log_every=1000000"])
pipe = ig.Pipeline.from_recipe(recipe, registry=reg, root=Path(path).parent)
pipe.fit(attrs.evolve(recipe.train, steps=warmup), progress=False)
wall, cpu = time.perf_counter(), time.process_time()
pipe.fit(attrs.evolve(recipe.train, steps=warmup + steps), progress=False)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
print(json.dumps({"wall": wall, "cpu": cpu, "torch_default_threads": default}))
"""


def recipes(tmp: Path) -> dict[str, Path]:
    digits = (ROOT / "recipes/images/digits.toml").read_text(encoding="utf-8")
    head, _, rest = digits.partition("[network]")
    dit = tmp / "digits_dit.toml"
    dit.write_text(head + DIT + "\n[train]" + rest.partition("[train]")[2], encoding="utf-8")
    return {"mlp": ROOT / "interpgen/default_recipe.toml", "unet": ROOT / "recipes/images/digits.toml", "dit": dit}


def run(recipe: Path, threads: int, warmup: int, steps: int) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    load = os.getloadavg()[0]
    done = subprocess.run([sys.executable, "-c", CHILD, str(recipe), str(threads), str(warmup), str(steps)],
                          env=env, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"run failed ({recipe.name}, threads {threads}):\n{done.stderr}")
    out = json.loads(done.stdout.splitlines()[-1])
    return {"steps_per_second": steps / out["wall"], "cpu_seconds_per_step": out["cpu"] / steps,
            "load_average": load, "torch_default_threads": out["torch_default_threads"]}


def label(threads: int) -> str:
    return "default" if threads == 0 else str(threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=150, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--recipes", nargs="+", default=["mlp", "unet", "dit"], choices=["mlp", "unet", "dit"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2, 0], help="0: torch's default")
    args = parser.parse_args()
    runs: dict[str, dict[str, list[dict[str, float]]]] = {r: {label(t): [] for t in args.threads} for r in args.recipes}
    with tempfile.TemporaryDirectory() as tmp:
        paths = recipes(Path(tmp))
        for repeat in range(args.repeats):
            order = args.threads[repeat % len(args.threads):] + args.threads[:repeat % len(args.threads)]
            for name in args.recipes:
                for threads in order:
                    result = run(paths[name], threads, args.warmup, args.steps)
                    runs[name][label(threads)].append(result)
                    print(f"repeat {repeat + 1} {name:5s} threads {label(threads):7s} "
                          f"{result['steps_per_second']:7.1f} steps/s  (load {result['load_average']:.1f})",
                          flush=True)
    table, summary = [], {}
    for name, by_setting in runs.items():
        rates = {s: [r["steps_per_second"] for r in rs] for s, rs in by_setting.items()}
        medians = {s: statistics.median(v) for s, v in rates.items()}
        best = max(medians, key=medians.get)
        within = {s: [rates[s][k] / rates[best][k] for k in range(args.repeats)] for s in rates}
        summary[name] = {"runs": by_setting, "median_steps_per_second": medians, "best": best,
                         "ratio_to_best": {s: medians[s] / medians[best] for s in medians},
                         "ratio_to_best_within_repeat": within}
        for s in rates:
            table.append(f"| {name} | {s} | {medians[s]:.1f} ({min(rates[s]):.1f}-{max(rates[s]):.1f}) | "
                         f"{medians[s] / medians[best]:.2f} | {min(within[s]):.2f}-{max(within[s]):.2f} |")
    default = next(iter(next(iter(runs.values())).values()))[0]["torch_default_threads"]
    loads = [r["load_average"] for by in runs.values() for rs in by.values() for r in rs]
    note = (f"{args.steps} timed steps after {args.warmup}, {args.repeats} repeats; torch's default here: {default} "
            f"threads; {os.cpu_count()} cores ({platform.machine()}); load average {min(loads):.1f}-{max(loads):.1f}")
    lines = ["| recipe | threads | steps/s, median (range) | median / best | within a repeat / best |",
             "|---|---|---|---|---|", *table, "", note, ""]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "threads.json").write_text(json.dumps({"setting": vars(args), "note": note, "recipes": summary},
                                                     indent=2))
    (RESULTS / "threads.md").write_text("# Torch threads per process\n\n" + "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
