"""The three hooks of the ``interpgen`` plugin system (pluggy project ``"interpgen"``), implemented with
:data:`hookimpl` by plugins of the ``interpgen`` entry-point group. A plugin that still implements one of
the :data:`REMOVED_HOOKS` fails to load with a message naming ``interpgen_register(registry)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pluggy

from interpgen.registry import Registry

PROJECT = "interpgen"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

#: Hooks of earlier versions (``interpgen_register_priors`` and the like), each with the kind it registered.
REMOVED_HOOKS: dict[str, str] = {f"interpgen_register_{kind}s": kind for kind in (
    "interpolant", "prior", "coupling", "autoencoder", "sampler", "network", "dataset")}


@attrs.frozen
class TrainEvent:
    """An engine event: ``"log"`` (``record`` is the metrics row), ``"checkpoint"`` (saved at ``step`` under
    ``run_dir``) or ``"end"``; ``pipe`` is the ``Trainable`` (normally a ``Pipeline``), ``train`` its ``Train``."""

    kind: str = attrs.field(validator=attrs.validators.in_(("log", "checkpoint", "end")))
    step: int = attrs.field(validator=[attrs.validators.instance_of(int), attrs.validators.ge(0)])
    pipe: Any
    run_dir: Path | None
    train: Any
    record: dict[str, Any] | None = None


@hookspec
def interpgen_register(registry: Registry) -> None:
    """Add parts and commands to ``registry``.

    Parts of any kind, new kinds included: ``registry.add(kind, name, params_cls, build=None, description="")``.
    Commands: ``registry.add_command(name, run, configure=None, help="")``, where ``configure(parser)`` adds
    arguments to an ``argparse.ArgumentParser`` and ``run(args) -> int`` runs the command."""


@hookspec
def interpgen_configure_converter(converter: Any) -> None:
    """Teach the recipe converter (a ``cattrs.Converter``) about a plugin's own field types,
    e.g. ``converter.register_structure_hook(MyType, fn)``."""


@hookspec
def interpgen_train_event(event: TrainEvent) -> None:
    """React to a training event (log, checkpoint, end); called on the main process only."""
