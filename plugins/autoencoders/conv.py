"""A small convolutional autoencoder for images ``(C, H, W)`` (design.md "Autoencoder", math.md 4.3).

Encoder: a 3x3 convolution to ``channels``, then per downsampling level a stride-2 3x3 convolution
and a 3x3 convolution (SiLU after each), then a 1x1 convolution to ``latent_channels``. The latent
has shape ``(latent_channels, ceil(H / 2^L), ceil(W / 2^L))`` for ``L = downsamples``; images whose
sides are not multiples of ``2^L`` are zero-padded on the bottom/right before encoding and the
decoder's output is cropped back. Decoder: the mirror image with nearest-neighbour upsampling.
The stochastic encoder and the Gaussian decoder likelihood are those of :mod:`.gaussian`.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import torch.nn.functional as F
from torch import Tensor, nn

from interpgen.validators import nonnegative_int, positive_int

from .gaussian import GaussianAutoencoder, GaussianLikelihoodParams


@attrs.frozen(kw_only=True)
class ConvAutoencoderParams(GaussianLikelihoodParams):
    """Convolutional autoencoder with a stochastic encoder and a Gaussian decoder likelihood."""

    #: Width of every hidden convolution.
    channels: int = attrs.field(default=32, validator=positive_int)
    #: Number of stride-2 levels ``L``: the latent is ``2^L`` times smaller per side.
    downsamples: int = attrs.field(default=1, validator=nonnegative_int)
    #: Channels of the latent.
    latent_channels: int = attrs.field(default=4, validator=positive_int)


class ConvAutoencoder(GaussianAutoencoder):
    """The module built from :class:`ConvAutoencoderParams` for data of shape ``(C, H, W)``."""

    def __init__(self, data_shape: tuple[int, ...], params: ConvAutoencoderParams):
        super().__init__(params, latent_channels=params.latent_channels)
        if len(data_shape) != 3:
            raise ValueError(f"autoencoder 'conv' needs image data of shape (C, H, W), got event shape "
                             f"{tuple(data_shape)}; use autoencoder 'dense' for vectors")
        self.data_shape = tuple(data_shape)
        self.factor = 2 ** params.downsamples
        c_in, w, lat = data_shape[0], params.channels, params.latent_channels
        act = nn.SiLU
        enc: list[nn.Module] = [nn.Conv2d(c_in, w, 3, padding=1), act()]
        for _ in range(params.downsamples):
            enc += [nn.Conv2d(w, w, 3, stride=2, padding=1), act(), nn.Conv2d(w, w, 3, padding=1), act()]
        enc.append(nn.Conv2d(w, lat, 1))
        dec: list[nn.Module] = [nn.Conv2d(lat, w, 3, padding=1), act()]
        for _ in range(params.downsamples):
            dec += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(w, w, 3, padding=1), act(),
                    nn.Conv2d(w, w, 3, padding=1), act()]
        dec.append(nn.Conv2d(w, c_in, 3, padding=1))
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)

    def latent_shape(self, data_shape: tuple[int, ...]) -> tuple[int, ...]:
        _, h, w = data_shape
        return (self.encoder[-1].out_channels, math.ceil(h / self.factor), math.ceil(w / self.factor))

    def mean(self, x: Tensor) -> Tensor:
        _, h, w = self.data_shape
        pad_h, pad_w = (-h) % self.factor, (-w) % self.factor
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        _, h, w = self.data_shape
        return self.decoder(z)[..., :h, :w]


def build_conv(params: ConvAutoencoderParams, *, event_shape: tuple[int, ...], **context: Any) -> ConvAutoencoder:
    """The convolutional autoencoder for data of ``event_shape`` ``(C, H, W)``."""
    return ConvAutoencoder(tuple(event_shape), params)
