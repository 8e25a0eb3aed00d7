"""Built-in couplings nu of (x0, x1) (math.md 5): ``independent``."""

from __future__ import annotations

from typing import Any

from interpgen.hookspecs import hookimpl

from .independent import IndependentCoupling

__all__ = ["IndependentCoupling"]


@hookimpl
def interpgen_register_couplings(registry: Any) -> None:
    registry.add("coupling", "independent", IndependentCoupling)
