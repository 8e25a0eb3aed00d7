"""Fast sampling without retraining: network evaluations (NFE) against sample quality.

For each trained run (``--runs``; by default the 2D suite trained from ``recipes/2d/``, the
checkerboard one being the default recipe), every method is sampled at NFE 2/4/8/16/32/64 from
the same model and scored against fresh data:

* ``euler``, ``heun``, ``midpoint``, ``rk4``: plain fixed steps on the uniform grid
  (steps = NFE / stages);
* ``euler_edm``, ``heun_edm``: on the ``edm`` grid (rho = 7, noise level alpha/beta);
* ``*_tuned``: on the ``tuned`` grid (its 33 pilot evaluations on 256 points are not counted in
  the NFE; they are listed as ``tuning_nfe``);
* ``lazy_vp_euler``, ``lazy_vp_midpoint``: the model converted to the lazy VP schedule with
  ``sigma_d`` = the data's RMS standard deviation (math.md 3.3) (Heun is left out: its last stage
  evaluates the converted velocity at s = 1, where ``alpha_bar'(1) E[x0 | x_1]`` multiplies the
  model's error in E[x0 | x_1]);
* ``gvp_euler``: converted to GVP (the lazy VP schedule with sigma_d = 1);
* ``point_mass_1``, ``point_mass_data``: the few-step point-mass SDE of math.md 3.4 with final
  noise, sigma_d = 1 or the data std; ``point_mass_mean``: the noiseless final step;
  ``point_mass_em``: the generic route, Euler-Maruyama with the optimal diffusion on the model
  converted to the ``point_mass`` schedule (NFE - 1 steps plus SiT's "mean" last step);
* ``dopri5``: adaptive, at tolerances 1e-1 .. 1e-4 (its NFE is whatever the solver used).

Quality, in model space against the data set's ``reference`` rows: sliced Wasserstein-2 (2048
projections) for vector data; for labelled image data (e.g. digits) the squared Frechet distance in
the feature space of the data's small classifier (:mod:`interpgen_plugins.eval.feature_classifier`).

    python benchmarks/fast_sampling.py --train            # trains the 2D suite into /tmp/fast_runs
    python benchmarks/fast_sampling.py --runs /tmp/fast_runs/checkerboard /tmp/fast_runs/moons
    python benchmarks/fast_sampling.py --runs runs/digits     # image runs: classifier Frechet distance

Writes ``benchmarks/results/fast_sampling.json`` and ``.md``. Single-threaded; sampling is
deterministic given ``--seed``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

import interpgen as ig
from interpgen_plugins.eval import metrics
from interpgen.pipeline import Pipeline
from interpgen_plugins.samplers.fitted_grid import fitted_evaluations
from interpgen_plugins.samplers.time_grid import tuning_evaluations

ROOT = Path(__file__).resolve().parent.parent
SUITE = ("checkerboard", "moons", "spirals", "eight_gaussians")
NFES = (2, 4, 8, 16, 32, 64)
TOLERANCES = (1e-1, 1e-2, 1e-3, 1e-4)


def sampler_specs(nfe: int, sigma_data: float) -> dict[str, tuple[Any, int]]:
    """name -> (sampler params, tuning evaluations) for a budget of ``nfe`` evaluations."""
    part = ig.part
    tuning = tuning_evaluations("tuned")

    def converted(schedule: dict, inner: str, steps: int) -> Any:
        return part("sampler", "converted", schedule=schedule, sampler={"name": inner, "steps": steps})

    lazy = {"name": "lazy_vp", "sigma_d": sigma_data}
    specs: dict[str, tuple[Any, int]] = {
        "euler": (part("sampler", "euler", steps=nfe), 0),
        "euler_edm": (part("sampler", "euler", steps=nfe, grid="edm"), 0),
        "euler_tuned": (part("sampler", "euler", steps=nfe, grid="tuned"), tuning),
        "euler_fitted": (part("sampler", "euler", steps=nfe, grid="fitted"), fitted_evaluations(nfe, 1)),
        "lazy_vp_euler": (converted(lazy, "euler", nfe), 0),
        "gvp_euler": (converted({"name": "gvp"}, "euler", nfe), 0),
        "point_mass_1": (part("sampler", "point_mass", steps=nfe, sigma_d=1.0), 0),
        "point_mass_data": (part("sampler", "point_mass", steps=nfe, sigma_d=sigma_data), 0),
        "point_mass_mean": (part("sampler", "point_mass", steps=nfe, sigma_d=sigma_data, final_noise=False), 0),
    }
    if nfe >= 3:  # eps*-SDE on the converted point-mass schedule: nfe - 1 EM steps + the last step
        specs["point_mass_em"] = (converted({"name": "point_mass", "sigma_d": sigma_data}, "euler_maruyama", nfe - 1), 0)
    if nfe % 2 == 0:
        for name in ("heun", "midpoint"):
            specs[name] = (part("sampler", name, steps=nfe // 2), 0)
            specs[f"{name}_tuned"] = (part("sampler", name, steps=nfe // 2, grid="tuned"), tuning)
            specs[f"{name}_fitted"] = (part("sampler", name, steps=nfe // 2, grid="fitted"),
                                       fitted_evaluations(nfe // 2, 2))
        specs["heun_edm"] = (part("sampler", "heun", steps=nfe // 2, grid="edm"), 0)
        specs["lazy_vp_midpoint"] = (converted(lazy, "midpoint", nfe // 2), 0)
    if nfe % 4 == 0:
        specs["rk4"] = (part("sampler", "rk4", steps=nfe // 4), 0)
    return specs


def data_source(pipe: Pipeline) -> Any:
    """The run's data set, rebuilt from its recipe."""
    spec = pipe.recipe.data
    return pipe.registry.entry_for(spec).create(spec, root=pipe.root, registry=pipe.registry)


class Quality:
    """Sliced W2 for vector data; for labelled image data the squared Frechet distance in the
    feature space of the data's small classifier (:mod:`interpgen_plugins.eval.feature_classifier`). Both in
    model space."""

    def __init__(self, source: Any, reference: torch.Tensor):
        self.reference = reference
        self.classifier = None
        if reference.dim() > 2 and getattr(source, "num_classes", None):
            from interpgen_plugins.eval.feature_classifier import cached_classifier, classifier_features

            self.classifier = cached_classifier(source).model
            self.features = lambda x: classifier_features(self.classifier, x)
            self.reference_features = self.features(reference)

    @property
    def name(self) -> str:
        return "sw2" if self.classifier is None else "classifier_fd"

    def __call__(self, x: torch.Tensor) -> float:
        if self.classifier is not None:
            return metrics.feature_frechet_distance(self.features(x), self.reference_features)
        flat = self.reference.reshape(self.reference.shape[0], -1)
        return float(metrics.sliced_wasserstein(x.reshape(x.shape[0], -1), flat, num_projections=2048,
                                                generator=torch.Generator().manual_seed(7)))


def evaluate_run(run: Path, args: argparse.Namespace) -> dict:
    pipe = Pipeline.load(run)
    source = data_source(pipe)
    ref = source.reference(args.num, generator=torch.Generator().manual_seed(args.seed + 1))
    quality = Quality(source, ref)
    sigma_data = float(ref.reshape(ref.shape[0], -1).std(0).pow(2).mean().sqrt())
    noise_floor = quality(source.reference(args.num, generator=torch.Generator().manual_seed(args.seed + 2)))
    out: dict = {"run": str(run), "sigma_data": sigma_data, "reference_vs_reference": noise_floor,
                 "by_nfe": {}, "dopri5": []}
    for nfe in args.nfe:
        rows = {}
        for name, (spec, tuning) in sampler_specs(nfe, sigma_data).items():
            started = time.perf_counter()
            result = pipe.sample(args.num, sampler=spec, seed=args.seed, data_space=False)
            x, used = result.x, result.nfe
            rows[name] = {quality.name: quality(x), "nfe": used, "tuning_nfe": tuning,
                          "seconds": time.perf_counter() - started}
        out["by_nfe"][nfe] = rows
        print(f"{run.name} NFE {nfe}: " + ", ".join(f"{k} {next(iter(v.values())):.3f}" for k, v in rows.items()),
              flush=True)
    for tol in TOLERANCES:
        result = pipe.sample(args.num, sampler=ig.part("sampler", "dopri5", rtol=tol, atol=tol), seed=args.seed,
                             data_space=False)
        x, used = result.x, result.nfe
        out["dopri5"].append({"tol": tol, "nfe": used, quality.name: quality(x)})
    return out


def goal(result: dict) -> dict:
    """Best method at NFE 4 against plain Euler at NFE 32 and 64."""
    by = result["by_nfe"]
    metric = next(iter(next(iter(by.values()))["euler"].keys()))
    four = {k: v[metric] for k, v in by.get(4, by.get("4", {})).items()}
    best = min(four, key=four.get)
    euler = {n: by[n]["euler"][metric] for n in by if int(n) >= 32}
    return {"best_at_4": best, "value_at_4": four[best],
            "euler_32": euler.get(32, euler.get("32")), "euler_64": euler.get(64, euler.get("64")),
            "met": four[best] <= min(euler.values()) if euler else None}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def markdown(results: list[dict]) -> str:
    lines = ["# Fast sampling without retraining (NFE vs quality)", "",
             "Generated by `benchmarks/fast_sampling.py`; one model per run, sampled by every method.",
             "Lower is better; `reference` is the metric between two fresh data draws (the noise floor).", ""]
    for res in results:
        by = res["by_nfe"]
        nfes = list(by)
        metric = next(iter(next(iter(by.values()))["euler"].keys()))
        names = list(dict.fromkeys(name for n in nfes for name in by[n]))
        lines += [f"## {Path(res['run']).name} ({metric}; sigma_data = {res['sigma_data']:.3f}, "
                  f"reference = {res['reference_vs_reference']:.4f})", "",
                  "| method | " + " | ".join(f"NFE {n}" for n in nfes) + " |",
                  "|---|" + "---|" * len(nfes)]
        for name in names:
            cells = [f"{by[n][name][metric]:.4f}" if name in by[n] else "" for n in nfes]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines += ["", "dopri5: " + ", ".join(f"tol {d['tol']:g}: NFE {d['nfe']} -> {d[metric]:.4f}" for d in res["dopri5"]), ""]
        g = res["goal"]
        lines += [f"Goal (NFE 4 as good as Euler at >= 32): best at NFE 4 is `{g['best_at_4']}` with "
                  f"{g['value_at_4']:.4f}; Euler: {_fmt(g['euler_32'])} at 32, {_fmt(g['euler_64'])} at 64 -> "
                  f"**{ {True: 'met', False: 'not met', None: 'not measured'}[g['met']] }**.", ""]
    return "\n".join(lines)


def train_suite(folder: Path) -> list[Path]:
    runs = []
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    for name in SUITE:
        run = folder / name
        if not (run / "recipe.toml").exists():
            subprocess.run([sys.executable, "-m", "interpgen.cli", "train", str(ROOT / "recipes/2d" / f"{name}.toml"),
                            "--output", str(run)], check=True, env=env)
        runs.append(run)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="*", type=Path, default=None, help="trained run directories")
    parser.add_argument("--train", action="store_true", help="train the 2D suite into --folder first")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/fast_runs"))
    parser.add_argument("--num", type=int, default=4000, help="samples per method")
    parser.add_argument("--nfe", type=int, nargs="*", default=list(NFES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/fast_sampling.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    runs = args.runs if args.runs else (train_suite(args.folder) if args.train else [args.folder / n for n in SUITE])
    results = []
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for run in runs:  # the files are rewritten after every run, so a long sweep keeps what it has
        res = evaluate_run(run, args)
        res["goal"] = goal(res)
        results.append(res)
        args.out.write_text(json.dumps({"nfe": args.nfe, "num": args.num, "seed": args.seed, "results": results},
                                       indent=1))
        args.out.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
