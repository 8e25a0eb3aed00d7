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
whole recipe has been checked.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import attrs


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


def sampling_arguments(p: argparse.ArgumentParser, *, num_help: str) -> None:
    """The options of every command that samples a trained run (``sample``, and plugins' commands
    such as ``eval``); :func:`sampling_settings` reads them."""
    p.add_argument("run", help="run directory")
    p.add_argument("--num", type=int, help=num_help)
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, help="solver steps (default: the recipe's sampler)")
    budget.add_argument("--nfe", type=int, metavar="N", help="network evaluations per sample: the step count "
                        "that uses exactly N (or an error listing the nearest budgets the sampler can hit)")
    p.add_argument("--sampler", help="sampler name, e.g. euler, heun, rk4, dopri5, euler_maruyama "
                   "(the same as --set sample.sampler.name=NAME)")
    p.add_argument("--seed", type=int, help="random seed (default: the recipe's sample.seed)")
    p.add_argument("--guidance", type=float,
                   help="classifier-free guidance scale, class-conditional models only (default: the recipe's "
                   "sample.guidance; 1 = none)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a sample.* key of the run's "
                   "recipe, e.g. sample.sampler.name=converted --set sample.sampler.schedule=gvp")


@attrs.frozen
class Sampling:
    """How a command samples a run: the run's ``[sample]`` table with ``--set`` and the flags applied."""

    settings: Any  # interpgen.recipe.Sample: num, seed, guidance, and the sampler with its steps
    name: str  # the sampler's registered name
    steps: int | None  # its step count (None: it chooses its own, adaptive)
    given: frozenset[str]  # the [sample] keys the command line set (num, seed, guidance, sampler)
    budget: int | None = None  # --nfe


def _sampler_name(raw: dict[str, Any]) -> Any:
    table = raw.get("sample", {}).get("sampler") if isinstance(raw.get("sample"), dict) else None
    return table.get("name") if isinstance(table, dict) else table


def sample_overrides(pipe: Any, sets: list[str], *, source: str | None = None) -> Any:
    """The run's :class:`~interpgen.recipe.Sample` with ``sample.*`` overrides applied, read and
    checked as ``train --set`` reads them (errors name the key path). Setting
    ``sample.sampler.name`` to another sampler starts its table afresh: the old keys were the old
    sampler's."""
    from interpgen.config import RecipeConverter, RecipeError
    from interpgen.recipe import Sample, apply_overrides, recipe_to_dict

    raw = {"sample": recipe_to_dict(pipe.recipe, pipe.registry)["sample"]}
    for item in sets:
        key, sep, _ = item.partition("=")
        key = key.strip()
        if sep and key.split(".")[0] != "sample":
            raise RecipeError([f"--set changes only sample.* keys of a trained run (for example "
                               f"sample.sampler.name=heun); the rest of the recipe is what was trained @ {key}"], source)
        before = _sampler_name(raw)
        raw = apply_overrides(raw, [item])
        if key == "sample.sampler.name" and _sampler_name(raw) != before:
            raw["sample"]["sampler"] = {"name": _sampler_name(raw)}
    try:
        return RecipeConverter(pipe.registry).structure(raw["sample"], Sample, path="sample", source=source)
    except RecipeError as exc:  # say how to give what is missing
        raise RecipeError([f"{p}; give it with --set {p.rpartition(' @ ')[2]}=VALUE" if " is missing @ " in p else p
                           for p in exc.problems], source) from None


def _flag_error(exc: ValueError) -> ValueError:
    """``num must be ...`` (a validator's message) -> ``--num must be ...``."""
    return ValueError(f"--{exc}")


def steps_for_budget(pipe: Any, spec: Any, budget: int, *, labels: Any = None, guidance: float | None = None) -> Any:
    """The sampler ``spec`` with the step count that uses exactly ``budget`` network evaluations per
    sample, each count measured on one sample (a step may cost several evaluations, and some
    samplers add a last one); a ValueError lists the nearest budgets when none fits."""
    name = pipe.registry.entry_for(spec).name
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"--nfe must be an integer >= 1, got {budget!r}")
    if "steps" not in attrs.fields_dict(type(spec)):
        raise ValueError(f"--nfe {budget}: sampler {name} chooses its own steps (adaptive), so its evaluations "
                         "cannot be set; choose a fixed-step sampler (euler, heun, midpoint, rk4, ...)")
    counts: dict[int, int] = {}

    def count(steps: int) -> int:
        if steps not in counts:
            counts[steps] = pipe.sample(1, sampler=attrs.evolve(spec, steps=steps), seed=0, labels=labels,
                                        guidance=guidance, decode=False).nfe
        return counts[steps]

    per_step = max(count(2) - count(1), 1)
    steps = max(1, 1 + (budget - count(1)) // per_step)  # exact for nfe = a * steps + b
    while steps > 1 and count(steps - 1) >= budget:
        steps -= 1
    while count(steps) < budget and steps <= budget:
        steps += 1
    if count(steps) == budget:
        return attrs.evolve(spec, steps=steps)
    near = [(count(k), k) for k in (steps - 1, steps) if k >= 1 and count(k) != budget]
    listed = " and ".join(f"{n} (--steps {k})" for n, k in near)
    raise ValueError(f"sampler {name} cannot use exactly {budget} network evaluation{'s' * (budget > 1)} per sample; "
                     f"the nearest budget{'s' * (len(near) > 1)} it can hit: {listed}")


def sampling_settings(pipe: Any, args: argparse.Namespace, *, labels: Any = None) -> Sampling:
    """Read :func:`sampling_arguments`: the run's ``[sample]`` table, then ``--sampler`` and
    ``--set``, then ``--num``, ``--seed``, ``--guidance``, and ``--steps`` or ``--nfe`` (measured
    with ``labels``, one sample's worth, for class-conditional models)."""
    sets = [f"sample.sampler.name={args.sampler}"] if args.sampler else []
    sets += list(args.set or [])
    sample = sample_overrides(pipe, sets, source=str(Path(args.run) / "recipe.toml"))
    given = {item.partition("=")[0].strip().split(".")[1] for item in sets if "." in item.partition("=")[0]}
    flags = {key: getattr(args, key) for key in ("num", "seed", "guidance") if getattr(args, key, None) is not None}
    try:
        sample = attrs.evolve(sample, **flags)
    except ValueError as exc:
        raise _flag_error(exc) from None
    spec = sample.sampler
    name = pipe.registry.entry_for(spec).name
    if args.steps is not None:
        if "steps" not in attrs.fields_dict(type(spec)):
            raise ValueError(f"sampler {name} takes no step count (adaptive); leave --steps out")
        try:
            spec = attrs.evolve(spec, steps=args.steps)
        except ValueError as exc:
            raise _flag_error(exc) from None
    if args.nfe is not None:
        guidance = sample.guidance if sample.guidance != 1.0 else None
        spec = steps_for_budget(pipe, spec, args.nfe, labels=labels, guidance=guidance)
    pipe.sampler_for(spec)  # an SDE sampler without a score is refused before anything runs
    return Sampling(settings=attrs.evolve(sample, sampler=spec), name=name, steps=getattr(spec, "steps", None),
                    given=frozenset(given | set(flags) | ({"sampler"} if args.sampler else set())),
                    budget=args.nfe)


def sampling_line(choice: Sampling, nfe: int) -> str:
    """``sampler heun, 3 steps (6 network evaluations per sample)``, and the ``--nfe`` budget."""
    steps = f"{choice.steps} step{'s' * (choice.steps != 1)}" if choice.steps is not None else "adaptive steps"
    budget = f": the --nfe {choice.budget} budget" if choice.budget is not None else ""
    return f"sampler {choice.name}, {steps} ({nfe} network evaluation{'s' * (nfe != 1)} per sample){budget}"


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
