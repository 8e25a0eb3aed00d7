"""Sampling a trained run from the command line: the options ``interpgen sample`` shares with
plugins' commands (``eval``), read into one :class:`Sampling`.

Plugins import :func:`sampling_arguments` and :func:`sampling_settings` from :mod:`interpgen.cli`
(docs/plugins.md, "Commands"). Nothing here imports torch at module level: the command line
imports what a command uses only once it runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import attrs


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
