"""Built-in networks (kind ``"network"``): ``mlp`` (:mod:`.mlp`), with the time embeddings of
:mod:`.time_embedding` shared by every network of this plugin."""

from __future__ import annotations

from interpgen.hookspecs import hookimpl

from .mlp import MLP, MLPParams, build_mlp
from .time_embedding import FourierTimeEmbedding, SinusoidalTimeEmbedding

__all__ = ["MLP", "FourierTimeEmbedding", "MLPParams", "SinusoidalTimeEmbedding", "interpgen_register_networks"]


@hookimpl
def interpgen_register_networks(registry) -> None:  # noqa: ANN001 - the kernel's Registry
    registry.add("network", "mlp", MLPParams, build=build_mlp)
