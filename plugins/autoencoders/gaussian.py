"""What the trainable autoencoders share: the stochastic encoder's noise scale and the decoder's
Gaussian reconstruction likelihood (math.md 4.3).

* Encoder: ``z1 = mu(x) + c xi`` with ``xi ~ N(0, I)``; ``encode`` returns ``(mu(x), c)`` with ``c``
  broadcast to ``mu``'s shape. ``c`` is fixed by the recipe, or learned as ``c = exp(log_c)``
  (a parameter in log space, started at the recipe's value).
* Decoder: ``p(x | z) = N(x; D(z), s^2 I)``, so per sample
  ``log p(x | z) = -||x - D(z)||^2 / (2 s^2) - n log s - (n/2) log(2 pi)`` over the ``n`` data
  dimensions (math.md 4.3 leaves the form UNVERIFIED; a Gaussian, i.e. MSE, is the default it
  names). ``s`` is fixed, or learned in log space the same way.
"""

from __future__ import annotations

import math

import attrs
import torch
from torch import Tensor, nn

from interpgen.validators import nonnegative_float, positive_float


@attrs.frozen(kw_only=True)
class GaussianLikelihoodParams:
    """The recipe fields every trainable autoencoder shares (the params classes subclass it)."""

    #: Encoder noise scale ``c`` in ``z1 = mu(x) + c xi`` (0: deterministic encoder).
    noise_scale: float = attrs.field(default=0.1, validator=nonnegative_float)
    #: Learn ``c`` (in log space, starting at ``noise_scale``).
    learn_noise_scale: bool = False
    #: Standard deviation ``s`` of the Gaussian reconstruction likelihood.
    decoder_std: float = attrs.field(default=0.1, validator=positive_float)
    #: Learn ``s`` (in log space, starting at ``decoder_std``).
    learn_decoder_std: bool = False


class GaussianAutoencoder(nn.Module):
    """Base module: subclasses define ``encoder``/``decoder`` maps via :meth:`mean` and :meth:`decode`."""

    def __init__(self, params: GaussianLikelihoodParams):
        super().__init__()
        noise_scale, learn_noise_scale = params.noise_scale, params.learn_noise_scale
        decoder_std, learn_decoder_std = params.decoder_std, params.learn_decoder_std
        if learn_noise_scale and noise_scale <= 0:
            raise ValueError("learn_noise_scale needs noise_scale > 0 to start from (log space), got "
                             f"{noise_scale!r}")
        log_c = torch.tensor(math.log(noise_scale) if noise_scale > 0 else 0.0)
        if learn_noise_scale:
            self.log_noise_scale = nn.Parameter(log_c)
        else:
            self.register_buffer("log_noise_scale", log_c)
        self._deterministic = noise_scale == 0 and not learn_noise_scale
        log_s = torch.tensor(math.log(decoder_std))
        if learn_decoder_std:
            self.log_decoder_std = nn.Parameter(log_s)
        else:
            self.register_buffer("log_decoder_std", log_s)

    # -- to be provided by subclasses ----------------------------------------------------
    def mean(self, x: Tensor) -> Tensor:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def decode(self, z: Tensor) -> Tensor:  # pragma: no cover
        raise NotImplementedError

    def latent_shape(self, data_shape: tuple[int, ...]) -> tuple[int, ...]:  # pragma: no cover
        raise NotImplementedError

    # -- the Autoencoder protocol -------------------------------------------------------
    def noise_scale(self) -> Tensor:
        """``c`` (a scalar tensor): 0 for a deterministic encoder."""
        if self._deterministic:
            return torch.zeros((), dtype=self.log_noise_scale.dtype, device=self.log_noise_scale.device)
        return self.log_noise_scale.exp()

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(mu(x), c)``; the latent is ``mu + c xi`` (math.md 4.3, 4.4)."""
        mu = self.mean(x)
        return mu, self.noise_scale().to(mu).expand_as(mu)

    def reconstruction_log_prob(self, x: Tensor, z: Tensor) -> Tensor:
        """``log N(x; D(z), s^2 I)`` per sample, shape ``(B,)`` (module docstring)."""
        recon = self.decode(z)
        if recon.shape != x.shape:
            raise ValueError(f"decoder output has shape {tuple(recon.shape)} but x has {tuple(x.shape)}")
        log_s = self.log_decoder_std.to(x)
        n = x[0].numel()
        sq = (x - recon).pow(2).reshape(x.shape[0], -1).sum(dim=1)
        return -0.5 * sq * torch.exp(-2.0 * log_s) - n * log_s - 0.5 * n * math.log(2.0 * math.pi)
