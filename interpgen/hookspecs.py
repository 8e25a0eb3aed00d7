"""Hook specifications of the ``interpgen`` plugin system (pluggy project ``"interpgen"``).

A plugin is a module (or object) found through the ``interpgen`` entry-point group that
implements any of these hooks with :data:`hookimpl`::

    from interpgen import hookimpl

    @hookimpl
    def interpgen_register(registry):
        registry.add("interpolant", "my_schedule", MySchedule)
        registry.add_command("my-report", run_report, configure=add_report_arguments, help="...")

There are three hooks:

* :func:`interpgen_register` adds parts of every kind (new kinds included) and commands;
* :func:`interpgen_configure_converter` teaches the recipe converter a plugin's own field types;
* :func:`interpgen_train_event` hears the training engine's events (:class:`TrainEvent`).

The hooks are called through pluggy's hook caller, so ``@hookimpl(tryfirst=True)``,
``trylast`` and wrappers (``@hookimpl(wrapper=True)``) work as pluggy documents.
The kind-specific hooks of earlier versions (``interpgen_register_interpolants`` and the like)
are gone: a plugin that still implements one fails to load with a message naming
``interpgen_register(registry)``.
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

#: The kinds of :class:`TrainEvent`: a metrics row was logged, a checkpoint was written, training ended.
TRAIN_EVENT_KINDS: tuple[str, ...] = ("log", "checkpoint", "end")

#: Hooks of earlier versions, each with the kind it registered: a plugin implementing one is told to use
#: ``interpgen_register(registry)`` instead.
REMOVED_HOOKS: dict[str, str] = {
    "interpgen_register_interpolants": "interpolant",
    "interpgen_register_priors": "prior",
    "interpgen_register_couplings": "coupling",
    "interpgen_register_autoencoders": "autoencoder",
    "interpgen_register_samplers": "sampler",
    "interpgen_register_networks": "network",
    "interpgen_register_datasets": "dataset",
}


@attrs.frozen
class TrainEvent:
    """One event of the training engine, passed to :func:`interpgen_train_event`.

    ``kind`` is ``"log"`` (``record`` holds the metrics row just written), ``"checkpoint"`` (a
    checkpoint of ``step`` was written under ``run_dir``) or ``"end"`` (training stopped at ``step``).
    ``pipe`` is what is being trained (the ``Trainable``, normally a ``Pipeline``), ``train`` the
    ``Train`` configuration of the run, ``run_dir`` the run directory (None when the run writes none).
    """

    kind: str = attrs.field(validator=attrs.validators.in_(TRAIN_EVENT_KINDS))
    step: int = attrs.field(validator=[attrs.validators.instance_of(int), attrs.validators.ge(0)])
    pipe: Any
    run_dir: Path | None
    train: Any
    record: dict[str, Any] | None = None


@hookspec
def interpgen_register(registry: Registry) -> None:
    """Add parts and commands to ``registry``.

    Parts of any kind, kinds the kernel does not know included:
    ``registry.add(kind, name, params_cls, build=None, description="")``. Commands of the
    ``interpgen`` command line: ``registry.add_command(name, run, configure=None, help="")``, where
    ``configure(parser)`` adds arguments to an ``argparse.ArgumentParser`` and ``run(args) -> int``
    runs the command. A name registered twice, by this plugin or another, fails the plugin that came
    second, with a message naming both owners.
    """


@hookspec
def interpgen_configure_converter(converter: Any) -> None:
    """Teach the recipe converter (a ``cattrs.Converter``) about a plugin's own field types,
    e.g. ``converter.register_structure_hook(MyType, fn)``."""


@hookspec
def interpgen_train_event(event: TrainEvent) -> None:
    """React to a training event (log, checkpoint, end); called on the main process only."""
