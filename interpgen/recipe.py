"""Recipes: what to train and how, as frozen attrs classes loaded from TOML.

A recipe names its parts by registry name (``[interpolant] name = "linear"``); tables left out
take the defaults in :data:`DEFAULT_PARTS`. Loading resolves every default, endpoint epsilons
included, so the recipe written into a run directory says exactly what ran, and
``load -> dump -> load`` gives an equal object.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
import tomli_w

from interpgen.config import Part, RecipeConverter, RecipeError
from interpgen.registry import Registry
from interpgen.validators import (finite_float, nonnegative_float, nonnegative_int, one_of, positive_float,
                                  positive_int, unit_interval_open_right)


@attrs.frozen(kw_only=True)
class Train:
    """Optimisation settings (docs/training.md describes every field). ``batch_size`` is per process
    and micro-batch: a step sees ``batch_size * grad_accumulation * num_processes`` samples."""

    steps: int = attrs.field(default=3000, validator=positive_int)
    trainer: str = "accelerate"  # a registered trainer (kind "trainer"): the engine, interpgen.train
    batch_size: int = attrs.field(default=256, validator=positive_int)
    lr: float = attrs.field(default=1e-3, validator=positive_float)
    seed: int = attrs.field(default=0, validator=nonnegative_int)
    weight_decay: float = attrs.field(default=0.0, validator=nonnegative_float)
    warmup_steps: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    lr_schedule: str = attrs.field(default="constant", validator=one_of("constant", "cosine"))
    grad_clip: float = attrs.field(default=1.0, validator=nonnegative_float)  # 0 turns clipping off
    ema_decay: float = attrs.field(default=0.999, validator=unit_interval_open_right)  # 0 turns EMA off
    log_every: int = attrs.field(default=100, validator=positive_int)
    checkpoint_every: int = attrs.field(default=1000, validator=positive_int)
    keep_checkpoints: int = attrs.field(default=2, validator=positive_int)
    mixed_precision: str = attrs.field(default="no", validator=one_of("no", "bf16", "fp16"))
    grad_accumulation: int = attrs.field(default=1, validator=positive_int)
    compile: bool = False
    sample_every: int = attrs.field(default=1000, validator=nonnegative_int)  # pictures; 0: only at the end
    pictures: bool = True
    num_processes: int = attrs.field(default=0, validator=nonnegative_int)  # expected world size; 0: any
    pair_ahead: bool = True  # pair the next batch in a thread for couplings that ask for it
    log_with: tuple[str, ...] = ()  # Accelerate trackers (tensorboard, wandb, ...) besides metrics.jsonl
    threads: int | None = attrs.field(default=None, validator=attrs.validators.optional(nonnegative_int))


@attrs.frozen(kw_only=True)
class Sample:
    """Defaults for ``interpgen sample`` (every one can be overridden on the command line)."""

    sampler: Part("sampler")  # type: ignore[valid-type]
    num: int = attrs.field(default=2000, validator=positive_int)
    seed: int = attrs.field(default=0, validator=nonnegative_int)
    guidance: float = attrs.field(default=1.0, validator=finite_float)  # classifier-free guidance (1: none)


@attrs.frozen(kw_only=True)
class Recipe:
    """A whole training recipe."""

    data: Part("dataset")  # type: ignore[valid-type]
    prior: Part("prior")  # type: ignore[valid-type]
    interpolant: Part("interpolant")  # type: ignore[valid-type]
    coupling: Part("coupling")  # type: ignore[valid-type]
    network: Part("network")  # type: ignore[valid-type]
    #: Encoder/decoder around the model (docs/math.md section 4); ``identity`` keeps it in data space.
    autoencoder: Part("autoencoder")  # type: ignore[valid-type]
    #: The training method: ``si`` (docs/math.md 1.4), ``lsi`` (section 4) or a plugin's.
    objective: Part("objective")  # type: ignore[valid-type]
    train: Train = attrs.Factory(Train)
    sample: Sample


#: Tables a recipe may leave out, and what they default to.
DEFAULT_PARTS: dict[str, Any] = {
    "prior": {"name": "gaussian"},
    "interpolant": {"name": "linear"},
    "coupling": {"name": "independent"},
    "network": {"name": "mlp"},
    "autoencoder": {"name": "identity"},
    "objective": {"name": "si"},
    "sample": {"sampler": {"name": "midpoint"}},
}


#: Recipe keys that moved, and what to write instead (the old key is refused with this message).
MOVED_KEYS: dict[str, str] = {
    "model": "the [model] table is now [network] (the same key as Pipeline(network=...))",
    "latent": "the [latent] table moved into [objective]: write name = \"lsi\" there, with the same fields "
              "(beta, reconstruction_weight, encoder_training, ...) beside label_dropout",
}


def _with_defaults(raw: Mapping[str, Any], source: str | None = None) -> dict[str, Any]:
    moved = [f"{MOVED_KEYS[key]} @ {key}" for key in raw if key in MOVED_KEYS]
    if moved:
        raise RecipeError(moved, source)
    data = copy.deepcopy(dict(raw))
    for key, default in DEFAULT_PARTS.items():
        if key not in data:
            data[key] = copy.deepcopy(default)
        elif isinstance(default, dict) and isinstance(data[key], dict):
            for sub, value in default.items():
                if sub != "name" or key == "objective":  # an [objective] without a name is si's
                    data[key].setdefault(sub, copy.deepcopy(value))
    return data


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``dotted.key=value`` overrides; the value is read as a TOML value when it parses
    (``3``, ``1e-3``, ``true``, ``"x"``, ``[1, 2]``) and as a bare string otherwise."""
    data = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise RecipeError([f"--set expects dotted.key=value, got {item!r}"])
        try:
            value = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        *parents, leaf = key.split(".")
        node = data
        for i, part in enumerate(parents):
            child = node.get(part)
            if isinstance(child, str):  # `interpolant = "linear"` shorthand becomes a table
                child = {"name": child}
            elif child is None:
                child = {}
            elif not isinstance(child, dict):
                raise RecipeError([f"--set {key}: {'.'.join(parents[: i + 1])} is not a table"])
            node[part] = child
            node = child
        node[leaf] = value
    return data


def structure_recipe(raw: Mapping[str, Any], registry: Registry, *, source: str | None = None) -> Recipe:
    """Turn TOML-shaped data into a resolved :class:`Recipe` (all problems reported at once)."""
    converter = RecipeConverter(registry)
    recipe = converter.structure(_with_defaults(raw, source), Recipe, source=source)
    return resolve(recipe, source=source)


def resolve(recipe: Recipe, *, source: str | None = None) -> Recipe:
    """Fill values that depend on other parts (the objective's endpoint epsilon)."""
    try:
        objective = recipe.objective.resolve(recipe.interpolant)
    except ValueError as exc:
        raise RecipeError([f"{exc} @ objective"], source) from None
    return attrs.evolve(recipe, objective=objective)


def load_recipe(path: str | Path, registry: Registry, *, overrides: Iterable[str] = ()) -> Recipe:
    """Read a TOML recipe file, apply ``--set`` overrides and structure it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError([f"recipe file not found: {path.resolve()}"]) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError([f"not valid TOML: {exc}"], str(path)) from None
    return structure_recipe(apply_overrides(raw, overrides), registry, source=str(path))


def recipe_to_dict(recipe: Recipe, registry: Registry) -> dict[str, Any]:
    """The recipe as TOML-shaped data (``None`` values, the defaults, left out)."""
    def drop_none(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [drop_none(v) for v in value]
        return {k: drop_none(v) for k, v in value.items() if v is not None} if isinstance(value, dict) else value

    return drop_none(RecipeConverter(registry).unstructure(recipe, Recipe))


def dump_recipe(recipe: Recipe, registry: Registry) -> str:
    return tomli_w.dumps(recipe_to_dict(recipe, registry))
