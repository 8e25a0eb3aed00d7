"""The identity autoencoder: the model works in data space (latent z1 = x1).

In the latent-interpolant picture of math.md 4.1 (encoder q(z1 | x), decoder p(x | z1)) both
maps are the identity and the encoder adds no noise.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import torch
from torch import Tensor


@attrs.frozen(kw_only=True)
class IdentityAutoencoder:
    """Identity autoencoder: encode and decode leave data unchanged."""

    #: Tells the kernel's Pipeline that the model stays in data space (no latent pipeline needed).
    is_identity: ClassVar[bool] = True

    def latent_shape(self, data_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The latent space is the data space."""
        return tuple(data_shape)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(mean, noise_scale) = (x, 0)``: the latent ``x + 0 * xi`` is ``x`` itself."""
        return x, torch.zeros_like(x)

    def decode(self, z: Tensor) -> Tensor:
        """``z`` is already in data space."""
        return z

    def reconstruction_log_prob(self, x: Tensor, z: Tensor) -> Tensor:
        """Zeros of shape ``(B,)``.

        The identity map is exact: decoding the encoding gives x back with no error, so
        p(x | z) is a point mass at z rather than a density. Its log has no finite value, but it
        depends on no parameter, so in an ELBO it is a constant; 0 is used for that constant,
        which makes the identity autoencoder add nothing to a loss or a likelihood.
        """
        if x.dim() == 0 or x.shape != z.shape:
            raise ValueError(f"autoencoder 'identity': x and z must be batches of one shape, got x of shape "
                             f"{tuple(x.shape)} and z of shape {tuple(z.shape)}")
        return torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
