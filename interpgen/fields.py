"""A trained network seen through its interpolant: the :class:`~interpgen.protocols.Field` that samplers and
likelihoods drive."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from interpgen.protocols import ConversionError, Interpolant


def prediction_heads(out: Tensor, predictions: tuple[str, ...], channels: int) -> tuple[Tensor, ...]:
    """Split a network output into one tensor per prediction.

    The predictions are stacked along dimension 1, ``channels`` each; channels beyond them (a
    DiT with ``learn_sigma`` returns a variance head that interpgen does not train) are dropped.
    """
    needed = channels * len(predictions)
    if out.shape[1] < needed:
        raise ValueError(f"the network returned {out.shape[1]} channels; {len(predictions)} prediction(s) "
                         f"({'+'.join(predictions)}) of {channels} channels need {needed}")
    return torch.split(out[:, :needed], channels, dim=1)


class ModelField:
    """``evaluate(x, t, wants)`` runs ``network(x, t[, labels])`` once (``nfe`` counts the runs) and converts its
    output with the interpolant's ``convert`` (math.md 1.5; an interpolant may know predictions of its own, as a
    plugin's bridge may). ``time_range``: where training put times, ``(t_eps, 1 - t_eps)`` by default."""

    def __init__(self, network: Callable[..., Tensor], interpolant: Interpolant, predictions: tuple[str, ...],
                 *, gaussian_base: bool, t_eps: float = 0.0, time_range: tuple[float, float] | None = None,
                 labels: Tensor | None = None):
        self.network = network
        self.interpolant = interpolant
        self.predictions = predictions
        self.gaussian_base = gaussian_base
        self.t_eps = float(t_eps)
        self._range = tuple(time_range) if time_range is not None else (self.t_eps, 1.0 - self.t_eps)
        self.labels = labels
        self.nfe = 0

    def available(self) -> tuple[str, ...]:
        return tuple(self.interpolant.available(self.predictions, gaussian_base=self.gaussian_base))

    def raw(self, x: Tensor, t: Tensor) -> dict[str, Tensor]:
        """The network's own predictions at ``(x, t)`` (one evaluation)."""
        self.nfe += 1
        out = self.network(x, t, self.labels) if self.labels is not None else self.network(x, t)
        return dict(zip(self.predictions, prediction_heads(out, self.predictions, x.shape[1])))

    def evaluate(self, x: Tensor, t: Tensor, wants: tuple[str, ...]) -> tuple[Tensor, ...]:
        have = self.raw(x, t)
        out = []
        for want in wants:
            try:
                out.append(self.interpolant.convert(have, x, t, want, gaussian_base=self.gaussian_base))
            except ConversionError as exc:
                trained = "+".join(self.predictions)
                raise ConversionError(f"model trained on {trained} cannot give {want!r}: {exc}") from None
        return tuple(out)

    def time_range(self, stochastic: bool) -> tuple[float, float]:
        """Samplers stay inside the times training covered."""
        return self._range
