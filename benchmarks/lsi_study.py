"""The LSI study (issue 14, docs/lsi.md "The study"): the paper's ablations rerun on digits and faces,
several seeds each, mean ± standard deviation on held-out data. Resumable: one result file per run.

Every run trains one recipe (``recipes/lsi/digits_lsi.toml``, ``recipes/lsi/faces_lsi.toml``, an
ablation ``recipes/lsi/ablations/<data>_<variant>.toml``, or the pixel-space baseline) with
``train.seed = seed`` and the study's step budget, then scores class-conditional samples against the
held-out rows with ``interpgen_plugins.eval.evaluate``: the classifier Fréchet distance (lower is
better), with each recipe's own sampler (the LSI recipes: ``lsi_sde`` with ``stochasticity = 0``,
the probability-flow ODE the paper reports; the pixel baseline: Euler) at 100 steps, and for the
``joint`` and ``pixel`` runs also at 10 and 300 steps (the FLOPs table). Tables:

* joint (beta > 0) against frozen (beta -> 0: stop-gradient on z1), on digits and faces;
* the four parameterisations and the priors (with the paper's FIDs beside ours), the encoder noise;
* FLOPs per sample at 10, 100, 300 steps against pixel-space SI of about equal parameters:
  ``1 - (F_D + N F_L) / (N F_obs)`` (math.md 4.7), the measured sampling FLOPs (``lsi_sde`` runs N + 1
  evaluations: the last is the denoising step), and the Fréchet distance of each;
* which of the paper's orderings hold here (the gap against twice its standard error over seeds).

Each run writes ``<out>/runs/<data>_<variant>_s<seed>_n<steps>_<recipe hash>.json`` atomically when it
finishes; a run whose file exists is skipped, so an interrupted study resumes where it stopped and
can span sessions. ``--report`` only rebuilds ``<out>/lsi_study.json`` and ``.md`` from the files.

    python benchmarks/lsi_study.py                      # the whole table: about two hours of 2 CPU cores
    python benchmarks/lsi_study.py --steps 20 --seeds 1 --out /tmp/lsi_tiny   # proves it works
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
BASES = {"digits": "lsi/digits_lsi.toml", "faces": "lsi/faces_lsi.toml"}
PIXEL = {"digits": "images/digits.toml", "faces": "lsi/ablations/faces_pixel_si.toml"}

#: variant -> (table, what it changes); the recipe is the base's for "joint", the ablation's otherwise.
VARIANTS: dict[str, tuple[str, str]] = {
    "joint": ("training", "joint: encoder, decoder and latent model together (beta > 0)"),
    "frozen": ("training", "frozen: stop-gradient on z1 (beta -> 0)"),
    "origflow": ("parameterisation", "OrigFlow"),
    "denoising": ("parameterisation", "Denoising (sampling grid c = 2)"),
    "noisepred": ("parameterisation", "NoisePred (sampling grid c = 2, from t = 0.03)"),
    "prior_laplacian": ("prior", "Laplace (unit variance)"),
    "prior_uniform": ("prior", "uniform (unit variance)"),
    "prior_mixture": ("prior", "mixture, one component per encoded image (std 0.1)"),
    "prior_learnable": ("prior", "learnable diagonal Gaussian"),
    "noise_learned": ("encoder noise", "c learned"),
    "noise_none": ("encoder noise", "c = 0 (deterministic encoder)"),
    "pixel": ("flops", "pixel-space SI, about equal parameters (Euler)"),
}
#: The paper's FIDs at 128^2 (math.md 4.3); InterpFlow with a Gaussian prior is the base (joint).
PAPER_FID = {"joint": 3.76, "origflow": 4.56, "denoising": 4.28, "noisepred": 4.73, "prior_laplacian": 4.45,
             "prior_uniform": 4.81, "prior_mixture": 4.26}
DEFAULT_RUNS = {"digits": list(VARIANTS), "faces": ["joint", "frozen", "pixel"]}
FLOPS_STEPS = (10, 100, 300)
#: The metrics compared seed by seed, with the decimals the verdicts print.
DECIMALS = {"classifier_frechet": 2, "sliced_wasserstein": 4}


def recipe_path(data: str, variant: str) -> Path:
    if variant == "joint":
        return RECIPES / BASES[data]
    if variant == "pixel":
        return RECIPES / PIXEL[data]
    return RECIPES / "lsi" / "ablations" / f"{data}_{variant}.toml"


def run_id(data: str, variant: str, seed: int, steps: int) -> str:
    digest = hashlib.sha256(recipe_path(data, variant).read_bytes()).hexdigest()[:8]
    return f"{data}_{variant}_s{seed}_n{steps}_{digest}"


def eval_steps(variant: str, flops_steps: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(sorted({100, *flops_steps})) if variant in ("joint", "pixel") else (100,)


def train_and_score(data: str, variant: str, seed: int, steps: int, *, flops_steps: tuple[int, ...],
                    num: int | None, cache: Path) -> dict[str, Any]:
    """Train one recipe and score it at each sampling budget (module docstring)."""
    import interpgen as ig
    from interpgen.recipe import load_recipe
    from interpgen_plugins.eval.evaluate import evaluate

    reg = ig.registry()
    path = recipe_path(data, variant)
    overrides = [f"train.seed={seed}", f"train.steps={steps}", "train.pictures=false"]
    if variant == "pixel":
        overrides.append('sample.sampler={name="euler", steps=100}')
    recipe = load_recipe(path, reg, overrides=overrides)
    pipe = ig.Pipeline.from_recipe(recipe, registry=reg, root=path.parent)
    start = time.perf_counter()
    losses = pipe.fit(recipe.train, progress=False)
    result: dict[str, Any] = {"data": data, "variant": variant, "seed": seed, "train_steps": steps,
                              "recipe": str(path.relative_to(ROOT)), "train_seconds": round(time.perf_counter() - start, 1),
                              "final_loss": float(losses[-1]) if losses else None, "evals": {}}
    for n in eval_steps(variant, flops_steps):
        began = time.perf_counter()
        report = evaluate(pipe, pipe.data, steps=n, seed=seed, num=num, cache=cache)
        fd = report["classifier_frechet"]
        result["evals"][str(n)] = {
            "classifier_frechet": fd.get("value"), "classifier_frechet_matched": fd.get("matched"),
            "classifier_frechet_real": fd.get("baseline"), "classifier_accuracy": fd.get("classifier_test_accuracy"),
            "sliced_wasserstein": report["metrics"]["sliced_wasserstein"], "nfe": report["sampling"]["nfe_per_sample"],
            "finite": report["sampling"]["finite"], "flops": report["flops"], "seconds": round(time.perf_counter() - began, 1)}
    return result


# -- aggregation -------------------------------------------------------------------------------------------
def mean_std(values: list[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (0 for one value) and count."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, std, n


def aggregate(results: list[dict[str, Any]]) -> dict[str, Any]:
    """``{data: {variant: {steps: {"classifier_frechet": [mean, std, n], ...}}}}`` over seeds, plus the FLOPs."""
    table: dict[str, Any] = {}
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in results:
        for n, e in r["evals"].items():
            fd, real = e.get("classifier_frechet"), e.get("classifier_frechet_real")
            excess = fd - real if isinstance(fd, (int, float)) and isinstance(real, (int, float)) else None
            groups.setdefault((r["data"], r["variant"], n), []).append({**e, "excess": excess, "seed": r["seed"]})
    for (data, variant, n), evals in sorted(groups.items()):
        cell = table.setdefault(data, {}).setdefault(variant, {}).setdefault(n, {})
        for key in ("classifier_frechet", "excess", "sliced_wasserstein", "classifier_frechet_real"):
            values = [e[key] for e in evals if isinstance(e.get(key), (int, float))]
            if values:
                cell[key] = list(mean_std(values))
        # per seed, for paired comparisons: runs of one seed share the data split and the evaluation cuts
        cell["by_seed"] = {metric: {str(e["seed"]): e[metric] for e in evals if isinstance(e.get(metric), (int, float))}
                           for metric in DECIMALS}
        f = evals[0]["flops"]
        cell["flops"] = {k: f[k] for k in ("latent_model", "decoder", "encoder", "nfe", "sampling_per_sample",
                                           "parameters_total", "parameters_latent_model", "parameters_autoencoder")}
        cell["seeds"] = len(evals)
    return table


def untrained_flops(data: str, variant: str, n: int) -> dict[str, Any]:
    """FLOPs of a recipe's pipeline at ``n`` steps, untrained (FLOPs do not depend on the weights): the
    pixel baseline of a data set whose baseline was not trained."""
    import interpgen as ig
    from interpgen.recipe import load_recipe
    from interpgen_plugins.eval.flops import flops_report

    reg = ig.registry()
    path = recipe_path(data, variant)
    overrides = ['sample.sampler={name="euler", steps=100}'] if variant == "pixel" else []
    pipe = ig.Pipeline.from_recipe(load_recipe(path, reg, overrides=overrides), registry=reg, root=path.parent)
    return flops_report(pipe, steps=n)


def flops_saving(f_decoder: float, f_latent: float, f_obs: float, n: int) -> float:
    """``1 - (F_D + N F_L) / (N F_obs)`` (math.md 4.7)."""
    return 1.0 - (f_decoder + n * f_latent) / (n * f_obs)


def _fd(cell: dict[str, Any] | None, key: str = "classifier_frechet") -> str:
    if not cell or key not in cell:
        return "-"
    mean, std, n = cell[key]
    return f"{mean:.2f} ± {std:.2f} ({n})"


def verdict(table: dict[str, Any], data: str, better: str, worse: str, metric: str = "classifier_frechet") -> str:
    """Whether ``better`` scores below ``worse`` at 100 steps, paired by seed (one seed's runs share the data
    split and the evaluation cuts, which move the distance by several units): the mean of the per-seed gaps
    ``FD(worse) - FD(better)`` against twice its standard error."""
    a, b = (table.get(data, {}).get(v, {}).get("100", {}).get("by_seed", {}).get(metric) for v in (better, worse))
    if not a or not b:
        return "not measured"
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return "not measured on a common seed"
    gap, sd, n = mean_std([b[s] - a[s] for s in seeds])
    se = sd / math.sqrt(n)
    if n > 1 and gap > 2 * se:
        word = "holds"
    elif n > 1 and gap < -2 * se:
        word = "does not hold: the opposite order is clear"
    elif gap > 0:
        word = "holds in the means, within the seeds' spread"
    else:
        word = "does not hold in the means, within the seeds' spread"
    d = DECIMALS[metric]
    return f"{word} (gap {gap:+.{d}f} ± s.e. {se:.{d}f} over {n} paired seeds)"


def markdown(table: dict[str, Any], flops_steps: tuple[int, ...]) -> str:
    lines = ["# LSI study (benchmarks/lsi_study.py)", "",
             "Classifier Fréchet distance (lower is better) of class-conditional samples against the held-out rows, "
             "mean ± standard deviation over seeds (the count in brackets); LSI sampled with the probability-flow ODE "
             "(`lsi_sde`, stochasticity 0), 100 steps unless stated. The paper's FIDs (ImageNet 128^2, math.md 4.3) "
             "are on another data set and metric: compare orderings, not values. `over real` is the distance minus "
             "that of real held-out rows against real held-out rows at the same sizes and cuts (0: as close as real "
             "data; it can go below 0), the same seed's cuts for both, so it removes most of the spread that the "
             "cuts cause. The verdicts compare runs of one seed with each other (paired).", ""]
    for group, title in (("training", "Joint against frozen"), ("parameterisation", "Parameterisations"),
                         ("prior", "Priors"), ("encoder noise", "Encoder noise")):
        rows = [(d, v) for d in table for v in VARIANTS if (VARIANTS[v][0] == group or v == "joint")
                and v in table[d] and (group == "training" or v != "frozen")]
        if not any(VARIANTS[v][0] == group for _, v in rows):
            continue
        lines += [f"## {title}", "", "| data | variant | Fréchet | over real | sliced W2 | paper FID |",
                  "|---|---|---|---|---|---|"]
        for d, v in rows:
            label = "InterpFlow, N(0, I), c = 0.1 fixed, joint (the base)" if v == "joint" else VARIANTS[v][1]
            cell = table[d][v].get("100")
            sw = f"{cell['sliced_wasserstein'][0]:.4f}" if cell and "sliced_wasserstein" in cell else "-"
            lines.append(f"| {d} | {label} | {_fd(cell)} | {_fd(cell, 'excess')} | {sw} | {PAPER_FID.get(v, '-')} |")
        lines.append("")
    lines += ["## FLOPs per sample against pixel-space SI", "",
              "`saving` is `1 - (F_D + N F_L) / (N F_obs)` with one pass of the decoder (F_D), the latent model (F_L) "
              "and the pixel model (F_obs); `measured` compares the sampling FLOPs the samplers really spend "
              "(`lsi_sde`: N + 1 evaluations, Euler: N).", "",
              "| data | N | saving | measured | Fréchet LSI | over real | Fréchet pixel SI | over real | "
              "parameters LSI / pixel |", "|---|---|---|---|---|---|---|---|---|"]
    for d in table:
        lsi, pixel = table[d].get("joint", {}), table[d].get("pixel", {})
        for n in flops_steps:
            a, b = lsi.get(str(n)) or lsi.get("100"), pixel.get(str(n))
            if not a:
                continue
            if a is lsi.get("100") and n != 100:  # FLOPs only: the base was scored at 100 steps
                a = {"flops": untrained_flops(d, "joint", n)}
            if not b:  # the baseline was not trained here: its FLOPs from an untrained copy, no Fréchet
                b = {"flops": untrained_flops(d, "pixel", n)}
            fa, fb = a["flops"], b["flops"]
            saving = flops_saving(fa["decoder"], fa["latent_model"], fb["latent_model"], n)
            measured = 1 - fa["sampling_per_sample"] / fb["sampling_per_sample"]
            lines.append(f"| {d} | {n} | {saving:.1%} | {measured:.1%} | {_fd(a)} | {_fd(a, 'excess')} | {_fd(b)} | "
                         f"{_fd(b, 'excess')} | "
                         f"{fa['parameters_total']:,} / {fb['parameters_total']:,} |")
    lines += ["", "## Which of the paper's findings hold here", ""]
    claims = [("digits", "joint", "frozen", "joint training beats the frozen (beta -> 0) autoencoder"),
              ("faces", "joint", "frozen", "joint training beats the frozen (beta -> 0) autoencoder")]
    claims += [("digits", "joint", v, f"InterpFlow beats {VARIANTS[v][1]}") for v in ("origflow", "denoising", "noisepred")]
    claims += [("digits", "joint", v, f"the Gaussian prior beats the {VARIANTS[v][1]} prior")
               for v in ("prior_laplacian", "prior_uniform", "prior_mixture")]
    claims += [("digits", "joint", "prior_learnable", "the fixed N(0, I) prior beats a learnable diagonal Gaussian")]
    claims += [("digits", "joint", "noise_learned", "a fixed encoder noise beats a learned one"),
               ("digits", "joint", "noise_none", "a fixed encoder noise beats a deterministic encoder"),
               ("digits", "noise_learned", "noise_none", "a deterministic encoder is the worst of the three")]
    claims += [(d, "joint", "pixel", "LSI is at least as good as pixel-space SI of about equal parameters and budget")
               for d in ("digits", "faces")]
    for data, better, worse, text in claims:
        line = f"* {text} ({data}): {verdict(table, data, better, worse)}"
        if (better, worse) in (("joint", "frozen"), ("joint", "pixel")):  # the headline claims: a second metric
            line += f"; sliced W2 in data space: {verdict(table, data, better, worse, 'sliced_wasserstein')}"
        lines.append(line + ".")
    return "\n".join(lines) + "\n"


def write_report(out: Path, flops_steps: tuple[int, ...], budget: dict[str, int]) -> dict[str, Any]:
    """The tables from the run files of this budget and of the recipes as they are now (other files stay,
    unused: a tiny check and the full study can share a folder)."""
    results = []
    for path in sorted((out / "runs").glob("*.json")):
        r = json.loads(path.read_text())
        if r["data"] in budget and path.stem == run_id(r["data"], r["variant"], r["seed"], budget[r["data"]]):
            results.append(r)
    table = aggregate(results)
    (out / "lsi_study.json").write_text(json.dumps({"runs": len(results), "table": table}, indent=2) + "\n")
    (out / "lsi_study.md").write_text(markdown(table, flops_steps))
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="*", default=list(BASES), choices=list(BASES))
    parser.add_argument("--variants", nargs="*", default=None, choices=list(VARIANTS),
                        help="default: every variant on digits, joint, frozen and the pixel baseline on faces")
    parser.add_argument("--faces-all", action="store_true", help="run every variant on faces too")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=None, help="training steps of every run (tiny checks)")
    parser.add_argument("--digits-steps", type=int, default=1000)
    parser.add_argument("--faces-steps", type=int, default=600)
    parser.add_argument("--flops-steps", type=int, nargs="*", default=list(FLOPS_STEPS))
    parser.add_argument("--num", type=int, default=None, help="samples per evaluation (default: the held-out rows)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "lsi_study")
    parser.add_argument("--report", action="store_true", help="only rebuild the tables from the run files")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    flops_steps = tuple(args.flops_steps)
    budget = {d: args.steps or (args.digits_steps if d == "digits" else args.faces_steps) for d in args.data}
    (args.out / "runs").mkdir(parents=True, exist_ok=True)
    if not args.report:
        for data in args.data:
            variants = args.variants or (list(VARIANTS) if data == "digits" or args.faces_all else DEFAULT_RUNS[data])
            steps = budget[data]
            for seed in range(args.seeds):
                for variant in variants:
                    file = args.out / "runs" / f"{run_id(data, variant, seed, steps)}.json"
                    if file.is_file():
                        continue
                    print(f"[lsi_study] {file.stem} ...", file=sys.stderr, flush=True)
                    result = train_and_score(data, variant, seed, steps, flops_steps=flops_steps, num=args.num,
                                             cache=args.out / "classifiers")
                    tmp = file.with_suffix(".tmp")
                    tmp.write_text(json.dumps(result, indent=2) + "\n")
                    tmp.replace(file)  # atomic: a half-written run is never taken for a finished one
                    write_report(args.out, flops_steps, budget)
    write_report(args.out, flops_steps, budget)
    print((args.out / "lsi_study.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
