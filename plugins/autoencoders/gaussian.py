"""What the trainable autoencoders share: the stochastic encoder's output and noise scale and the
decoder's Gaussian reconstruction likelihood (math.md 4.3).

* Encoder: ``z1 = m(x) + c xi`` with ``xi ~ N(0, I)``; ``encode`` returns ``(m(x), c)`` with ``c``
  broadcast to ``m``'s shape. ``encoder_output`` chooses ``m``:

  - ``"norm_tanh"`` (the paper's, math.md 4.3): ``m(x) = tanh(norm(mu(x)))``, where ``norm``
    standardises each latent channel to zero mean and unit standard deviation, then ``tanh``
    bounds the latents to ``(-1, 1)`` before the noise is added. The statistics are per channel
    (over the batch and the spatial positions): those of the batch in a training forward with
    gradients, their running averages otherwise (encodings without gradients, evaluation mode),
    as a batch normalisation without a learned scale and shift. The paper does not say over which
    axes it normalises; this reading keeps every sample's information (a per-sample
    standardisation would erase two numbers per sample, all of a 2-D latent).
  - ``"raw"``: ``m(x) = mu(x)`` as the network gives it (interpgen's behaviour before).

  ``c`` is a **standard deviation** (the paper's ``Sigma = c I`` read as ``Sigma = c^2 I`` here;
  a variance ``v`` in the paper's sense is ``noise_scale = sqrt(v)``), fixed by the recipe, or
  learned as ``c = exp(log_c)`` (a parameter in log space, started at the recipe's value).
* Decoder: ``p(x | z) = N(x; D(z), s^2 I)``, so per sample
  ``log p(x | z) = -||x - D(z)||^2 / (2 s^2) - n log s - (n/2) log(2 pi)`` over the ``n`` data
  dimensions (math.md 4.3 leaves the form UNVERIFIED; a Gaussian, i.e. MSE, is the default it
  names). ``s`` is fixed, or learned in log space the same way.
"""

from __future__ import annotations

import math

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from interpgen.validators import nonnegative_float, one_of, positive_float

#: ``encoder_output`` choices (module docstring).
ENCODER_OUTPUTS: tuple[str, ...] = ("norm_tanh", "raw")


@attrs.frozen(kw_only=True)
class GaussianLikelihoodParams:
    """The recipe fields every trainable autoencoder shares (the params classes subclass it)."""

    #: ``norm_tanh``: ``tanh`` of the per-channel standardised encoder output (the paper's, math.md
    #: 4.3); ``raw``: the encoder network's output as is.
    encoder_output: str = attrs.field(default="norm_tanh", validator=one_of(*ENCODER_OUTPUTS))
    #: Encoder noise scale ``c`` in ``z1 = m(x) + c xi``, a standard deviation (0: deterministic encoder).
    noise_scale: float = attrs.field(default=0.1, validator=nonnegative_float)
    #: Learn ``c`` (in log space, starting at ``noise_scale``).
    learn_noise_scale: bool = False
    #: Standard deviation ``s`` of the Gaussian reconstruction likelihood.
    decoder_std: float = attrs.field(default=0.1, validator=positive_float)
    #: Learn ``s`` (in log space, starting at ``decoder_std``).
    learn_decoder_std: bool = False


class GaussianAutoencoder(nn.Module):
    """Base module: subclasses define ``encoder``/``decoder`` maps via :meth:`mean` and :meth:`decode`."""

    def __init__(self, params: GaussianLikelihoodParams, *, latent_channels: int):
        super().__init__()
        self.encoder_output = params.encoder_output
        if self.encoder_output == "norm_tanh":  # running statistics of the standardisation (module docstring)
            self.register_buffer("latent_mean", torch.zeros(latent_channels))
            self.register_buffer("latent_var", torch.ones(latent_channels))
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

    def bound(self, mu: Tensor) -> Tensor:
        """``tanh(norm(mu))`` for ``norm_tanh`` (batch statistics only in a training forward with
        gradients, which also updates the running ones), ``mu`` for ``raw``."""
        if self.encoder_output == "raw":
            return mu
        batch_stats = self.training and torch.is_grad_enabled()
        return torch.tanh(F.batch_norm(mu, self.latent_mean, self.latent_var, training=batch_stats,
                                       momentum=0.1, eps=1e-5))

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(m(x), c)``; the latent is ``m + c xi`` (math.md 4.3, 4.4)."""
        mu = self.bound(self.mean(x))
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
