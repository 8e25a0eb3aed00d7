"""The contracts every part of interpgen follows (conventions: docs/math.md section 0).

Time runs over ``[0, 1]``, the prior ``x0 ~ rho0`` at ``t = 0`` and the data ``x1 ~ rho1`` at
``t = 1``; ``x`` is a batch ``(B, *event_shape)``, ``t`` and schedule values have shape ``(B,)``
(broadcast with :func:`interpgen.tensors.expand_like`); ``x_t = alpha(t) x0 + beta(t) x1 + gamma(t) z``.
Every protocol is ``runtime_checkable``: the user's own objects work wherever a registered part does.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor

#: What a network can be trained to predict (math.md 1.2, 1.5).
#: ``velocity``  b(t, x) = E[d/dt x_t | x_t = x]
#: ``score``     s(t, x) = grad log rho_t(x)
#: ``noise``     eta_z = E[z | x_t] for two-sided interpolants; for one-sided ones (gamma == 0,
#:               Gaussian base) the base sample *is* the noise and ``noise`` means E[x0 | x_t]
#: ``x0``        eta_0 = E[x0 | x_t]
#: ``x1``        eta_1 = E[x1 | x_t]
PREDICTIONS: tuple[str, ...] = ("velocity", "score", "noise", "x0", "x1")


class ConversionError(ValueError):
    """A prediction cannot be turned into the one asked for (math.md 1.5 says when)."""


class CheckpointError(RuntimeError):
    """A run directory or checkpoint is missing, damaged, or of another model."""


@runtime_checkable
class Interpolant(Protocol):
    """``x_t = alpha(t) x0 + beta(t) x1 + gamma(t) z`` (math.md 1.1), in closed form with derivatives;
    ``gamma_gamma_dot`` stays finite where ``gamma_dot`` does not (``gamma = sqrt(a t (1-t))``)."""

    #: True when gamma is identically zero (the SI "one-sided" case needs a Gaussian base too).
    deterministic: bool

    def alpha(self, t: Tensor) -> Tensor: ...
    def beta(self, t: Tensor) -> Tensor: ...
    def gamma(self, t: Tensor) -> Tensor: ...
    def alpha_dot(self, t: Tensor) -> Tensor: ...
    def beta_dot(self, t: Tensor) -> Tensor: ...
    def gamma_dot(self, t: Tensor) -> Tensor: ...
    def gamma_gamma_dot(self, t: Tensor) -> Tensor: ...

    def interpolate(self, x0: Tensor, x1: Tensor, z: Tensor, t: Tensor) -> Tensor:
        """The sample ``x_t`` (shape of ``x1``)."""
        ...

    def target(self, prediction: str, x0: Tensor, x1: Tensor, z: Tensor, t: Tensor,
               *, gaussian_base: bool) -> Tensor:
        """The regression target whose conditional mean given ``x_t`` is ``prediction``
        (math.md 1.4, MSE form)."""
        ...

    def convert(self, have: Mapping[str, Tensor], x: Tensor, t: Tensor, want: str,
                *, gaussian_base: bool) -> Tensor:
        """Turn the available predictions ``have`` at ``(x, t)`` into ``want`` (math.md 1.2,
        1.5); raises :class:`ConversionError` when the table has no formula."""
        ...

    def default_t_eps(self, prediction: str) -> float:
        """Distance kept from the ends when training or sampling with ``prediction``
        (0.0 where every formula is regular)."""
        ...


@runtime_checkable
class Prior(Protocol):
    """The base rho0 of x0: ``sample`` gives ``(num, *shape)``, ``log_prob`` ``(B,)`` (or raises
    NotImplementedError without a density). ``standard_normal`` only for exactly N(0, I), which the
    one-sided conversions of math.md 1.5 need. A learnable prior is a ``torch.nn.Module`` and trains."""

    standard_normal: bool

    def sample(self, num: int, shape: tuple[int, ...], *, generator: torch.Generator | None = None,
               device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Tensor: ...

    def log_prob(self, x: Tensor) -> Tensor: ...


@runtime_checkable
class Coupling(Protocol):
    """Which x0 goes with which x1 in a batch: returns a pair ``(x0, x1)`` of equal batch size
    whose marginals are the prior's and the data's (math.md 5).

    ``x1`` comes back unchanged and in the same order, so ``labels`` (which belong to ``x1``)
    still apply; a coupling reorders or resamples ``x0`` only. A coupling whose ``pair`` is slow
    and needs nothing from the step (a CPU solver) sets the attribute ``pairs_ahead = True``: the
    trainer then pairs the next batch in a background thread while the current one trains."""

    def pair(self, x0: Tensor, x1: Tensor, labels: Tensor | None = None) -> tuple[Tensor, Tensor]: ...


@runtime_checkable
class Autoencoder(Protocol):
    """Maps data to latents and back. ``encode`` returns ``(mean, noise_scale)``; the latent
    is ``mean + noise_scale * xi``. ``decode`` maps a latent to data space.
    ``reconstruction_log_prob(x, z)`` is ``log p(x | z)`` per sample, shape ``(B,)``."""

    def latent_shape(self, data_shape: tuple[int, ...]) -> tuple[int, ...]: ...
    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]: ...
    def decode(self, z: Tensor) -> Tensor: ...
    def reconstruction_log_prob(self, x: Tensor, z: Tensor) -> Tensor: ...


@runtime_checkable
class Field(Protocol):
    """A trained model seen through its interpolant: any prediction at ``(x, t)``.

    ``evaluate`` runs the network once and returns the asked predictions in the order asked;
    ``nfe`` counts network evaluations so samplers can report what they used.
    """

    interpolant: Interpolant
    nfe: int

    def available(self) -> tuple[str, ...]:
        """Predictions this field can produce (e.g. no ``score`` for a velocity model on a
        non-Gaussian base with gamma == 0)."""
        ...

    def evaluate(self, x: Tensor, t: Tensor, wants: tuple[str, ...]) -> tuple[Tensor, ...]: ...

    def time_range(self, stochastic: bool) -> tuple[float, float]:
        """``(t_start, t_end)`` to integrate over so that no singular formula is evaluated."""
        ...


class SampleResult(NamedTuple):
    """What a sampler returns: the samples at t_end, the network evaluations used, and (when
    asked for) the states on the time grid, shape ``(K + 1, B, *event)``, with that grid ``(K + 1,)``."""

    x: Tensor
    nfe: int
    trajectory: Tensor | None = None
    times: Tensor | None = None


@runtime_checkable
class OdeSolver(Protocol):
    """An ODE sampler that also integrates any right-hand side (used for likelihoods):
    ``integrate(fn, y, t_start, t_end)`` solves ``dy/dt = fn(t, y)`` (``t`` of shape ``(B,)``)
    from ``t_start`` to ``t_end`` (which may be smaller: backward in time) and returns
    ``(y_end, number_of_fn_calls)``."""

    def integrate(self, fn: Any, y: Tensor, t_start: float, t_end: float) -> tuple[Tensor, int]: ...


@runtime_checkable
class Sampler(Protocol):
    """Integrates from ``x0`` at t_start to t_end with a fixed budget (adaptive solvers cap it).

    ``stochastic`` is True for SDE samplers, which need ``score`` from the field (with a
    diffusion eps(t) > 0). ``steps`` is the number of solver steps; the network evaluations
    actually used are in :class:`SampleResult`.
    """

    stochastic: bool

    def sample(self, field: Field, x0: Tensor, *, generator: torch.Generator | None = None,
               return_trajectory: bool = False) -> SampleResult: ...


@runtime_checkable
class Diffusion(Protocol):
    """The SDE diffusion coefficient eps(t) >= 0 (math.md 1.3, 2.2), chosen at sampling time."""

    def __call__(self, t: Tensor, interpolant: Interpolant) -> Tensor: ...


@runtime_checkable
class Gamma(Protocol):
    """The latent-noise schedule gamma(t) with gamma(0) = gamma(1) = 0 (math.md 1.8)."""

    def gamma(self, t: Tensor) -> Tensor: ...
    def gamma_dot(self, t: Tensor) -> Tensor: ...
    def gamma_gamma_dot(self, t: Tensor) -> Tensor: ...


@runtime_checkable
class DataSource(Protocol):
    """Training data in model space; ``event_shape`` is one example's shape.

    ``batches`` yields ``(x1, labels_or_None)`` forever (finite data reshuffled each epoch), or
    ``(x1, labels_or_None, x0)`` for paired data. With ``shard=(i, n)`` the stream is the one a single
    process sees with ``n * batch_size`` rows per batch and process ``i`` gets rows
    ``[i * batch_size, (i + 1) * batch_size)`` of each, so a run's data does not depend on ``n``.
    ``reference(n)`` gives model-space rows never trained on (fresh draws, or the held-out rows);
    finite sources may offer ``part_size(part)`` and ``take(part, index)`` (``"train"``,
    ``"heldout"``). ``data_affine()`` is ``(shift, scale)``, ``data = shift + scale * model``, or None (kept
    in checkpoints). Bounded data may set ``normalised_range = (low, high)`` (before the affine; images: ``(-1, 1)``).
    """

    event_shape: tuple[int, ...]
    num_classes: int | None

    def batches(self, batch_size: int, *, generator: torch.Generator,
                shard: tuple[int, int] = (0, 1)) -> Iterator[tuple[Tensor, ...]]: ...
    def reference(self, num: int, *, generator: torch.Generator) -> Tensor: ...
    def data_affine(self) -> tuple[Tensor, Tensor] | None: ...


class Batch(NamedTuple):
    """One batch: ``x1`` ``(B, *event)``, ``labels`` ``(B,)`` or None, the source ``x0`` of paired data,
    and ``coupled``: ``x0`` is already drawn and paired (the trainer pairs ahead), the loss pairs no more."""

    x1: Tensor
    labels: Tensor | None = None
    x0: Tensor | None = None
    coupled: bool = False


@runtime_checkable
class Network(Protocol):
    """A ``torch.nn.Module`` called as ``net(x, t, labels=None)``; its output has
    ``out_shape`` (several predictions are stacked along dim 1)."""

    def __call__(self, x: Tensor, t: Tensor, labels: Tensor | None = None) -> Tensor: ...


@runtime_checkable
class Objective(Protocol):
    """A training method (registry kind ``"objective"``, e.g. ``si``, ``lsi``). The pipeline builds its
    parts, then calls ``resolve(interpolant)`` (the objective with values that depend on other parts
    filled in, e.g. an endpoint epsilon), reads ``heads`` (tensors of the model's shape the network
    returns, stacked on dim 1) and calls ``setup(pipe)`` (check the parts fit, ValueError naming the
    one that does not; configure them). ``loss`` is one minibatch estimate; ``field`` reads the
    network as a :class:`Field` on model space. Optional: ``pairs_ahead = False`` (the trainer may not
    pair the next batch ahead), ``unused_parameters`` (some parameters get no gradient in some
    steps), ``trains_autoencoder``."""

    heads: int

    def resolve(self, interpolant: Interpolant) -> Objective: ...
    def setup(self, pipe: Any) -> None: ...
    def loss(self, pipe: Any, batch: Batch, *, generator: torch.Generator | None, network: Any) -> Tensor: ...
    def field(self, pipe: Any, network: Any, *, labels: Tensor | None = None) -> Field: ...


@runtime_checkable
class Trainable(Protocol):
    """What the engine (:mod:`interpgen.train`) trains: a :class:`~interpgen.pipeline.Pipeline` or any
    object with ``data`` (a :class:`DataSource`), ``step`` (optimiser steps so far), ``loss`` (a scalar;
    ``network``, when given, stands in for the first trainable module, e.g. a compiled copy),
    ``trainable_modules()`` (the network first), ``state_dict()`` / ``load_state_dict()`` (all a
    checkpoint needs but the optimiser) and ``run_files(train)`` (name -> text the run directory
    keeps, e.g. ``recipe.toml``). Optional: ``ema`` / ``init_ema()``, ``pairs_ahead()``,
    ``unused_parameters``, ``prior`` and ``coupling`` (to pair ahead)."""

    data: DataSource
    step: int

    def loss(self, batch: Batch, *, generator: torch.Generator | None = None, network: Any = None) -> Tensor: ...
    def trainable_modules(self) -> list[Any]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...
    def run_files(self, train: Any) -> dict[str, str]: ...
