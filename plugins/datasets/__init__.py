"""Built-in data sets: synthetic 2-D targets and the user's own array files.

Registered names (kind ``"dataset"``): ``checkerboard``, ``moons``, ``eight_gaussians``,
``spirals``, ``circles``, ``swissroll``, ``pinwheel``, ``rings``, ``gaussian`` (see
:mod:`.synthetic`, samplers in :mod:`.shapes`) and ``array`` (see :mod:`.array_file`).
"""

from __future__ import annotations

from interpgen.hookspecs import hookimpl

from .array_file import ArrayFile, build_array
from .finite import FiniteSource
from .synthetic import SYNTHETIC_TARGETS, SyntheticSource, build_synthetic

__all__ = ["ArrayFile", "FiniteSource", "SyntheticSource", "interpgen_register_datasets"]


@hookimpl
def interpgen_register_datasets(registry) -> None:  # noqa: ANN001 - the kernel's Registry
    for name, params_cls in SYNTHETIC_TARGETS.items():
        registry.add("dataset", name, params_cls, build=build_synthetic)
    registry.add("dataset", "array", ArrayFile, build=build_array)
