"""Built-in networks (kind ``"network"``) and attention backends (kind ``"attention"``).

Networks: ``mlp`` (:mod:`.mlp`, vector data), ``unet`` (:mod:`.unet`, small images) and ``dit``
(:mod:`.dit`, a DiT/SiT-style transformer for image latents), sharing the time embeddings of
:mod:`.time_embedding` and the label convention of :mod:`.conditioning`. Attention backends:
``math``, ``sdpa``, ``xformers`` and ``auto`` (:mod:`.attention`); a network looks its backend up
by name in the registry, so a plugin's own backend works the same way.
"""

from __future__ import annotations

from interpgen import Registry, hookimpl

from .attention import (AutoAttention, MathAttention, SdpaAttention, XformersAttention, attention_backend,
                        register_attention_backends)
from .dit import DiT, DiTParams, build_dit
from .mlp import MLP, MLPParams, build_mlp
from .time_embedding import FourierTimeEmbedding, SinusoidalTimeEmbedding
from .unet import UNet, UNetParams, build_unet

__all__ = ["MLP", "AutoAttention", "DiT", "DiTParams", "FourierTimeEmbedding", "MLPParams", "MathAttention",
           "SdpaAttention", "SinusoidalTimeEmbedding", "UNet", "UNetParams", "XformersAttention",
           "attention_backend", "interpgen_register"]


@hookimpl
def interpgen_register(registry: Registry) -> None:
    """Add the networks (kind ``"network"``) and attention backends (kind ``"attention"``)."""
    registry.add("network", "mlp", MLPParams, build=build_mlp)
    registry.add("network", "unet", UNetParams, build=build_unet)
    registry.add("network", "dit", DiTParams, build=build_dit)
    register_attention_backends(registry)
