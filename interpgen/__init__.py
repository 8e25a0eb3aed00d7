"""interpgen: generative modelling with stochastic interpolants.

The public API, imported lazily so ``import interpgen`` stays cheap::

    import interpgen as ig
    pipe = ig.Pipeline(data=ig.part("dataset", "moons"))
    pipe.fit(ig.Train(steps=2000))
    samples = pipe.sample(1000, sampler=ig.part("sampler", "heun", steps=8))

Plugins implement hooks marked with :data:`hookimpl` (see :mod:`interpgen.hookspecs`): the one
registration hook receives a :class:`Registry`; engine events arrive as :class:`TrainEvent`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from interpgen.hookspecs import hookimpl
# Bound here, after the submodule interpgen.registry is imported, so `ig.registry` is the function.
from interpgen.plugin_manager import plugins, registry, reload_plugins

__version__ = "0.1.0"

_LAZY = {
    "Registry": "interpgen.registry",
    "TrainEvent": "interpgen.hookspecs",
    "Pipeline": "interpgen.pipeline",
    "part": "interpgen.pipeline",
    "Recipe": "interpgen.recipe",
    "Objective": "interpgen.recipe",
    "Train": "interpgen.recipe",
    "Latent": "interpgen.latent_config",
    "LatentPipeline": "interpgen.latent",
    "load_recipe": "interpgen.recipe",
    "dump_recipe": "interpgen.recipe",
    "structure_recipe": "interpgen.recipe",
    "RecipeError": "interpgen.config",
    "Part": "interpgen.config",
    "ModelField": "interpgen.fields",
    "SampleResult": "interpgen.protocols",
    "ConversionError": "interpgen.protocols",
    "Interpolant": "interpgen.protocols",
    "Prior": "interpgen.protocols",
    "Coupling": "interpgen.protocols",
    "Autoencoder": "interpgen.protocols",
    "Sampler": "interpgen.protocols",
    "Field": "interpgen.protocols",
    "DataSource": "interpgen.protocols",
    "PREDICTIONS": "interpgen.protocols",
}

__all__ = ["hookimpl", "plugins", "registry", "reload_plugins", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'interpgen' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
