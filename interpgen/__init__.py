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
    "Samples": "interpgen.pipeline",
    "Recipe": "interpgen.recipe",
    "Train": "interpgen.recipe",
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
    "Trainable": "interpgen.protocols",
    "Registry": "interpgen.registry",
    "TrainEvent": "interpgen.hookspecs",
    "AffineInterpolant": "interpgen.affine",
    "DeterministicInterpolant": "interpgen.affine",
    "expand_like": "interpgen.tensors",
    "batch_time": "interpgen.tensors",
    "drop_labels": "interpgen.tensors",
    "check_shard": "interpgen.tensors",
    "DataSource": "interpgen.protocols",
    "PREDICTIONS": "interpgen.protocols",
    "integrate_sde": "interpgen.sde",
    "euler_maruyama_step": "interpgen.sde",
    "standard_normal_like": "interpgen.sde",
}

__all__ = ["hookimpl", "plugins", "registry", "reload_plugins", "__version__", *_LAZY]


#: Names that moved out of the kernel, and where they went.
_MOVED = {
    "Objective": "objectives are registered parts: ig.part(\"objective\", \"si\", prediction=...) "
                 "(the protocol is interpgen.protocols.Objective)",
    "LatentPipeline": "a latent model is a Pipeline with an autoencoder and objective=ig.part(\"objective\", \"lsi\")",
    "Latent": "the LSI settings are the lsi objective's parameters: ig.part(\"objective\", \"lsi\", beta=...)",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if name in _MOVED:
        raise AttributeError(f"interpgen.{name} is gone: {_MOVED[name]}")
    if module is None:
        raise AttributeError(f"module 'interpgen' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
