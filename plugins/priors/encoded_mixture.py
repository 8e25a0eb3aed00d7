"""The LSI paper's mixture prior: one Gaussian component per encoded training image (math.md 4.3),

    p0(z) = (1/N) sum_n N(z; sg(m(x_n)), std^2 I),

with ``m`` the encoder's output (before the encoder noise), ``sg`` a stop-gradient (the means
follow the encoder as it trains, but no gradient reaches it through them) and ``std = 0.1`` in the
paper.

**How it gets the encoder and the data.** The prior is built like any other (it knows only the
latent shape); the objective that owns the autoencoder hands both over by calling
``attach_encoder(encode, data)`` from its ``setup`` (the ``lsi`` objective does). ``encode(x)`` maps
model-space data to the encoder's output; ``data`` is the pipeline's data source, which must offer
``part_size("train")`` and ``take("train", index)`` (every finite data set does). The kernel and the
other plugins know nothing of this: it is a method of this prior that an objective may call.

**Draws.** With gradients enabled (a training step) ``num`` training images are drawn uniformly and
encoded now, without gradients: an exact draw from the mixture of the current encoder. Without
gradients (sampling, likelihoods) the components come from ``means``, the encodings of all
component images, re-encoded whenever the encoder may have changed since (a training draw happened)
and before the state is saved, so checkpoints hold the means of their encoder. A pipeline loaded
from a run directory has no data: its means are the checkpoint's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs
import torch
from torch import Tensor

from interpgen.validators import any_int, optional_positive_int, positive_float

from . import draws
from .base import BuiltPrior
from .shapes import event_shape_of
from .values import to_float

_LOG_2PI = math.log(2.0 * math.pi)
#: Images encoded per encoder call when the means are rebuilt.
ENCODE_CHUNK = 256


@attrs.frozen(kw_only=True)
class EncodedMixtureParams:
    """One Gaussian component (std ``std``) per encoded training image, means under stop-gradient (the LSI
    paper's mixture prior); needs an objective that hands it the encoder and data (``lsi``)."""

    #: standard deviation of every component (0.1 in the paper)
    std: float = attrs.field(default=0.1, converter=to_float, validator=positive_float)
    #: at most this many components: a fixed random subset of the training images (left out: all)
    max_components: int | None = attrs.field(default=None, validator=optional_positive_int)
    #: seed of that subset
    seed: int = attrs.field(default=0, validator=any_int)


class EncodedMixturePrior(BuiltPrior):
    """``p0 = (1/N) sum_n N(sg(m(x_n)), std^2 I)`` over the training images ``x_n`` (module docstring)."""

    prior_name = "encoded_mixture"

    def __init__(self, event_shape: tuple[int, ...], *, std: float = 0.1, max_components: int | None = None,
                 seed: int = 0):
        super().__init__(event_shape)
        self.std, self.max_components, self.seed = float(std), max_components, int(seed)
        self.register_buffer("means", torch.zeros(0, *self.event_shape))  # persistent: saved with checkpoints
        self._encode: Callable[[Tensor], Tensor] | None = None
        self._data: Any = None
        self._rows: Tensor | None = None  # the training rows that are components
        self._stale = True

    # -- the hand-over ---------------------------------------------------------------------------
    def attach_encoder(self, encode: Callable[[Tensor], Tensor], data: Any) -> None:
        """Take the encoder (``encode(x)``: model-space data to encoder outputs) and the data source whose
        training images are the components. A source without ``take`` and ``part_size`` (a pipeline loaded
        for sampling) leaves the means to the checkpoint."""
        self._encode = encode
        if not (callable(getattr(data, "take", None)) and callable(getattr(data, "part_size", None))):
            self._data = self._rows = None
            return
        n = int(data.part_size("train"))
        rows = torch.arange(n)
        if self.max_components is not None and n > self.max_components:
            generator = torch.Generator().manual_seed(self.seed)
            rows = torch.randperm(n, generator=generator)[: self.max_components].sort().values
        self._data, self._rows, self._stale = data, rows, True

    @property
    def num_components(self) -> int:
        return int(self._rows.shape[0]) if self._rows is not None else int(self.means.shape[0])

    def _encoded(self, rows: Tensor) -> Tensor:
        x = self._data.take("train", rows)[0]
        with torch.no_grad():
            return self._encode(x).detach()  # type: ignore[misc]

    def refresh(self) -> None:
        """Re-encode every component's image into ``means`` (without gradients)."""
        if self._data is None:
            raise ValueError(f"prior {self.prior_name!r} has no data to encode: it is handed the encoder and the "
                             "training data by the lsi objective (objective name = \"lsi\")")
        means = torch.cat([self._encoded(part) for part in self._rows.split(ENCODE_CHUNK)])  # type: ignore[union-attr]
        self.means = means.to(self.means.device)
        self._stale = False

    def _current_means(self) -> Tensor:
        if self._data is not None and self._stale:
            self.refresh()
        if self.means.shape[0] == 0:
            raise ValueError(f"prior {self.prior_name!r} has no components yet: it needs the encoder and the "
                             "training data, which the lsi objective hands it (objective name = \"lsi\"), or a "
                             "checkpoint that holds its means")
        return self.means

    # -- the Prior protocol ----------------------------------------------------------------------
    def sample(self, num: int, shape: tuple[int, ...], *, generator: torch.Generator | None = None,
               device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Tensor:
        shape = self._check_request(num, shape)
        device, dtype = self._placement(device, dtype)
        if self._data is not None and torch.is_grad_enabled():  # a training draw: the current encoder
            pick = draws.integers(self.num_components, num, generator=generator)
            centres = self._encoded(self._rows[pick])  # type: ignore[index]
            self._stale = True
        else:
            means = self._current_means()
            centres = means[draws.integers(means.shape[0], num, generator=generator)]
        xi = draws.normal((num, *shape), generator=generator, device=device, dtype=dtype)
        return centres.to(device=device, dtype=dtype) + self.std * xi

    def log_prob(self, x: Tensor) -> Tensor:
        """``log (1/N) sum_n N(x; m_n, std^2 I)`` by logsumexp, shape ``(B,)``."""
        self._check_input(x)
        means = self._current_means().to(device=x.device, dtype=x.dtype)
        diff = (x.unsqueeze(1) - means.unsqueeze(0)) / self.std  # (B, N, *event)
        d = math.prod(self.event_shape)
        component = -0.5 * diff.pow(2).reshape(x.shape[0], means.shape[0], -1).sum(dim=2)
        component = component - d * (math.log(self.std) + 0.5 * _LOG_2PI)
        return torch.logsumexp(component, dim=1) - math.log(means.shape[0])

    # -- checkpoints: the means of the encoder they were saved with --------------------------------
    def _save_to_state_dict(self, destination: Any, prefix: str, keep_vars: bool) -> None:
        if self._data is not None and self._stale:
            self.refresh()
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def _load_from_state_dict(self, state_dict: Any, prefix: str, *args: Any) -> None:
        saved = state_dict.get(prefix + "means")
        if saved is not None:  # any number of components: take the saved shape
            self.means = torch.empty_like(saved, device=self.means.device)
            self._stale = False
        super()._load_from_state_dict(state_dict, prefix, *args)

    def extra_repr(self) -> str:
        return f"event_shape={self.event_shape}, std={self.std}, components={self.num_components}"


def build_encoded_mixture(params: EncodedMixtureParams, *, event_shape: tuple[int, ...],
                          **context: Any) -> EncodedMixturePrior:
    """The prior for latents of ``event_shape``; its components arrive with ``attach_encoder``."""
    shape = event_shape_of(event_shape, EncodedMixturePrior.prior_name)
    return EncodedMixturePrior(shape, std=params.std, max_components=params.max_components, seed=params.seed)
