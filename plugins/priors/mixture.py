"""A Gaussian-mixture prior with diagonal covariances (math.md 0 for the prior's role; the
mixture density is the one of math.md 8(b) at a single time):

    rho0(x) = sum_k w_k N(x; m_k, diag(s_k^2)),

fixed or learnable (mixture logits, means and log-stds train with the model).
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import torch
from torch import Tensor, nn

from interpgen.validators import any_int, optional_positive_int, positive_float

from . import draws
from .base import BuiltPrior
from .shapes import event_shape_of, per_feature
from .values import check_positive, nested_floats, numbers_of, optional_floats, to_float

_LOG_2PI = math.log(2.0 * math.pi)


@attrs.frozen(kw_only=True)
class GaussianMixtureParams:
    """Gaussian mixture prior with diagonal covariances, given by ``means`` (one vector, or one
    number used for every feature, per component) or, when learnable, by ``components`` with
    a seeded random start."""

    #: mixture weights, positive; normalised to sum to 1 (default: equal)
    weights: tuple[float, ...] | None = attrs.field(default=None, converter=optional_floats)
    #: one mean per component: a vector with a value per feature, or a number for all of them
    means: tuple[float | tuple[float, ...], ...] | None = attrs.field(default=None, converter=nested_floats)
    #: one std per component: a vector, or a number for all features (default: 1)
    stds: tuple[float | tuple[float, ...], ...] | None = attrs.field(default=None, converter=nested_floats)
    #: number of components when ``means`` is not given (learnable only): means start at
    #: ``init_scale * N(0, I)`` drawn with ``seed``, stds at 1, weights equal
    components: int | None = attrs.field(default=None, validator=optional_positive_int)
    #: learn the mixture logits, means and log-stds with the model
    learnable: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    #: seed of the random start used with ``components``
    seed: int = attrs.field(default=0, validator=any_int)
    #: spread of the random start of the means used with ``components``
    init_scale: float = attrs.field(default=1.0, converter=to_float, validator=positive_float)

    def __attrs_post_init__(self) -> None:
        if (self.means is None) == (self.components is None):
            raise ValueError("give exactly one of means (the components' centres) or components (their "
                             "number, for a learnable mixture started at random)")
        if self.components is not None and not self.learnable:
            raise ValueError("components without means needs learnable = true (a fixed mixture needs "
                             "its means)")
        if self.means is not None:
            if not isinstance(self.means, tuple) or not self.means:
                raise ValueError(f"means must be a non-empty list (one entry per component), got {self.means!r}")
        k = self.num_components
        if self.means is not None:
            for i, m in enumerate(self.means):
                numbers_of(f"means[{i}]", m)
            _same_lengths("means", self.means)
        if self.weights is not None:
            _one_per_component("weights", self.weights, k)
            check_positive("weights", self.weights)
        if self.stds is not None:
            _one_per_component("stds", self.stds, k)
            for i, s in enumerate(self.stds):
                check_positive(f"stds[{i}]", s)
            _same_lengths("means and stds", self.stds, self.means or ())

    @property
    def num_components(self) -> int:
        return len(self.means) if self.means is not None else int(self.components)  # type: ignore[arg-type]


def _one_per_component(name: str, value: Any, k: int) -> None:
    if not isinstance(value, tuple):
        raise TypeError(f"{name} must be a list with one entry per component, got {value!r}")
    if len(value) != k:
        raise ValueError(f"{name} has {len(value)} entries but there are {k} components")


def _same_lengths(name: str, entries: tuple[Any, ...], others: tuple[Any, ...] = ()) -> None:
    """Vector entries (of ``entries`` and of ``others``, the means) must share one length."""
    lengths = {len(v) for v in (*entries, *others) if isinstance(v, tuple)}
    if len(lengths) > 1:
        found = ", ".join(str(n) for n in sorted(lengths))
        raise ValueError(f"the vectors in {name} must have one length (one value per feature), "
                         f"found lengths {found}")


def mixture_log_prob(x: Tensor, logits: Tensor, means: Tensor, log_stds: Tensor) -> Tensor:
    """``log sum_k w_k N(x; m_k, diag(s_k^2))`` with ``w = softmax(logits)``, by logsumexp.

    ``x`` is ``(B, *event)``, ``means`` and ``log_stds`` are ``(K, *event)``, ``logits`` is ``(K,)``.
    Returns ``(B,)``.
    """
    diff = (x.unsqueeze(1) - means.unsqueeze(0)) * torch.exp(-log_stds).unsqueeze(0)  # (B, K, *event)
    per_entry = -0.5 * diff.pow(2) - log_stds.unsqueeze(0) - 0.5 * _LOG_2PI
    component = per_entry.reshape(x.shape[0], means.shape[0], -1).sum(dim=2)  # (B, K)
    log_w = torch.log_softmax(logits, dim=0)
    return torch.logsumexp(component + log_w.unsqueeze(0), dim=1)


class GaussianMixturePrior(BuiltPrior):
    """rho0 = sum_k w_k N(m_k, diag(s_k^2)).

    ``sample``: draw the component k ~ Categorical(w), then x0 = m_k + s_k * xi with
    xi ~ N(0, I). The second step is a reparameterisation, so sampled x0 carries gradients to the
    means and stds; the discrete draw carries none to the weights (their gradient comes from
    ``log_prob``).
    """

    prior_name = "gmm"

    def __init__(self, weights: Tensor, means: Tensor, stds: Tensor, *, learnable: bool = False):
        super().__init__(tuple(means.shape[1:]))
        k = means.shape[0]
        if tuple(weights.shape) != (k,) or tuple(stds.shape) != tuple(means.shape):
            raise ValueError(f"prior {self.prior_name!r}: weights must have shape ({k},) and stds "
                             f"{tuple(means.shape)}, got {tuple(weights.shape)} and {tuple(stds.shape)}")
        if not bool((weights > 0).all()) or not bool((stds > 0).all()):
            raise ValueError(f"prior {self.prior_name!r}: weights and stds must be > 0")
        logits = torch.log(weights / weights.sum())
        log_stds = torch.log(stds)
        self.learnable = learnable
        if learnable:
            self.logits = nn.Parameter(logits.clone())
            self.means = nn.Parameter(means.clone())
            self.log_stds = nn.Parameter(log_stds.clone())
        else:
            self.register_buffer("logits", logits.clone(), persistent=False)
            self.register_buffer("means", means.clone(), persistent=False)
            self.register_buffer("log_stds", log_stds.clone(), persistent=False)
            self.standard_normal = k == 1 and bool((means == 0).all()) and bool((stds == 1).all())

    @property
    def weights(self) -> Tensor:
        return torch.softmax(self.logits, dim=0)

    @property
    def stds(self) -> Tensor:
        return torch.exp(self.log_stds)

    def sample(self, num: int, shape: tuple[int, ...], *, generator: torch.Generator | None = None,
               device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Tensor:
        shape = self._check_request(num, shape)
        device, dtype = self._placement(device, dtype)
        k = draws.categorical(self.weights, num, generator=generator, device=device)
        xi = draws.normal((num, *shape), generator=generator, device=device, dtype=dtype)
        means = self.means.to(device=device, dtype=dtype)
        stds = torch.exp(self.log_stds.to(device=device, dtype=dtype))
        return means[k] + stds[k] * xi

    def log_prob(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return mixture_log_prob(x, self.logits.to(device=x.device, dtype=x.dtype),
                                self.means.to(device=x.device, dtype=x.dtype),
                                self.log_stds.to(device=x.device, dtype=x.dtype))

    def extra_repr(self) -> str:
        return f"event_shape={self.event_shape}, components={self.means.shape[0]}, learnable={self.learnable}"


def build_gmm(params: GaussianMixtureParams, *, event_shape: tuple[int, ...], **context: Any) -> GaussianMixturePrior:
    """Build the mixture, checking every mean and std against ``event_shape``."""
    name = GaussianMixturePrior.prior_name
    shape = event_shape_of(event_shape, name)
    k = params.num_components
    if params.means is not None:
        means = torch.stack([per_feature(m, field=f"means[{i}]", event_shape=shape, prior=name)
                             for i, m in enumerate(params.means)])
    else:
        gen = torch.Generator().manual_seed(params.seed)
        means = params.init_scale * torch.randn((k, *shape), generator=gen, dtype=torch.float64)
        means = means.to(torch.get_default_dtype())
    stds_given = params.stds if params.stds is not None else (1.0,) * k
    stds = torch.stack([per_feature(s, field=f"stds[{i}]", event_shape=shape, prior=name)
                        for i, s in enumerate(stds_given)])
    weights_given = params.weights if params.weights is not None else (1.0,) * k
    weights = torch.tensor(weights_given, dtype=torch.get_default_dtype())
    return GaussianMixturePrior(weights, means, stds, learnable=params.learnable)
