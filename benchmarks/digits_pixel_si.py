"""Digits with pixel-space SI: the classifier Fréchet distance after a fixed training budget,
next to the same distance between real digits.

What it does.

1. Trains ``recipes/images/digits.toml`` (pixel-space linear interpolant, class-conditional
   U-Net, scikit-learn's 8x8 digits scaled to [-1, 1], 20% held out) through the command line
   (``interpgen train``) for the recipe's fixed budget of ``train.steps`` steps at
   ``train.batch_size`` (unless ``--steps`` changes it), with one intra-op thread.
2. Evaluates the run with ``interpgen_plugins.eval.evaluate.evaluate_run`` (what ``interpgen eval`` runs) at
   several sampler step counts: samples are drawn with the held-out labels (cycled) and compared
   with the 359 held-out digits in model space.
3. Reports, in the feature space of the cached digits classifier
   (:mod:`interpgen_plugins.eval.feature_classifier`, its held-out accuracy included):

   * ``samples vs held-out``: squared Fréchet distance of 359 samples to the 359 held-out digits;
   * ``matched`` and ``held-out half vs half``: the held-out digits are cut at random into halves
     A (179) and B (180); the 179 samples conditioned on A's labels against B, and A (real digits
     the classifier never saw) against B: the real-vs-real value at the same sample sizes, the
     fair comparison (both averaged over the same 20 cuts);
   * ``real half vs real half``: all 1,797 digits cut at random into two halves (seeded), the
     distance between the halves (larger sets, hence a smaller finite-sample bias);
   * ``train rows vs held-out``: 359 training digits against the held-out digits. The classifier
     was trained on these rows, so their features are not distributed like those of unseen
     digits; this number shows that bias and is not a real-vs-real baseline.

Writes ``benchmarks/results/digits_pixel_si.{json,md,png}``. Run from the repository root::

    python benchmarks/digits_pixel_si.py [--steps N] [--keep-run DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "images" / "digits.toml"
RESULTS = ROOT / "benchmarks" / "results"
SAMPLER_STEPS = (2, 4, 8, 16, 32)


def real_halves_fd(source, classifier, seed: int = 0) -> float:
    """Squared Fréchet distance between two random halves of all the digits (both parts)."""
    from interpgen_plugins.eval.feature_classifier import classifier_features
    from interpgen_plugins.eval.metrics import feature_frechet_distance

    x = torch.cat([source.take("train")[0], source.take("heldout")[0]])
    order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
    half = x.shape[0] // 2
    a, b = x[order[:half]], x[order[half:2 * half]]
    return feature_frechet_distance(classifier_features(classifier, a), classifier_features(classifier, b))


def train_rows_fd(source, classifier, seed: int = 0) -> float:
    """Squared Fréchet distance of as many training rows as held-out rows to the held-out rows."""
    from interpgen_plugins.eval.feature_classifier import classifier_features
    from interpgen_plugins.eval.metrics import feature_frechet_distance

    held = source.take("heldout")[0]
    index = torch.randperm(source.part_size("train"), generator=torch.Generator().manual_seed(seed))
    train = source.take("train", index[: held.shape[0]])[0]
    return feature_frechet_distance(classifier_features(classifier, train), classifier_features(classifier, held))


def unseen_rows_protocol(pipe, source, steps_list, seed: int = 0) -> dict:
    """Fréchet distances where no feature is computed on a row the classifier was trained on.

    A second classifier is trained on the *held-out* digits (and tested on the training digits);
    the training digits, unseen by it, are cut at random into halves A and B. ``real``: A against
    B. ``samples``: as many samples as A, conditioned on A's labels, against B."""
    from interpgen_plugins.eval.feature_classifier import cached_classifier, classifier_features
    from interpgen_plugins.eval.metrics import feature_frechet_distance
    from interpgen_plugins.datasets.finite import FiniteSource

    held_x, held_y = source.take("heldout")
    train_x, train_y = source.take("train")
    swapped = FiniteSource(held_x, labels=held_y, num_classes=10, heldout=train_x, heldout_labels=train_y)
    trained = cached_classifier(swapped)
    order = torch.randperm(train_x.shape[0], generator=torch.Generator().manual_seed(seed))
    half = train_x.shape[0] // 2
    a, b = order[:half], order[half:2 * half]
    feats_b = classifier_features(trained.model, train_x[b])
    real = feature_frechet_distance(classifier_features(trained.model, train_x[a]), feats_b)
    rows = []
    for steps in steps_list:
        x = pipe.sample(half, steps=steps, seed=seed, labels=train_y[a], data_space=False).x
        rows.append({"sampler_steps": steps,
                     "fd_samples": feature_frechet_distance(classifier_features(trained.model, x), feats_b)})
    return {"classifier_test_accuracy": trained.test_accuracy, "half_size": half, "fd_real_halves": real,
            "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, help="training steps (default: the recipe's train.steps)")
    parser.add_argument("--keep-run", help="train into this folder instead of a temporary one")
    parser.add_argument("--no-train", action="store_true", help="evaluate the run already in --keep-run")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    torch.set_num_threads(1)

    from interpgen.cli import main as cli
    from interpgen_plugins.eval.evaluate import evaluate_run, rebuild_data
    from interpgen_plugins.eval.feature_classifier import cached_classifier
    from interpgen.pipeline import Pipeline
    from interpgen.plugin_manager import registry

    reg = registry()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(args.keep_run) if args.keep_run else Path(tmp) / "digits"
        extra = ["--set", f"train.steps={args.steps}"] if args.steps else []
        start = time.perf_counter()
        if args.no_train:
            if not args.keep_run:
                sys.exit("--no-train needs --keep-run DIR")
            code, train_seconds = 0, None
        else:
            code = cli(["train", str(RECIPE), "--output", str(run), "--quiet", "--overwrite", *extra])
            train_seconds = round(time.perf_counter() - start, 1)
        if code != 0:
            sys.exit(f"training failed with status {code}")
        pipe = Pipeline.load(run, registry=reg)
        source = rebuild_data(pipe, reg)
        trained = cached_classifier(source)
        rows = []
        for steps in SAMPLER_STEPS:
            report = evaluate_run(run, steps=steps, registry=reg, write=steps == SAMPLER_STEPS[-1])
            rows.append({"sampler_steps": steps, "nfe": report["sampling"]["nfe_per_sample"],
                         "sampler": report["sampling"]["sampler"],
                         "fd_samples": report["classifier_frechet"]["all_rows"],
                         "fd_matched": report["classifier_frechet"]["value"],
                         "fd_heldout_halves": report["classifier_frechet"]["baseline"],
                         "fd_train_rows": train_rows_fd(source, trained.model),
                         "sw2_samples": report["metrics"]["sliced_wasserstein"],
                         "sw2_train_rows": report["baseline"]["sliced_wasserstein"],
                         "mmd_samples": report["metrics"]["mmd"], "mmd_train_rows": report["baseline"]["mmd"]})
            print(json.dumps(rows[-1]))
        result = {
            "recipe": str(RECIPE.relative_to(ROOT)),
            "train_steps": int(pipe.step), "batch_size": int(pipe.recipe.train.batch_size),
            "train_seconds": train_seconds, "threads": 1,
            "heldout_rows": source.part_size("heldout"), "train_rows": source.part_size("train"),
            "classifier_test_accuracy": trained.test_accuracy,
            "fd_real_half_vs_half": real_halves_fd(source, trained.model),
            "half_size": (source.part_size("train") + source.part_size("heldout")) // 2,
            "rows": rows,
            "unseen_rows": unseen_rows_protocol(pipe, source, SAMPLER_STEPS),
        }
        write_sample_grid(pipe)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "digits_pixel_si.json").write_text(json.dumps(result, indent=2) + "\n")
    write_markdown(result)
    write_figure(result)
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}, indent=2))


def write_markdown(result: dict) -> None:
    lines = [
        "# Digits with pixel-space SI: classifier Fréchet distance",
        "",
        f"Recipe `{result['recipe']}`, {result['train_steps']} training steps at batch {result['batch_size']} "
        f"({result['train_seconds']} s on 1 thread). Feature classifier held-out accuracy "
        f"{result['classifier_test_accuracy']:.3f}. Squared Fréchet distance in its penultimate layer "
        f"against the {result['heldout_rows']} held-out digits (lower is better).",
        "",
        "| sampler steps | NFE | 359 samples vs held-out | matched: 179 samples vs held-out half B | "
        "real: held-out half A vs B | SW2 samples | SW2 train rows |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['sampler_steps']} | {r['nfe']} | {r['fd_samples']:.2f} | {r['fd_matched']:.2f} | "
                     f"{r['fd_heldout_halves']:.2f} | {r['sw2_samples']:.4f} | {r['sw2_train_rows']:.4f} |")
    lines += ["", f"Real half vs real half ({result['half_size']} digits each, all digits): "
              f"{result['fd_real_half_vs_half']:.2f}.",
              f"359 training digits vs held-out: {result['rows'][0]['fd_train_rows']:.2f} (biased: the classifier "
              "was trained on those rows; not a real-vs-real baseline).",
              ""]
    u = result["unseen_rows"]
    lines += [
        "## Features of unseen rows only",
        "",
        f"A second classifier trained on the {result['heldout_rows']} held-out digits (accuracy "
        f"{u['classifier_test_accuracy']:.3f} on the training digits, which it never saw). Training digits "
        f"cut into halves A and B of {u['half_size']}; samples conditioned on A's labels.",
        "",
        "| sampler steps | samples vs B | real A vs B |",
        "|---|---|---|",
    ]
    for r in u["rows"]:
        lines.append(f"| {r['sampler_steps']} | {r['fd_samples']:.2f} | {u['fd_real_halves']:.2f} |")
    lines += ["", "Samples (16 sampler steps, one row per class): `digits_pixel_si_samples.png`.", ""]
    (RESULTS / "digits_pixel_si.md").write_text("\n".join(lines))


def write_figure(result: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    nfe = [r["nfe"] for r in rows]
    fig, (ax, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    u = result["unseen_rows"]
    right.plot(nfe, [r["fd_samples"] for r in u["rows"]], "o-", label=f"{u['half_size']} samples vs real half B")
    right.axhline(u["fd_real_halves"], color="k", ls="--", label="real half A vs real half B")
    right.set_xscale("log", base=2)
    right.set_xlabel("network evaluations per sample")
    right.set_ylabel("classifier Fréchet distance")
    right.set_title("classifier trained on held-out digits only")
    right.legend(fontsize=8)
    ax.plot(nfe, [r["fd_samples"] for r in rows], "o-", label=f"{result['heldout_rows']} samples vs held-out")
    ax.plot(nfe, [r["fd_matched"] for r in rows], "s-", label="179 samples vs held-out half B")
    ax.axhline(rows[-1]["fd_heldout_halves"], color="k", ls="--", label="held-out half A vs B (real)")
    ax.axhline(result["fd_real_half_vs_half"], color="gray", ls=":",
               label=f"real half vs half ({result['half_size']} each)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("network evaluations per sample")
    ax.set_ylabel("classifier Fréchet distance")
    ax.set_title(f"Digits, pixel-space SI, {result['train_steps']} steps: interpgen eval")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "digits_pixel_si.png", dpi=120)



def write_sample_grid(pipe, steps: int = 16) -> None:
    """Ten samples of every class (rows), in pixel values 0..16."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = torch.arange(10).repeat_interleave(10)
    x = pipe.sample(100, steps=steps, seed=1, labels=labels).x.clamp(0, 16)
    grid = x.reshape(10, 10, 8, 8).permute(0, 2, 1, 3).reshape(80, 80)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(grid.numpy(), cmap="gray_r", vmin=0, vmax=16)
    ax.axis("off")
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(RESULTS / "digits_pixel_si_samples.png", dpi=100)


if __name__ == "__main__":
    main()
