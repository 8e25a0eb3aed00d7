"""Built-in priors rho0 of x0 (math.md 0; design.md "Prior").

Registered names (kind ``"prior"``): ``gaussian``, ``diagonal_gaussian`` (``learnable = true``: the
learnable Gaussian), ``gmm``, ``uniform``, ``laplacian``, ``point_mass``, ``dataset`` and
``encoded_mixture`` (the LSI paper's one component per encoded training image, math.md 4.3). Each is built with ``build(params, event_shape=..., ...)`` into
an object following :class:`interpgen.protocols.Prior`.
"""

from __future__ import annotations

from interpgen import Registry, hookimpl

from .base import BuiltPrior
from .dataset import DatasetPrior, DatasetPriorParams, build_dataset_prior
from .diagonal_gaussian import DiagonalGaussianParams, DiagonalGaussianPrior, build_diagonal_gaussian
from .encoded_mixture import EncodedMixtureParams, EncodedMixturePrior, build_encoded_mixture
from .gaussian import GaussianParams, StandardGaussianPrior, build_gaussian
from .laplace import LaplaceParams, LaplacePrior, build_laplace
from .mixture import GaussianMixtureParams, GaussianMixturePrior, build_gmm
from .point_mass import PointMassParams, PointMassPrior, build_point_mass
from .uniform import UniformParams, UniformPrior, build_uniform

__all__ = [
    "BuiltPrior", "DatasetPrior", "DatasetPriorParams", "DiagonalGaussianParams", "DiagonalGaussianPrior",
    "EncodedMixtureParams", "EncodedMixturePrior", "GaussianMixtureParams", "GaussianMixturePrior", "GaussianParams",
    "LaplaceParams", "LaplacePrior", "PointMassParams", "PointMassPrior",
    "StandardGaussianPrior", "UniformParams", "UniformPrior",
]


@hookimpl
def interpgen_register(registry: Registry) -> None:
    """Add the priors (kind ``"prior"``)."""
    registry.add("prior", "gaussian", GaussianParams, build=build_gaussian)
    registry.add("prior", "diagonal_gaussian", DiagonalGaussianParams, build=build_diagonal_gaussian)
    registry.add("prior", "gmm", GaussianMixtureParams, build=build_gmm)
    registry.add("prior", "uniform", UniformParams, build=build_uniform)
    registry.add("prior", "laplacian", LaplaceParams, build=build_laplace)
    registry.add("prior", "point_mass", PointMassParams, build=build_point_mass)
    registry.add("prior", "dataset", DatasetPriorParams, build=build_dataset_prior)
    registry.add("prior", "encoded_mixture", EncodedMixtureParams, build=build_encoded_mixture)
