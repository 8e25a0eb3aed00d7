"""Hook specifications of the ``interpgen`` plugin system (pluggy project ``"interpgen"``).

A plugin is a module (or object) found through the ``interpgen`` entry-point group that
implements any of these hooks with :data:`hookimpl`::

    from interpgen import hookimpl

    @hookimpl
    def interpgen_register_interpolants(registry):
        registry.add("interpolant", "my_schedule", MySchedule)

Each ``interpgen_register_*`` hook receives the :class:`interpgen.registry.Registry` and adds
to it; the kind-specific names only say which kind a plugin means to add, and
``interpgen_register`` takes any kind, new kinds included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import pluggy

PROJECT = "interpgen"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def interpgen_register_interpolants(registry: Any) -> None:
    """Add interpolants (kind ``"interpolant"``) and gamma forms (kind ``"gamma"``)."""


@hookspec
def interpgen_register_priors(registry: Any) -> None:
    """Add priors (kind ``"prior"``)."""


@hookspec
def interpgen_register_couplings(registry: Any) -> None:
    """Add couplings (kind ``"coupling"``)."""


@hookspec
def interpgen_register_autoencoders(registry: Any) -> None:
    """Add autoencoders (kind ``"autoencoder"``)."""


@hookspec
def interpgen_register_samplers(registry: Any) -> None:
    """Add samplers (kind ``"sampler"``) and diffusion coefficients (kind ``"diffusion"``)."""


@hookspec
def interpgen_register_networks(registry: Any) -> None:
    """Add networks (kind ``"network"``) and attention backends (kind ``"attention"``)."""


@hookspec
def interpgen_register_datasets(registry: Any) -> None:
    """Add data sources (kind ``"dataset"``)."""


@hookspec
def interpgen_register(registry: Any) -> None:
    """Add parts of any kind, including kinds the kernel does not know."""


@hookspec
def interpgen_configure_converter(converter: Any) -> None:
    """Teach the recipe converter (a ``cattrs.Converter``) about a plugin's own field types,
    e.g. ``converter.register_structure_hook(MyType, fn)``."""


@attrs.frozen(kw_only=True)
class TrainEvent:
    """What the engine tells plugins (main process only): ``kind`` is ``"log"`` (a metrics row,
    ``record``), ``"checkpoint"`` (saved at ``step``) or ``"end"`` (training finished)."""

    kind: str
    step: int
    pipe: Any
    run_dir: Path | None
    train: Any
    record: dict[str, Any] | None = None


@hookspec
def interpgen_train_event(event: TrainEvent) -> None:
    """React to the training engine: write pictures, send metrics elsewhere, ..."""


REGISTER_HOOKS: tuple[str, ...] = (
    "interpgen_register_interpolants",
    "interpgen_register_priors",
    "interpgen_register_couplings",
    "interpgen_register_autoencoders",
    "interpgen_register_samplers",
    "interpgen_register_networks",
    "interpgen_register_datasets",
    "interpgen_register",
)
