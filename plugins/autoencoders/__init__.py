"""Built-in autoencoders (design.md "Autoencoder", math.md 4.3).

* ``identity``: the model works in data space;
* ``conv``: a convolutional autoencoder for images with a stochastic encoder
  ``z1 = tanh(norm(mu(x))) + c xi`` (``encoder_output = "raw"``: ``mu(x) + c xi``; ``c`` fixed or
  learned) and a Gaussian decoder likelihood (:mod:`.conv`, :mod:`.gaussian`);
* ``dense``: the same for vector data (:mod:`.dense`);
* ``pretrained``: any of them loaded from a checkpoint and frozen (:mod:`.pretrained`).
"""

from __future__ import annotations

from interpgen import Registry, hookimpl

from .conv import ConvAutoencoder, ConvAutoencoderParams, build_conv
from .dense import DenseAutoencoder, DenseAutoencoderParams, build_dense
from .gaussian import GaussianAutoencoder
from .identity import IdentityAutoencoder
from .pretrained import PretrainedAutoencoderError, PretrainedAutoencoderParams, build_pretrained

__all__ = ["ConvAutoencoder", "ConvAutoencoderParams", "DenseAutoencoder", "DenseAutoencoderParams",
           "GaussianAutoencoder", "IdentityAutoencoder", "PretrainedAutoencoderError",
           "PretrainedAutoencoderParams"]


@hookimpl
def interpgen_register(registry: Registry) -> None:
    """Add the autoencoders (kind ``"autoencoder"``)."""
    registry.add("autoencoder", "identity", IdentityAutoencoder)
    registry.add("autoencoder", "conv", ConvAutoencoderParams, build=build_conv)
    registry.add("autoencoder", "dense", DenseAutoencoderParams, build=build_dense)
    registry.add("autoencoder", "pretrained", PretrainedAutoencoderParams, build=build_pretrained)
