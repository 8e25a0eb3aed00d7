"""A small fully connected autoencoder for vector data ``(D,)`` (or any shape, flattened).

Encoder and decoder are MLPs with ``depth`` hidden layers of width ``hidden`` (SiLU); the latent is
``(latent_dim,)``. The stochastic encoder and Gaussian decoder are those of :mod:`.gaussian`
(math.md 4.3).
"""

from __future__ import annotations

import math
from typing import Any

import attrs
from torch import Tensor, nn

from interpgen.validators import positive_int

from .gaussian import GaussianAutoencoder, GaussianLikelihoodParams


@attrs.frozen(kw_only=True)
class DenseAutoencoderParams(GaussianLikelihoodParams):
    """Fully connected autoencoder with a stochastic encoder and a Gaussian decoder likelihood."""

    hidden: int = attrs.field(default=64, validator=positive_int)
    depth: int = attrs.field(default=2, validator=positive_int)
    latent_dim: int = attrs.field(default=2, validator=positive_int)


def _mlp(n_in: int, hidden: int, depth: int, n_out: int) -> nn.Sequential:
    widths = [n_in] + [hidden] * depth
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.SiLU()]
    layers.append(nn.Linear(widths[-1], n_out))
    return nn.Sequential(*layers)


class DenseAutoencoder(GaussianAutoencoder):
    """The module built from :class:`DenseAutoencoderParams`."""

    def __init__(self, data_shape: tuple[int, ...], params: DenseAutoencoderParams):
        super().__init__(params, latent_channels=params.latent_dim)
        self.data_shape = tuple(data_shape)
        n = math.prod(self.data_shape)
        self.latent_dim = params.latent_dim
        self.encoder = _mlp(n, params.hidden, params.depth, params.latent_dim)
        self.decoder = _mlp(params.latent_dim, params.hidden, params.depth, n)

    def latent_shape(self, data_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (self.latent_dim,)

    def mean(self, x: Tensor) -> Tensor:
        return self.encoder(x.reshape(x.shape[0], -1))

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z).reshape(z.shape[0], *self.data_shape)


def build_dense(params: DenseAutoencoderParams, *, event_shape: tuple[int, ...], **context: Any) -> DenseAutoencoder:
    """The dense autoencoder for data of ``event_shape``."""
    return DenseAutoencoder(tuple(event_shape), params)
