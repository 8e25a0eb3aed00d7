"""Two CPU processes against one on the same recipe: steps per second and samples per second
of ``interpgen train``.

    python benchmarks/two_process.py --steps 600 --repeats 3

One process: ``interpgen train``. Two: ``ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu
--num_processes 2 --num_machines 1 -m interpgen train`` (DDP over gloo). Each process uses one
torch thread (``OMP_NUM_THREADS=1``); ``batch_size`` is per process, so two processes see twice
the samples per step. Rates are the trainer's own steady-state numbers from ``metrics.jsonl``
(median over logging windows, the first one left out as warm-up); the runs alternate and the
medians over repeats are reported. Results go to benchmarks/results/two_process.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
RECIPE = """
[data]
name = "checkerboard"

[network]
name = "mlp"
hidden = {hidden}
depth = {depth}

[train]
steps = {steps}
batch_size = {batch}
log_every = {log_every}
checkpoint_every = {steps}
sample_every = 0
seed = 0
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(recipe: Path, out: Path, processes: int) -> dict[str, float]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    train = ["-m", "interpgen", "train", str(recipe), "--output", str(out), "--quiet", "--overwrite"]
    if processes == 1:
        cmd = [sys.executable, *train]
    else:
        env["ACCELERATE_USE_CPU"] = "1"
        cmd = ["accelerate", "launch", "--multi_gpu", "--num_processes", str(processes), "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()), *train]
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][1:]
    return {"steps_per_second": statistics.median(r["steps_per_second"] for r in records),
            "samples_per_second": statistics.median(r["samples_per_second"] for r in records)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--depth", type=int, default=4)
    args = parser.parse_args()
    results: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        recipe = Path(tmp) / "recipe.toml"
        recipe.write_text(RECIPE.format(steps=args.steps, batch=args.batch, hidden=args.hidden, depth=args.depth,
                                        log_every=max(args.steps // 6, 1)))
        for _ in range(args.repeats):
            for n in (1, 2):
                results[n].append(run(recipe, Path(tmp) / f"run{n}", n))
    medians = {n: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for n, rs in results.items()}
    summary = {
        "setting": {**vars(args), "data": "checkerboard", "threads_per_process": 1, "machine": platform.machine(),
                    "cpu_count": os.cpu_count(), "load_average_at_end": os.getloadavg()},
        "runs": {str(n): rs for n, rs in results.items()},
        "median": {str(n): m for n, m in medians.items()},
        "two_over_one": {k: medians[2][k] / medians[1][k] for k in medians[1]},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "two_process.json").write_text(json.dumps(summary, indent=2))
    lines = [f"# Two CPU processes against one (checkerboard, MLP {args.depth}x{args.hidden}, batch {args.batch} "
             f"per process, {args.steps} steps, median of {args.repeats})", "",
             "| processes | steps/s | samples/s |", "|---|---|---|",
             *[f"| {n} | {m['steps_per_second']:.1f} | {m['samples_per_second']:.0f} |" for n, m in medians.items()],
             "", f"two / one: steps/s {summary['two_over_one']['steps_per_second']:.2f}, "
             f"samples/s {summary['two_over_one']['samples_per_second']:.2f} "
             f"(machine: {os.cpu_count()} cores, load average at the end {os.getloadavg()[0]:.1f})", ""]
    (RESULTS / "two_process.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
