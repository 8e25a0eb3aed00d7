"""What the ``fitted`` time grid costs a user, on a digits run (issue 13, item 3).

    interpgen train recipes/images/digits.toml --output runs/digits
    python benchmarks/fitted_grid_cost.py runs/digits [--num 60] [--steps 4] [--label before]

Samples ``--num`` digits with Euler at ``--steps`` steps on the uniform, tuned and fitted grids,
the fitted one three times in a row on the same pipeline (a user's repeated ``pipe.sample``), and
once more from a freshly loaded pipeline (a user's next ``interpgen sample`` of the same run).
Prints wall-clock seconds (uniform and tuned: the best of three calls) and the fit's model
evaluations, and appends them to ``benchmarks/results/fitted_grid_cost.json`` under
``--label``. Single-threaded (``torch.set_num_threads(1)``) so the numbers do not depend on how
busy the other cores are. The run's ``grids/`` folder is emptied first so the first fitted call
fits.

The recorded ``before`` is the code before the grid was kept (commit ad56101), run with this
script on the same run and machine: ``git archive ad56101 interpgen plugins`` unpacked into a
folder whose ``plugins`` is renamed ``interpgen_plugins``, put first on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

import interpgen as ig
from interpgen.pipeline import Pipeline

ROOT = Path(__file__).resolve().parent.parent


def timed(fn) -> tuple[float, object]:  # noqa: ANN001
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--num", type=int, default=60)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--label", default="now")
    args = parser.parse_args()
    torch.set_num_threads(1)
    shutil.rmtree(Path(args.run) / "grids", ignore_errors=True)
    pipe = Pipeline.load(args.run)
    row: dict[str, float] = {}
    for grid in ("uniform", "tuned"):  # the best of three calls
        spec = ig.part("sampler", "euler", steps=args.steps, grid=grid)
        row[f"euler {grid}"] = min(timed(lambda: pipe.sample(args.num, sampler=spec, seed=1))[0] for _ in range(3))
    spec = ig.part("sampler", "euler", steps=args.steps, grid="fitted")
    results = []
    for k in range(3):
        row[f"euler fitted, call {k + 1}"], out = timed(lambda: pipe.sample(args.num, sampler=spec, seed=1 + k))
        results.append(out)
    fresh = Pipeline.load(args.run)
    row["euler fitted, fresh load of the run"], again = timed(lambda: fresh.sample(args.num, sampler=spec, seed=1))
    row["same samples after a fresh load"] = float(torch.equal(again.x, results[0].x))
    try:  # the fit's evaluations (the function exists in both the old and the new code)
        from interpgen_plugins.samplers.fitted_grid import fitted_evaluations

        row["fit evaluations (not seconds)"] = float(fitted_evaluations(args.steps, 1))
    except ImportError:
        pass
    for key, value in row.items():
        print(f"{key:40s} {value:8.2f}")
    out_file = ROOT / "benchmarks" / "results" / "fitted_grid_cost.json"
    saved = json.loads(out_file.read_text()) if out_file.exists() else {}
    saved[args.label] = {"run": str(args.run), "num": args.num, "steps": args.steps, "threads": 1, "seconds": row}
    out_file.write_text(json.dumps(saved, indent=2) + "\n")


if __name__ == "__main__":
    main()
