"""Built-in priors rho0 of x0 (math.md 0; design.md "Prior").

Registered names (kind ``"prior"``): ``gaussian``, ``diagonal_gaussian``, ``gmm``, ``uniform``,
``point_mass`` and ``dataset``. Each is built with ``build(params, event_shape=..., ...)`` into
an object following :class:`interpgen.protocols.Prior`.
"""

from __future__ import annotations

from interpgen import Registry, hookimpl

from .base import BuiltPrior
from .dataset import DatasetPrior, DatasetPriorParams, build_dataset_prior
from .diagonal_gaussian import DiagonalGaussianParams, DiagonalGaussianPrior, build_diagonal_gaussian
from .gaussian import GaussianParams, StandardGaussianPrior, build_gaussian
from .mixture import GaussianMixtureParams, GaussianMixturePrior, build_gmm
from .point_mass import PointMassParams, PointMassPrior, build_point_mass
from .uniform import UniformParams, UniformPrior, build_uniform

__all__ = [
    "BuiltPrior", "DatasetPrior", "DatasetPriorParams", "DiagonalGaussianParams", "DiagonalGaussianPrior",
    "GaussianMixtureParams", "GaussianMixturePrior", "GaussianParams", "PointMassParams", "PointMassPrior",
    "StandardGaussianPrior", "UniformParams", "UniformPrior",
]


@hookimpl
def interpgen_register(registry: Registry) -> None:
    """Add the priors (kind ``"prior"``)."""
    registry.add("prior", "gaussian", GaussianParams, build=build_gaussian)
    registry.add("prior", "diagonal_gaussian", DiagonalGaussianParams, build=build_diagonal_gaussian)
    registry.add("prior", "gmm", GaussianMixtureParams, build=build_gmm)
    registry.add("prior", "uniform", UniformParams, build=build_uniform)
    registry.add("prior", "point_mass", PointMassParams, build=build_point_mass)
    registry.add("prior", "dataset", DatasetPriorParams, build=build_dataset_prior)
