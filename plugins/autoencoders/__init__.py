"""Built-in autoencoders (design.md "Autoencoder"): ``identity``."""

from __future__ import annotations

from typing import Any

from interpgen.hookspecs import hookimpl

from .identity import IdentityAutoencoder

__all__ = ["IdentityAutoencoder"]


@hookimpl
def interpgen_register_autoencoders(registry: Any) -> None:
    registry.add("autoencoder", "identity", IdentityAutoencoder)
