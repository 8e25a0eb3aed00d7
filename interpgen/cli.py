"""The ``interpgen`` command line.

    interpgen train [RECIPE.toml] --output DIR [--set key=value ...] [--overwrite | --resume]
    interpgen sample DIR --num N [--steps K] [--sampler NAME] [--seed S] --output FILE.npy
    interpgen recipe [RECIPE.toml] [--set key=value ...]      print the resolved recipe
    interpgen plugins [--json]

Without a recipe, ``train`` and ``recipe`` use the embedded default (the 2D checkerboard).
Every error is one clear message on stderr and exit status 2; nothing is trained before the
whole recipe has been checked.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any


def _default_recipe() -> Path:
    return Path(str(resources.files("interpgen") / "default_recipe.toml"))


def _registry():
    from interpgen.plugin_manager import registry

    return registry()


def _load(args: argparse.Namespace):
    from interpgen.recipe import load_recipe

    path = Path(args.recipe) if args.recipe else _default_recipe()
    return path, load_recipe(path, _registry(), overrides=args.set or [])


def cmd_recipe(args: argparse.Namespace) -> int:
    from interpgen.recipe import dump_recipe

    _, recipe = _load(args)
    sys.stdout.write(dump_recipe(recipe, _registry()))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from interpgen import run_dir as rd
    from interpgen.pipeline import Pipeline
    from interpgen.recipe import dump_recipe

    path, recipe = _load(args)
    reg = _registry()
    run = Path(args.output)
    text = dump_recipe(recipe, reg)
    saved = run / rd.RECIPE
    if saved.exists() and not args.overwrite:
        if not args.resume:
            raise ValueError(f"{run} already holds a run; pass --resume to continue it or --overwrite to replace it")
        if saved.read_text() != text:
            raise ValueError(f"--resume with a recipe that differs from the one saved in {saved}")
    elif run.exists() and any(run.iterdir()) and not args.overwrite and not saved.exists():
        raise ValueError(f"{run} is not empty and is not an interpgen run; choose another --output or pass --overwrite")
    if args.overwrite and run.exists():
        for old in rd.list_checkpoints(run):
            old.unlink()
        for name in (rd.METRICS, f"{rd.CHECKPOINT_DIR}/{rd.LATEST}"):
            (run / name).unlink(missing_ok=True)
    pipe = Pipeline.from_recipe(recipe, registry=reg, root=path.resolve().parent)
    run.mkdir(parents=True, exist_ok=True)
    rd.atomic_write_bytes(saved, text.encode())
    pipe.fit(recipe.train, run_dir=run, progress=not args.quiet, resume=args.resume)
    print(f"trained {pipe.step} steps; run directory {run}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np

    from interpgen.pipeline import Pipeline

    pipe = Pipeline.load(args.run)
    recipe = pipe.recipe
    num = args.num if args.num is not None else recipe.sample.num
    seed = args.seed if args.seed is not None else recipe.sample.seed
    x, nfe = pipe.sample_with_nfe(num, sampler=args.sampler, steps=args.steps, seed=seed)
    out = Path(args.output)
    if out.suffix != ".npy":
        raise ValueError(f"--output must end in .npy, got {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, x.detach().cpu().numpy())
    print(f"wrote {tuple(x.shape)} samples to {out} ({nfe} network evaluations per sample)")
    return 0


def plugin_report() -> dict[str, Any]:
    """Everything installed, by kind, plus the plugins that failed to load."""
    from interpgen.plugin_manager import plugins

    loaded = plugins()
    report: dict[str, Any] = {}
    for kind in loaded.registry.kinds():
        report[kind] = [
            {"name": e.name, "plugin": e.plugin, "distribution": e.distribution, "description": e.description}
            for e in sorted(loaded.registry, key=lambda e: e.name) if e.kind == kind
        ]
    report["failed"] = [{"name": f.name, "distribution": f.distribution, "error": f.error} for f in loaded.failed]
    return report


def cmd_plugins(args: argparse.Namespace) -> int:
    report = plugin_report()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    rows = [(kind, e["name"], e["plugin"], e["distribution"], e["description"])
            for kind, entries in report.items() if kind != "failed" for e in entries]
    header = ("kind", "name", "plugin", "distribution", "description")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4])
    for failed in report["failed"]:
        print(f"FAILED  {failed['name']} ({failed['distribution']}): {failed['error']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="interpgen", description="Generative modelling with stochastic interpolants.")
    sub = parser.add_subparsers(dest="command", required=True)

    def recipe_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("recipe", nargs="?", help="TOML recipe (default: the embedded 2D checkerboard recipe)")
        p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a recipe field, e.g. train.steps=500")

    p = sub.add_parser("train", help="train a model from a recipe")
    recipe_args(p)
    p.add_argument("--output", required=True, help="run directory")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue the run in --output")
    group.add_argument("--overwrite", action="store_true", help="replace the run in --output")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="draw samples from a trained run")
    p.add_argument("run", help="run directory")
    p.add_argument("--num", type=int, help="number of samples (default: the recipe's sample.num)")
    p.add_argument("--steps", type=int, help="solver steps (default: the recipe's sampler)")
    p.add_argument("--sampler", help="sampler name, e.g. euler, heun, rk4, dopri5, euler_maruyama")
    p.add_argument("--seed", type=int, help="random seed (default: the recipe's sample.seed)")
    p.add_argument("--output", required=True, help="where to write the .npy array (N, *data_shape)")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("recipe", help="check a recipe and print it with every default filled in")
    recipe_args(p)
    p.set_defaults(func=cmd_recipe)

    p = sub.add_parser("plugins", help="list installed plugins and parts")
    p.add_argument("--json", action="store_true", help="print one JSON object keyed by kind")
    p.set_defaults(func=cmd_plugins)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from interpgen.config import RecipeError
    from interpgen.plugin_manager import PluginLoadError
    from interpgen.protocols import ConversionError
    from interpgen.run_dir import CheckpointError
    from interpgen.train import TrainingError

    try:
        return int(args.func(args) or 0)
    except RecipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except (CheckpointError, TrainingError, PluginLoadError, ConversionError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
