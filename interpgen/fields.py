"""A trained network seen through its interpolant: the :class:`~interpgen.protocols.Field`
that samplers and likelihoods drive.

The network predicts one target, or two stacked along dimension 1 (``"velocity+score"``); every
other prediction comes from the interpolant's conversion table (math.md 1.2, 1.5).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from interpgen.protocols import ConversionError, Interpolant


class ModelField:
    """``evaluate(x, t, wants)`` runs ``network(x, t[, labels])`` once and converts its output;
    ``nfe`` counts those runs."""

    def __init__(self, network: Callable[..., Tensor], interpolant: Interpolant, predictions: tuple[str, ...],
                 *, gaussian_base: bool, t_eps: float, labels: Tensor | None = None):
        self.network = network
        self.interpolant = interpolant
        self.predictions = predictions
        self.gaussian_base = gaussian_base
        self.t_eps = float(t_eps)
        self.labels = labels
        self.nfe = 0

    def available(self) -> tuple[str, ...]:
        return tuple(self.interpolant.available(self.predictions, gaussian_base=self.gaussian_base))

    def raw(self, x: Tensor, t: Tensor) -> dict[str, Tensor]:
        """The network's own predictions at ``(x, t)`` (one evaluation)."""
        self.nfe += 1
        labels = self.labels
        out = self.network(x, t, labels) if labels is not None else self.network(x, t)
        if len(self.predictions) == 1:
            return {self.predictions[0]: out}
        return dict(zip(self.predictions, torch.chunk(out, len(self.predictions), dim=1)))

    def evaluate(self, x: Tensor, t: Tensor, wants: tuple[str, ...]) -> tuple[Tensor, ...]:
        have = self.raw(x, t)
        out = []
        for want in wants:
            try:
                out.append(self.interpolant.convert(have, x, t, want, gaussian_base=self.gaussian_base))
            except ConversionError as exc:
                raise ConversionError(f"model trained on {'+'.join(self.predictions)} cannot give {want!r}: {exc}") from None
        return tuple(out)

    def time_range(self, stochastic: bool) -> tuple[float, float]:
        """Training covered ``[t_eps, 1 - t_eps]``; samplers stay inside it."""
        return (self.t_eps, 1.0 - self.t_eps)
