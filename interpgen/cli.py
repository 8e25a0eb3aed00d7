"""The ``interpgen`` command line.

    interpgen train [RECIPE.toml] --output DIR [--set key=value ...] [--overwrite | --resume]
    interpgen sample DIR --num N [--steps K] [--sampler NAME] [--seed S] [--label K] [--guidance W] --output FILE.npy
    interpgen recipe [RECIPE.toml] [--set key=value ...]      print the resolved recipe
    interpgen plugins [--json | --markdown]
    interpgen COMMAND ...        a command a plugin adds (built in: eval, reflow; see docs/plugins.md)

Without a recipe, ``train`` and ``recipe`` use the embedded default (the 2D checkerboard).
``accelerate launch -m interpgen train ...`` runs the same command in several processes
(docs/training.md).
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
    from accelerate import PartialState

    from interpgen.pipeline import Pipeline
    from interpgen.recipe import dump_recipe
    from interpgen.train.run_dir import check_run_dir

    # The same code runs in every process under `accelerate launch -m interpgen train ...`; the
    # engine (interpgen.train) checks the launch and writes the run directory from the main process.
    path, recipe = _load(args)
    reg = _registry()
    check_run_dir(Path(args.output), dump_recipe(recipe, reg), resume=args.resume, overwrite=args.overwrite)
    pipe = Pipeline.from_recipe(recipe, registry=reg, root=path.resolve().parent)
    pipe.fit(recipe.train, run_dir=args.output, progress=not args.quiet, resume=args.resume,
             overwrite=args.overwrite)
    if PartialState().is_main_process:
        print(f"trained {pipe.step} steps; run directory {args.output}")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import numpy as np

    from interpgen.pipeline import Pipeline

    pipe = Pipeline.load(args.run)
    recipe = pipe.recipe
    num = args.num if args.num is not None else recipe.sample.num
    seed = args.seed if args.seed is not None else recipe.sample.seed
    guidance = args.guidance if args.guidance is not None else recipe.sample.guidance
    out = Path(args.output)
    if out.suffix != ".npy":
        raise ValueError(f"--output must end in .npy, got {out}")
    labels = pipe.sampling_labels(num, args.label)
    result = pipe.sample(num, sampler=args.sampler, steps=args.steps, seed=seed, labels=labels,
                         guidance=guidance if labels is not None else None)
    x, nfe = result.x, result.nfe
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, x.detach().cpu().numpy())
    print(f"wrote {tuple(x.shape)} samples to {out} ({nfe} network evaluations per sample)")
    if labels is not None:
        label_file = out.with_suffix(".labels.npy")
        np.save(label_file, labels.numpy())
        print(f"wrote their labels to {label_file} (guidance scale {guidance})")
    return 0


def plugin_report() -> dict[str, Any]:
    """Everything installed, by kind, the commands plugins add (``command``), and the plugins that
    failed to load."""
    from interpgen.plugin_manager import plugins

    loaded = plugins()
    report: dict[str, Any] = {}
    for kind in loaded.registry.kinds():
        report[kind] = [
            {"name": e.name, "plugin": e.plugin, "distribution": e.distribution, "description": e.description}
            for e in sorted(loaded.registry, key=lambda e: e.name) if e.kind == kind
        ]
    report["command"] = [{"name": c.name, "plugin": c.plugin, "distribution": c.distribution, "description": c.help}
                         for c in loaded.registry.commands().values()]
    report["failed"] = [{"name": f.name, "distribution": f.distribution, "error": f.error} for f in loaded.failed]
    return report


def _cell(text: str) -> str:
    """A Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def plugins_markdown() -> str:
    """The registry as Markdown (``interpgen plugins --markdown``; docs/parts.md holds its output):
    one table per kind (name, plugin, description: the params class's docstring's first line, as
    ``interpgen plugins`` shows it), then the commands plugins add."""
    from interpgen.plugin_manager import plugins

    loaded = plugins()
    reg = loaded.registry
    lines: list[str] = []
    for kind in reg.kinds():
        lines += [f"### `{kind}`", ""]
        entries = sorted((e for e in reg if e.kind == kind), key=lambda e: e.name)
        if not entries:
            lines += ["(none installed)", ""]
            continue
        lines += ["| name | plugin | description |", "|---|---|---|"]
        lines += [f"| `{e.name}` | {_cell(e.plugin)} | {_cell(e.description)} |" for e in entries]
        lines.append("")
    lines += ["### Commands plugins add", ""]
    commands = reg.commands()
    if commands:
        lines += ["| command | plugin | what it does |", "|---|---|---|"]
        lines += [f"| `interpgen {name}` | {_cell(c.plugin)} | {_cell(c.help)} |" for name, c in commands.items()]
    else:
        lines.append("(none installed)")
    for failed in loaded.failed:
        lines += ["", f"Not loaded: plugin `{failed.name}` ({_cell(failed.distribution)}): {_cell(failed.error)}"]
    return "\n".join(lines).rstrip("\n") + "\n"


def cmd_plugins(args: argparse.Namespace) -> int:
    if args.markdown:
        sys.stdout.write(plugins_markdown())
        return 0
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


def build_parser(*, with_plugins: bool = True) -> argparse.ArgumentParser:
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
    p.add_argument("--label", type=int, help="class to sample (class-conditional models; default: every class in turn)")
    p.add_argument("--guidance", type=float,
                   help="classifier-free guidance scale (default: the recipe's sample.guidance; 1 = none)")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("recipe", help="check a recipe and print it with every default filled in")
    recipe_args(p)
    p.set_defaults(func=cmd_recipe)

    p = sub.add_parser("plugins", help="list installed plugins and parts")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print one JSON object keyed by kind")
    fmt.add_argument("--markdown", action="store_true",
                     help="print one Markdown table per kind and the plugins' commands (docs/parts.md)")
    p.set_defaults(func=cmd_plugins)
    if with_plugins:  # commands plugins add (interpgen_register: registry.add_command)
        for name, command in _registry().commands().items():
            p = sub.add_parser(name, help=f"{command.help} [plugin {command.plugin}]")
            if command.configure is not None:
                command.configure(p)
            p.set_defaults(func=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    from interpgen.config import RecipeError
    from interpgen.plugin_manager import PluginLoadError
    from interpgen.protocols import ConversionError
    from interpgen.protocols import CheckpointError
    from interpgen.registry import KERNEL_COMMANDS

    # Plugins' commands are added only when the command is not one of the kernel's own.
    try:
        args = build_parser(with_plugins=not (argv and argv[0] in KERNEL_COMMANDS)).parse_args(argv)
    except PluginLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from interpgen.train import TrainingError, TrainingInterrupted

    try:
        return int(args.func(args) or 0)
    except TrainingInterrupted as exc:  # SIGTERM / SIGINT: saved at the current step (docs/training.md)
        from accelerate import PartialState

        if PartialState().is_main_process:  # one line, not one per process
            print(f"interpgen: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interpgen: interrupted (SIGINT) before training started; nothing was saved", file=sys.stderr)
        return 130
    except RecipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except (CheckpointError, TrainingError, PluginLoadError, ConversionError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    except OSError as exc:  # a full disk, a read-only folder, an unreadable or undecodable file
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
