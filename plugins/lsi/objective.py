"""Latent Stochastic Interpolants (LSI, Singh & Lagun, arXiv 2506.02276; math.md 4).

An encoder ``q(z1 | x)``, a decoder ``p(x | z1)`` and a latent interpolant model ``h_theta`` are
trained under one objective (math.md 4.4), for the linear bridge ``kappa = t``, ``nu = 1 - t``:

    z1  = m(x) + c xi                                    (stochastic encoder, reparameterised)
    z_t = sigma sqrt(t(1-t)) eps + t z1 + (1-t) z0,       z0 ~ p0 (any prior)
    T   = -sigma sqrt(t) eps + sqrt(1-t) (z1 - z0) + sqrt(t) z_t        (InterpFlow target, 4.3)
    L   = w_rec * (-log p(x | z1)) / n_x
          + beta * (1/2) [w(t) mean ||T - h^_theta(z_t, t)||^2 + w_eps mean ||eps^_theta(z_t, t) - eps||^2]

with ``t = 1 - (1 - s)^c_t``, ``s ~ U[0, 1)`` (``c_t = 1``: uniform) and ``w = 1`` (reported
practice) or ``w = J^2/sigma^2`` (the ELBO weight; UNVERIFIED handling, math.md 4.3). ``m(x)`` is the
autoencoder's encoder output (``tanh`` of the standardised network output by default, math.md 4.3).
The network ``h^`` is one of four parameterisations of the drift (``parameterisation``;
:mod:`.parameterisations`): InterpFlow (the default, ``h = (h^ - sqrt(t) z)/sqrt(1-t)``), OrigFlow,
Denoising or NoisePred, each with its target ``T`` (math.md 4.3). The **noise head** ``eps^ = E[eps | z_t]``
is a second output of the same network, regressed on ``eps``; it gives the score for any prior,
``grad log p_t = -eps^ / (sigma sqrt(t(1-t)))`` (eq. 21, math.md 4.5), so every sampler, the ODE
included, works with any prior. It is trained when the prior is not ``N(0, I)`` (``noise_head``
left out) or when asked (``noise_head = true``). Gradients reach the encoder through ``z1`` when
``beta > 0``; ``stop_gradient`` detaches ``z1`` in the latent term (the two-stage baseline, math.md 4.3).

The objective is registered as kind ``"objective"``, name ``"lsi"``: ``[objective] name = "lsi"``
in a recipe, ``ig.part("objective", "lsi", beta=0.1)`` in Python; the autoencoder is the
pipeline's ``autoencoder`` part and the bridge its ``interpolant`` (``lsi_bridge``, linear).

**Relation to observation-space SI** (math.md 4.3, 4.7): the bridge is the SI interpolant
``alpha = 1 - t``, ``beta = t``, ``gamma = sigma sqrt(t(1-t))`` and, since
``T - h^ = sqrt(1-t) (h_phi - h)``, the latent term is ``(1-t)/2 ||h - h_phi||^2`` (for any
parameterisation ``||h - h_phi||^2 / (2 J^2)``, :mod:`.parameterisations`) with the bridge drift ``h_phi = (z1 - z_t)/(1-t)``, which is exactly SI's regression target of
``b + eps s`` with ``eps = sigma^2/2`` (velocity target ``alpha' x0 + beta' x1 + gamma' z`` plus
``sigma^2/2`` times the score target ``-z/gamma``). So ``h`` learns the forward-SDE drift
``b + (sigma^2/2) s`` of SI (math.md 1.3); with a ``N(0, I)`` prior the score is
``s = (t h - z)/(1 - t + sigma^2 t)`` (math.md 4.5), with the noise head ``s = -eps^/gamma`` for any
prior, and ``b = h - (sigma^2/2) s``: that is how the bridge's ``convert`` gives SI's samplers a velocity
and a score from the network's outputs (:meth:`.bridge.LSIBridge.convert`).

Sampling (math.md 4.5) draws ``z0`` from the prior, integrates the latent SDE family and runs the
decoder once; the encoder is never run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import attrs
import torch
from torch import Tensor, nn

from interpgen.fields import ModelField, prediction_heads
from interpgen.protocols import Batch
from interpgen.tensors import drop_labels
from interpgen.validators import nonnegative_float, nonnegative_int, one_of, positive_float, unit_interval_open_right

from . import parameterisations
from .parameterisations import PARAMETERISATIONS

ENCODER_TRAINING: tuple[str, ...] = ("joint", "frozen", "pretrain_then_freeze")
WEIGHTINGS: tuple[str, ...] = ("constant", "exact")
#: Samplers keep this far from a singular end (the drift at ``t = 1``; ``t = 0`` for NoisePred and the
#: noise head's score) unless ``t_eps`` is larger.
EDGE = 1e-3


def _below_half(_: Any, attribute: attrs.Attribute, value: float) -> None:
    if not value < 0.5:
        raise ValueError(f"{attribute.name} must be < 0.5, got {value!r}")


def lsi_times(num: int, c: float, *, t_eps: float = 0.0, t_min: float = 0.0, generator: torch.Generator | None = None,
              device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """Training times ``t = 1 - (1 - s)^c`` with ``s ~ U[0, 1)`` (math.md 4.3), kept in ``[t_min, 1 - t_eps]``.
    ``c = 1`` is uniform; the time-``t`` density is ``(1-t)^(1/c - 1) / c``."""
    s = torch.rand(num, generator=generator, device=device, dtype=dtype)
    t = 1.0 - (1.0 - s) ** c
    if t_eps > 0:
        t = t.clamp(max=1.0 - t_eps)
    return t.clamp(min=t_min) if t_min > 0 else t


def interpflow_target(z0: Tensor, z1: Tensor, eps: Tensor, zt: Tensor, t: Tensor, sigma: float) -> Tensor:
    """``T = -sigma sqrt(t) eps + sqrt(1-t) (z1 - z0) + sqrt(t) z_t`` (math.md 4.3): the bounded
    regression target ``sqrt(1-t) h_phi + sqrt(t) z_t`` of the linear bridge; ``z1 - z0`` at
    ``t = 0`` and ``z1 - sigma eps`` at ``t = 1``."""
    return parameterisations.target("interpflow", z0, z1, eps, zt, t, sigma)


def require_linear_bridge(bridge: Any) -> None:
    """The parameterisations are derived for ``kappa = t``, ``nu = 1 - t`` (math.md 4.3)."""
    if getattr(bridge, "schedule", None) != "linear" or not hasattr(bridge, "x1_from_drift"):
        raise ValueError(
            "the lsi objective's parameterisations (InterpFlow and the others) are derived for the linear bridge "
            "kappa = t, nu = 1 - t (math.md 4.3): use interpolant = {name = \"lsi_bridge\", "
            f"schedule = \"linear\"}}, got {type(bridge).__name__}"
            + (f" with schedule {bridge.schedule!r}" if hasattr(bridge, "schedule") else ""))


def lsi_latent_loss(network: Callable[..., Tensor], bridge: Any, prior: Any, coupling: Any, z1: Tensor,
                    labels: Tensor | None, config: LSIObjective, *, generator: torch.Generator | None = None,
                    num_classes: int | None = None) -> Tensor:
    """``(1/2) E[w(t) mean ||T - h^(z_t, t)||^2 + w_eps mean ||eps^ - eps||^2]`` over a batch of latents
    ``z1`` (math.md 4.4), ``T`` the target of ``config.parameterisation``, the second term with the noise head.

    Draws, in this order from ``generator``: ``z0 ~ prior`` (then paired with ``z1`` by the
    coupling), the dropped labels (if ``label_dropout > 0``), ``s`` for the times, ``eps``."""
    batch = z1.shape[0]
    z0 = prior.sample(batch, tuple(z1.shape[1:]), generator=generator, device=z1.device, dtype=z1.dtype)
    z0, z1 = coupling.pair(z0, z1, labels)
    if labels is not None and config.label_dropout > 0:
        if num_classes is None:
            raise ValueError("objective.label_dropout needs labelled data with a known number of classes")
        labels = drop_labels(labels, config.label_dropout, num_classes, generator=generator)
    name, exact = config.parameterisation, config.weighting == "exact"
    t_min = config.t_eps if (exact and parameterisations.singular_at_zero(name)) else 0.0
    t = lsi_times(batch, config.time_change_c, t_eps=config.t_eps, t_min=t_min, generator=generator,
                  device=z1.device, dtype=z1.dtype)
    eps = torch.randn(z1.shape, generator=generator, device=z1.device, dtype=z1.dtype)
    zt = bridge.interpolate(z0, z1, eps, t)
    target = parameterisations.target(name, z0, z1, eps, zt, t, bridge.sigma)
    out = network(zt, t, labels) if labels is not None else network(zt, t)
    heads = prediction_heads(out, config.predictions, z1.shape[1])
    per_sample = (heads[0] - target).pow(2).reshape(batch, -1).mean(dim=1)
    if exact:
        per_sample = per_sample * parameterisations.exact_weight(name, t, bridge.sigma)
    if config.noise_head:
        per_sample = per_sample + config.noise_weight * (heads[1] - eps).pow(2).reshape(batch, -1).mean(dim=1)
    return 0.5 * per_sample.mean()


@attrs.frozen(kw_only=True)
class LSIObjective:
    """LSI training: ``L = -w_rec log p(x | z1) / n_x + beta * latent term`` (math.md 4.4).

    Both terms are averages over dimensions (the reconstruction over the ``n_x`` data dimensions,
    the latent term over the latent dimensions, as the observation-space SI loss is), so ``beta``
    does not depend on the image size.
    """

    pairs_ahead: ClassVar[bool] = False  # the latent pairs need this step's encoder

    #: Weight of the latent interpolant term (the KL part of the ELBO; math.md 4.3 "practice").
    beta: float = attrs.field(default=0.1, validator=nonnegative_float)
    #: Weight of the reconstruction term ``-log p(x | z1)`` (0 drops it).
    reconstruction_weight: float = attrs.field(default=1.0, validator=nonnegative_float)
    #: ``joint``: encoder, decoder and latent model trained together; ``frozen``: the autoencoder
    #: is never trained (e.g. ``pretrained``); ``pretrain_then_freeze``: the first
    #: ``pretrain_steps`` steps train the autoencoder on reconstruction alone, then it is frozen
    #: and the latent model is trained.
    encoder_training: str = attrs.field(default="joint", validator=one_of(*ENCODER_TRAINING))
    #: Steps of autoencoder-only training for ``pretrain_then_freeze``.
    pretrain_steps: int = attrs.field(default=0, validator=nonnegative_int)
    #: Stop gradients through ``z1`` inside the latent term (the two-stage, ``beta -> 0`` baseline:
    #: the encoder then learns from the reconstruction only).
    stop_gradient: bool = False
    #: ``c`` of the time change ``t = 1 - (1 - s)^c``, ``s ~ U[0, 1)``; 1 is uniform ``t``.
    time_change_c: float = attrs.field(default=1.0, validator=positive_float)
    #: ``constant``: ``w(t) = 1`` (reported practice); ``exact``: the ELBO weight ``J^2 / sigma^2``
    #: (``1 / (sigma^2 (1 - t))`` for InterpFlow; not integrable at ``t = 1``: math.md 4.3 marks its
    #: handling UNVERIFIED).
    weighting: str = attrs.field(default="constant", validator=one_of(*WEIGHTINGS))
    #: Training times stay in ``[0, 1 - t_eps]`` (``[t_eps, 1 - t_eps]`` for NoisePred with ``exact``).
    t_eps: float = attrs.field(default=0.0, validator=[nonnegative_float, _below_half])
    #: Per-sample probability of training on the null class (classifier-free guidance).
    label_dropout: float = attrs.field(default=0.0, validator=unit_interval_open_right)
    #: What the network outputs (math.md 4.3, :mod:`.parameterisations`): ``interpflow`` (the paper's
    #: choice), ``origflow``, ``denoising`` (``E[z1 | z_t]``) or ``noisepred`` (``E[z0' | z_t]``).
    parameterisation: str = attrs.field(default="interpflow", validator=one_of(*PARAMETERISATIONS))
    #: Train the noise head ``E[eps | z_t]`` (a second output) for the score of eq. 21: left out, it is
    #: trained exactly when the prior is not ``N(0, I)`` (the pipeline decides when it builds the objective).
    noise_head: bool | None = attrs.field(default=None, validator=attrs.validators.optional(
        attrs.validators.instance_of(bool)))
    #: Weight of the noise head's regression ``mean ||eps^ - eps||^2`` inside the latent term.
    noise_weight: float = attrs.field(default=1.0, validator=positive_float)

    def __attrs_post_init__(self) -> None:
        if self.encoder_training == "pretrain_then_freeze" and self.pretrain_steps < 1:
            raise ValueError("encoder_training = 'pretrain_then_freeze' needs pretrain_steps >= 1, "
                             f"got {self.pretrain_steps}")
        if self.weighting == "exact" and self.t_eps <= 0:
            raise ValueError("weighting = 'exact' (w = 1/(sigma^2 (1 - t))) needs t_eps > 0 to keep the "
                             "weight finite")
        if self.beta == 0 and not self.stop_gradient:
            raise ValueError("beta = 0 leaves the latent model untrained; for the two-stage (beta -> 0) "
                             "baseline set stop_gradient = true instead")

    @property
    def heads(self) -> int:
        """Outputs of the network, stacked on dimension 1: the parameterisation's, and the noise head's."""
        return 2 if self.noise_head else 1

    @property
    def predictions(self) -> tuple[str, ...]:
        return (self.parameterisation, "noise") if self.noise_head else (self.parameterisation,)

    @property
    def trains_autoencoder(self) -> bool:
        return self.encoder_training != "frozen"

    @property
    def unused_parameters(self) -> bool:
        """``pretrain_then_freeze`` trains only the autoencoder, then only the latent network."""
        return self.encoder_training == "pretrain_then_freeze"

    def resolve(self, interpolant: Any) -> LSIObjective:
        require_linear_bridge(interpolant)
        return self

    def setup(self, pipe: Any) -> None:
        """Check the autoencoder fits the training mode, and freeze it for ``frozen``. A prior that
        follows the encoder (``attach_encoder``, e.g. ``encoded_mixture``) is handed the encoder and the data."""
        require_linear_bridge(pipe.interpolant)
        ae = pipe.autoencoder
        if bool(getattr(ae, "frozen", False)) and self.encoder_training != "frozen":
            raise ValueError(f"the autoencoder is frozen (pretrained), but objective.encoder_training is "
                             f"{self.encoder_training!r}: set it to 'frozen'")
        if self.encoder_training == "frozen" and isinstance(ae, nn.Module):
            ae.requires_grad_(False)
        attach = getattr(pipe.prior, "attach_encoder", None)
        if callable(attach):
            attach(encoder_means(ae), pipe.data)

    def autoencoder_trains_at(self, step: int) -> bool:
        return self.encoder_training == "joint" or (
            self.encoder_training == "pretrain_then_freeze" and step < self.pretrain_steps)

    def loss(self, pipe: Any, batch: Batch, *, generator: torch.Generator | None = None,
             network: Any = None) -> Tensor:
        """The LSI objective on one batch (module docstring).

        ``joint``: reconstruction + ``beta`` latent term, gradients to the encoder through ``z1``
        unless ``stop_gradient``. ``frozen``: the latent term on latents of the fixed autoencoder.
        ``pretrain_then_freeze``: reconstruction only while ``step < pretrain_steps``, then as
        ``frozen``. Draw order: the encoder noise ``xi``, then :func:`lsi_latent_loss`'s draws."""
        net = network if network is not None else pipe.network
        x = batch.x1
        trains_ae = self.autoencoder_trains_at(pipe.step)
        with torch.set_grad_enabled(trains_ae and torch.is_grad_enabled()):
            mean, scale = pipe.autoencoder.encode(x)
            xi = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
            z1 = mean + scale * xi
        total = x.new_zeros(())
        if trains_ae and self.reconstruction_weight > 0:
            nll = -pipe.autoencoder.reconstruction_log_prob(x, z1) / x[0].numel()
            total = total + self.reconstruction_weight * nll.mean()
        if self.encoder_training == "pretrain_then_freeze" and pipe.step < self.pretrain_steps:
            return total
        latent_z1 = z1 if (trains_ae and not self.stop_gradient) else z1.detach()
        term = lsi_latent_loss(net, pipe.interpolant, pipe.prior, pipe.coupling, latent_z1, batch.labels, self,
                               generator=generator, num_classes=pipe.data.num_classes)
        return total + self.beta * term

    def field(self, pipe: Any, network: Any, *, labels: Tensor | None = None) -> ModelField:
        """The network on the bridge (math.md 4.3, 4.5): ``drift`` and ``x1`` for any prior; ``score`` and
        ``velocity`` from the noise head (any prior) or for a standard Gaussian prior. ``h`` is singular at
        ``t = 1``, so samplers stop at ``1 - max(t_eps, 1e-3)``; the noise head's score and NoisePred's
        drift are singular at ``t = 0``, so with either samplers start at ``max(t_eps, 1e-3)``. Guidance
        ``out_w = out_null + w (out_y - out_null)`` on every output guides drift, score and velocity alike
        (all affine in the outputs); the paper's ``(1 + lambda) h_y - lambda h_null`` is ``w = 1 + lambda``."""
        edge = max(float(self.t_eps), EDGE)
        start = edge if (self.noise_head or parameterisations.singular_at_zero(self.parameterisation)) else 0.0
        return ModelField(network, pipe.interpolant, self.predictions,
                          gaussian_base=bool(getattr(pipe.prior, "standard_normal", False)),
                          time_range=(start, 1.0 - edge), labels=labels)


def build_lsi(params: LSIObjective, *, prior: Any = None, **context: Any) -> LSIObjective:
    """The objective for a pipeline whose prior is ``prior``: ``noise_head`` left out becomes ``true``
    unless the prior is exactly ``N(0, I)`` (math.md 4.5: only then does the drift give the score)."""
    if params.noise_head is None and prior is not None:
        return attrs.evolve(params, noise_head=not bool(getattr(prior, "standard_normal", False)))
    return params


def encoder_means(autoencoder: Any) -> Callable[[Tensor], Tensor]:
    """``x -> m(x)``, the encoder's output without its noise, on the autoencoder's device."""
    def encode(x: Tensor) -> Tensor:
        weight = next(autoencoder.parameters(), None) if isinstance(autoencoder, nn.Module) else None
        return autoencoder.encode(x.to(weight.device) if weight is not None else x)[0]

    return encode


def save_autoencoder(pipe: Any, path: str | Path) -> Path:
    """Write a pipeline's autoencoder state (what the ``pretrained`` autoencoder loads)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"autoencoder": pipe.autoencoder.state_dict()}, path)
    return path
