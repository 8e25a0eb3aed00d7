"""The ``interpgen`` command line.

    interpgen train [RECIPE.toml] --output DIR [--set key=value ...] [--overwrite | --resume]
    interpgen sample DIR [--num N] [--steps K | --nfe N] [--sampler NAME] [--seed S] [--label K] [--guidance W]
                     [--set sample.KEY=VALUE ...] --output FILE.npy|FILE.png
    interpgen recipe [RECIPE.toml] [--set key=value ...]      print the resolved recipe
    interpgen plugins [--json | --markdown]
    interpgen COMMAND ...        a command a plugin adds (built in: eval, reflow; see docs/plugins.md)

Without a recipe, ``train`` and ``recipe`` use the embedded default (the 2D checkerboard).
``accelerate launch -m interpgen train ...`` runs the same command in several processes
(docs/training.md).
Every error is one clear message on stderr and exit status 2; nothing is trained before the
whole recipe has been checked. A command imports what it uses (torch, the engine) only once the
arguments are parsed; ``interpgen --help`` lists the plugins' commands from a cache
(:mod:`interpgen.cli.cache`), so it imports neither torch nor a plugin.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

# sampling_arguments, sampling_settings: for plugins' commands (docs/plugins.md); plugins_markdown: docs/parts.md
from interpgen.cli.listing import cmd_plugins, plugin_report, plugins_markdown  # noqa: F401
from interpgen.cli.sampling import sampling_arguments, sampling_line, sampling_settings
from interpgen.plugin_manager import PluginLoadError
from interpgen.registry import KERNEL_COMMANDS


def _default_recipe() -> Path:
    return Path(str(resources.files("interpgen") / "default_recipe.toml"))


def _registry():
    from interpgen.cli.cache import loaded_plugins

    return loaded_plugins().registry


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

    reg = _registry()
    out = Path(args.output)
    writers = reg.names("writer")  # plugins' writers, by file suffix (the pictures plugin: .png)
    if out.suffix != ".npy" and out.suffix not in writers:
        raise ValueError(f"--output must end in .npy or in a suffix an installed writer plugin handles "
                         f"({', '.join(writers) or 'none installed'}), got {out}")
    pipe = Pipeline.load(args.run, registry=reg)
    write = reg.create("writer", out.suffix, pipe=pipe) if out.suffix != ".npy" else None
    choice = sampling_settings(pipe, args, labels=pipe.sampling_labels(1, args.label))
    sample = choice.settings
    labels = pipe.sampling_labels(sample.num, args.label)
    guidance = sample.guidance if sample.guidance != 1.0 else None
    result = pipe.sample(sample.num, sampler=sample.sampler, seed=sample.seed, labels=labels, guidance=guidance,
                         raw=args.raw)
    x = result.x
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npy":
        np.save(out, x.detach().cpu().numpy())
        print(f"wrote {tuple(x.shape)} samples to {out}")
    else:
        what = write(out, result, title=f"{Path(args.run).name}: {sampling_line(choice, result.nfe)}")
        print(f"wrote {tuple(x.shape)} samples to {out} as {what}")
    print(sampling_line(choice, result.nfe))
    if labels is not None and out.suffix == ".npy":
        label_file = out.with_suffix(".labels.npy")
        np.save(label_file, labels.numpy())
        print(f"wrote their labels to {label_file} (guidance scale {sample.guidance})")
    return 0


def build_parser(commands: Mapping[str, Any] | None = None) -> argparse.ArgumentParser:
    """The kernel's commands and ``commands``, the plugins' by name: a registry ``Command`` (its
    arguments and what it runs), or only a help line (``--help`` from the cache, :mod:`.cache`)."""
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
    sampling_arguments(p, num_help="number of samples (default: the recipe's sample.num)")
    p.add_argument("--output", required=True, help="where to write them: FILE.npy, the array (N, *data_shape); "
                   "or a suffix a writer plugin handles, e.g. FILE.png, a picture (the pictures plugin)")
    p.add_argument("--label", type=int, help="class to sample (class-conditional models; default: every class in turn)")
    p.add_argument("--raw", action="store_true", help="keep the values as integrated (bounded data such as images "
                   "is clamped to the data's range by default)")
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
    for name, command in (commands or {}).items():  # added by plugins: interpgen_register's registry.add_command
        if isinstance(command, str):
            sub.add_parser(name, help=command)
            continue
        p = sub.add_parser(name, help=f"{command.help} [plugin {command.plugin}]")
        if command.configure is not None:
            command.configure(p)
        p.set_defaults(func=command.run)
    return parser


def _plugin_commands(argv: list[str]) -> Mapping[str, Any]:
    """What the parser needs of the plugins' commands: none for a kernel command, their help lines
    for the top-level help (remembered, so no plugin loads), else the commands themselves."""
    first = argv[0] if argv else None
    if first in KERNEL_COMMANDS:
        return {}
    if first in (None, "-h", "--help"):
        from interpgen.cli.cache import cached_commands

        cached = cached_commands()
        if cached is not None:
            return cached
    return _registry().commands()


def _raised(exc: BaseException, module: str, *names: str) -> bool:
    """Whether ``exc`` is one of ``module``'s exceptions ``names`` (a module not imported raised none,
    so the command line imports no module just to catch its errors)."""
    found = sys.modules.get(module)
    return found is not None and isinstance(exc, tuple(getattr(found, name) for name in names))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser(_plugin_commands(argv)).parse_args(argv)
    except PluginLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interpgen: interrupted (SIGINT) before training started; nothing was saved", file=sys.stderr)
        return 130
    except Exception as exc:
        if _raised(exc, "interpgen.train", "TrainingInterrupted"):  # SIGTERM / SIGINT: saved (docs/training.md)
            from accelerate import PartialState

            if PartialState().is_main_process:  # one line, not one per process
                print(f"interpgen: {exc}", file=sys.stderr)
            return exc.exit_code  # type: ignore[attr-defined]
        if (isinstance(exc, (PluginLoadError, FileNotFoundError, ValueError))
                or _raised(exc, "interpgen.config", "RecipeError") or _raised(exc, "interpgen.train", "TrainingError")
                or _raised(exc, "interpgen.protocols", "CheckpointError", "ConversionError")):
            print(f"error: {exc}", file=sys.stderr)
        elif isinstance(exc, OSError):  # a full disk, a read-only folder, an unreadable or undecodable file
            where = f"{exc.filename}: " if exc.filename else ""
            print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        else:
            raise
    return 2


