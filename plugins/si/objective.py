"""The ``si`` objective: the MSE form of the stochastic-interpolant losses (docs/math.md 1.4).

For each prediction ``p`` the network output ``f(x_t, t)`` is regressed on the interpolant's
target ``T_p(x0, x1, z, t)``, whose conditional mean given ``x_t`` is the field ``p``:

    L = E_{t, (x0, x1) ~ nu, z} || f_p(x_t, t) - T_p ||^2,   x_t = alpha x0 + beta x1 + gamma z,

averaged over the event dimensions. The value logged for a ``score`` prediction is the paper's
form of the same loss (:func:`regression_loss`; math.md 1.4), which stays finite near the ends
where the MSE carries an infinite constant; the gradient is the MSE's. Antithetic pairs (math.md 1.4, implementation notes) evaluate
the loss at ``z`` and ``-z`` and average, cancelling the ``gamma' z`` and ``z / gamma`` variance near
the ends. Times are uniform on ``[t_eps, 1 - t_eps]`` or logit-normal (sigmoid of a normal)
squeezed into the same interval.

With an autoencoder other than the identity the model lives in its latent space: ``x1`` is the
frozen encoder's latent ``mu(x) + c xi`` (latent diffusion on a fixed autoencoder; training the
autoencoder too is the ``lsi`` objective's business).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import attrs
import torch
from torch import Tensor

from interpgen.fields import ModelField, prediction_heads
from interpgen.protocols import PREDICTIONS, Batch
from interpgen.tensors import drop_labels
from interpgen.validators import nonnegative_float, one_of, positive_float, unit_interval_open_right

TIME_SAMPLINGS = ("uniform", "logit_normal")


def parse_predictions(text: str) -> tuple[str, ...]:
    """``"velocity"`` -> ``("velocity",)``; ``"velocity+score"`` -> two heads of one network."""
    names = tuple(p.strip() for p in text.split("+"))
    bad = [n for n in names if n not in PREDICTIONS]
    if bad or not names or len(set(names)) != len(names):
        raise ValueError(
            f"prediction must be one of {', '.join(PREDICTIONS)} or two joined by '+' "
            f"(e.g. 'velocity+score'); got {text!r}")
    return names


def _check_prediction(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    parse_predictions(value)


def sample_times(objective: SIObjective, num: int, *, generator: torch.Generator | None,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """Training times in ``[t_eps, 1 - t_eps]`` from the objective's time distribution."""
    if objective.time_sampling == "uniform":
        u = torch.rand(num, generator=generator, device=device, dtype=dtype)
    else:  # logit_normal: t = sigmoid(m + s n)
        n = torch.randn(num, generator=generator, device=device, dtype=dtype)
        u = torch.sigmoid(objective.logit_normal_mean + objective.logit_normal_std * n)
    eps = float(objective.t_eps or 0.0)
    return eps + (1.0 - 2.0 * eps) * u


@attrs.frozen(kw_only=True)
class SIObjective:
    """Stochastic-interpolant regression (docs/math.md 1.4).

    ``prediction`` names the regression target (or two, ``"velocity+score"``, for a two-sided
    interpolant on a non-Gaussian base). ``t_eps`` keeps training times in
    ``[t_eps, 1 - t_eps]``; left out, it is the interpolant's default for the prediction.
    ``label_dropout`` replaces each label by the null class with that probability, so one network
    learns the conditional and the unconditional field (classifier-free guidance).
    """

    pairs_ahead: ClassVar[bool] = True

    prediction: str = attrs.field(default="velocity", validator=_check_prediction)
    time_sampling: str = attrs.field(default="logit_normal", validator=one_of(*TIME_SAMPLINGS))
    logit_normal_mean: float = 0.0
    logit_normal_std: float = attrs.field(default=1.0, validator=positive_float)
    antithetic: bool = False
    label_dropout: float = attrs.field(default=0.0, validator=unit_interval_open_right)
    t_eps: float | None = attrs.field(default=None, validator=attrs.validators.optional(nonnegative_float))

    @property
    def predictions(self) -> tuple[str, ...]:
        return parse_predictions(self.prediction)

    @property
    def heads(self) -> int:
        return len(self.predictions)

    def resolve(self, interpolant: Any) -> SIObjective:
        """Fill ``t_eps`` with the interpolant's default for the predictions (the largest)."""
        t_eps = self.t_eps
        if t_eps is None:
            t_eps = max(float(interpolant.default_t_eps(p)) for p in self.predictions)
        if not t_eps < 0.5:
            raise ValueError(f"t_eps must be < 0.5, got {t_eps}")
        return attrs.evolve(self, t_eps=t_eps)

    def setup(self, pipe: Any) -> None:
        """Every target must exist (e.g. no score target without a Gaussian base)."""
        probe = torch.zeros(1, *pipe.latent_shape)
        gaussian = bool(getattr(pipe.prior, "standard_normal", False))
        for name in self.predictions:
            pipe.interpolant.target(name, probe, probe, probe, torch.full((1,), 0.5), gaussian_base=gaussian)

    def field(self, pipe: Any, network: Any, *, labels: Tensor | None = None) -> ModelField:
        return ModelField(network, pipe.interpolant, self.predictions,
                          gaussian_base=bool(getattr(pipe.prior, "standard_normal", False)),
                          t_eps=float(self.t_eps or 0.0), labels=labels)

    def loss(self, pipe: Any, batch: Batch, *, generator: torch.Generator | None = None,
             network: Any = None) -> Tensor:
        """One minibatch estimate of the loss above (a scalar).

        ``x0`` is the data's own source sample for paired data; otherwise it is drawn from the
        prior; ``batch.coupled`` says it is already paired by the coupling (the trainer pairs
        ahead). Draw order: the encoder noise (non-identity autoencoder only), then
        :func:`interpolant_loss`'s: ``x0``, the dropped labels, ``t``, ``z``."""
        x1 = batch.x1
        if not getattr(pipe.autoencoder, "is_identity", False):
            with torch.no_grad():
                mean, scale = pipe.autoencoder.encode(x1)
                xi = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
                x1 = mean + scale * xi
        return interpolant_loss(network if network is not None else pipe.network, pipe.interpolant, pipe.prior,
                                pipe.coupling, self, x1, batch.labels, x0=batch.x0, coupled=batch.coupled,
                                num_classes=pipe.data.num_classes, generator=generator)


def interpolant_loss(network: Callable[..., Tensor], interpolant: Any, prior: Any, coupling: Any,
                     objective: SIObjective, x1: Tensor, labels: Tensor | None = None, *,
                     x0: Tensor | None = None, coupled: bool = False, num_classes: int | None = None,
                     generator: torch.Generator | None = None) -> Tensor:
    """One minibatch estimate of the loss of the module docstring (a scalar), on model-space ``x1``.

    ``x0`` is the data's own source sample for paired data; otherwise it is drawn from the
    prior; ``coupled`` says it is already paired by the coupling. With ``label_dropout > 0``
    labels are dropped to the null class ``num_classes`` per sample before the network sees them."""
    n = x1.shape[0]
    if x0 is None:
        x0 = prior.sample(n, tuple(x1.shape[1:]), generator=generator, device=x1.device, dtype=x1.dtype)
    elif x0.shape != x1.shape:
        raise ValueError(f"paired data: x0 has shape {tuple(x0.shape)} but x1 has {tuple(x1.shape)}")
    if not coupled:
        x0, x1 = coupling.pair(x0, x1, labels)
    if labels is not None and objective.label_dropout > 0:
        if num_classes is None:
            raise ValueError("objective.label_dropout needs labelled data with a known number of classes")
        labels = drop_labels(labels, objective.label_dropout, num_classes, generator=generator)
    t = sample_times(objective, n, generator=generator, device=x1.device, dtype=x1.dtype)
    z = torch.randn(x1.shape, generator=generator, device=x1.device, dtype=x1.dtype)
    gaussian = prior.standard_normal
    signs = (1.0, -1.0) if objective.antithetic and not interpolant.deterministic else (1.0,)
    total = x1.new_zeros(())
    for sign in signs:
        zs = sign * z
        xt = interpolant.interpolate(x0, x1, zs, t)
        out = network(xt, t, labels) if labels is not None else network(xt, t)
        for name, pred in zip(objective.predictions, prediction_heads(out, objective.predictions, x1.shape[1])):
            target = interpolant.target(name, x0, x1, zs, t, gaussian_base=gaussian)
            total = total + regression_loss(name, pred, target)
    return total / len(signs)


def regression_loss(prediction: str, pred: Tensor, target: Tensor) -> Tensor:
    """``mean ||pred - target||^2`` (math.md 1.4, MSE form; mean over an example's dimensions and the
    batch), whose gradient training follows. For the ``score`` the returned *value* is the paper's
    form ``mean(pred^2 / 2 - pred . target)`` instead (math.md 1.4, "The logged value"): half the MSE
    minus ``||target||^2 / 2``, a constant free of the network that grows like ``d / gamma^2`` near the
    ends, so the logged loss stays finite there. Value and gradient are combined as
    ``paper.detach() + (mse - mse.detach())``: the value is the paper's form exactly, the gradient the MSE's."""
    n = pred.shape[0]
    mse = (pred - target).pow(2).reshape(n, -1).mean(dim=1).mean()
    if prediction != "score":
        return mse
    paper = (0.5 * pred.pow(2) - pred * target).reshape(n, -1).mean(dim=1).mean()
    return paper.detach() + (mse - mse.detach())
