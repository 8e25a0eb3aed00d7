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

#: The public names, by the module that defines them (imported on first use).
_EXPORTS = {
    "interpgen.pipeline": ("Pipeline", "part", "Samples"),
    "interpgen.recipe": ("Recipe", "Train", "load_recipe", "dump_recipe", "structure_recipe"),
    "interpgen.config": ("RecipeError", "Part"),
    "interpgen.registry": ("Registry",),
    "interpgen.hookspecs": ("TrainEvent",),
    "interpgen.fields": ("ModelField",),
    "interpgen.protocols": ("SampleResult", "ConversionError", "CheckpointError", "Interpolant", "Prior", "Coupling",
                            "Autoencoder", "Sampler", "Field", "Trainable", "DataSource", "PREDICTIONS"),
    "interpgen.affine": ("AffineInterpolant", "DeterministicInterpolant"),
    "interpgen.tensors": ("expand_like", "batch_time", "drop_labels", "check_shard"),
    "interpgen.sde": ("integrate_sde", "euler_maruyama_step", "standard_normal_like"),
}
_LAZY = {name: module for module, names in _EXPORTS.items() for name in names}

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
