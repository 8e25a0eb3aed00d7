"""The built-in synthetic targets: one params class per shape and the data source they build.

A synthetic target is an infinite data set: every batch and every reference set is a fresh
draw from :mod:`.shapes`, made with the generator passed in and nothing else. The samples are
used as drawn (``data_affine()`` is None) and carry no labels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import Tensor

from . import shapes
from interpgen.tensors import check_shard
from interpgen.validators import (
    finite_vector, nonnegative_float, positive_float, positive_int, positive_vector,
)

Sampler = Callable[[int, torch.Generator], Tensor]


class SyntheticSource:
    """A :class:`~interpgen.protocols.DataSource` drawing fresh samples from ``sampler``."""

    num_classes: int | None = None

    def __init__(self, sampler: Sampler, event_shape: tuple[int, ...]):
        self._sampler = sampler
        self.event_shape = tuple(event_shape)

    def batches(self, batch_size: int, *, generator: torch.Generator,
                shard: tuple[int, int] = (0, 1)) -> Iterator[tuple[Tensor, None]]:
        """Yield ``(x1, None)`` with ``x1`` of shape ``(batch_size, *event_shape)``, forever.

        With ``shard = (index, count)`` each step draws ``count * batch_size`` samples (the
        batch one process would see) and keeps rows ``[index * batch_size, (index + 1) *
        batch_size)``, so processes sharing a seed still train on different samples."""
        _check_count("batch_size", batch_size)
        index, count = check_shard(shard)
        while True:
            yield self._sampler(batch_size * count, generator)[index * batch_size:(index + 1) * batch_size], None

    def reference(self, num: int, *, generator: torch.Generator) -> Tensor:
        """``num`` fresh samples."""
        _check_count("num", num)
        return self._sampler(num, generator)

    def data_affine(self) -> None:
        """None: synthetic samples are already in model space."""
        return None

    def __repr__(self) -> str:
        return f"SyntheticSource({self._sampler!r}, event_shape={self.event_shape})"


def _check_count(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


class _Target:
    """Shared behaviour of the synthetic params classes: ``sample(n, generator)`` draws from the
    shape with these parameters (for benchmarks), :func:`build_synthetic` wraps it."""

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        raise NotImplementedError

    @property
    def event_shape(self) -> tuple[int, ...]:
        return (2,)


@attrs.frozen(kw_only=True)
class Checkerboard(_Target):
    """Uniform on the black squares of a board over [-extent, extent]^2 (shapes.checkerboard)."""

    cells: int = attrs.field(default=4, validator=positive_int)
    extent: float = attrs.field(default=4.0, validator=positive_float)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return shapes.checkerboard(n, generator, cells=self.cells, extent=self.extent)


@attrs.frozen(kw_only=True)
class Moons(_Target):
    """Two interleaved half circles (shapes.moons)."""

    noise: float = attrs.field(default=0.1, validator=nonnegative_float)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return shapes.moons(n, generator, noise=self.noise)


@attrs.frozen(kw_only=True)
class EightGaussians(_Target):
    """Eight Gaussians evenly spaced on a circle (shapes.eight_gaussians)."""

    radius: float = attrs.field(default=2.8, validator=positive_float)
    noise: float = attrs.field(default=0.3, validator=nonnegative_float)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return shapes.eight_gaussians(n, generator, radius=self.radius, noise=self.noise)


@attrs.frozen(kw_only=True)
class Spirals(_Target):
    """Two interleaved spiral arms (shapes.spirals)."""

    turns: float = attrs.field(default=1.5, validator=positive_float)
    radius: float = attrs.field(default=3.0, validator=positive_float)
    noise: float = attrs.field(default=0.1, validator=nonnegative_float)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return shapes.spirals(n, generator, turns=self.turns, radius=self.radius, noise=self.noise)


def _inner_below_outer(instance: Any, attribute: attrs.Attribute, value: float) -> None:
    if value <= instance.inner_radius:
        raise ValueError(f"outer_radius must be > inner_radius ({instance.inner_radius!r}), got {value!r}")


@attrs.frozen(kw_only=True)
class Circles(_Target):
    """Two concentric rings (shapes.circles)."""

    inner_radius: float = attrs.field(default=1.5, validator=positive_float)
    outer_radius: float = attrs.field(default=3.0, validator=[positive_float, _inner_below_outer])
    noise: float = attrs.field(default=0.1, validator=nonnegative_float)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return shapes.circles(n, generator, inner_radius=self.inner_radius,
                              outer_radius=self.outer_radius, noise=self.noise)


@attrs.frozen(kw_only=True)
class Rings(_Target):
    """Several concentric rings, uniform along their length (shapes.rings)."""

    count: int = attrs.field(default=4, validator=positive_int)
    max_radius: float = attrs.field(default=3.0, validator=positive_float)
    noise: float = attrs.field(default=0.08, validator=nonnegative_float)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return shapes.rings(n, generator, count=self.count, max_radius=self.max_radius, noise=self.noise)


@attrs.frozen(kw_only=True)
class Swissroll(_Target):
    """A 2-D Swiss roll (shapes.swissroll)."""

    radius: float = attrs.field(default=3.0, validator=positive_float)
    noise: float = attrs.field(default=0.1, validator=nonnegative_float)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return shapes.swissroll(n, generator, radius=self.radius, noise=self.noise)


@attrs.frozen(kw_only=True)
class Pinwheel(_Target):
    """Curved Gaussian blades arranged like a pinwheel (shapes.pinwheel)."""

    arms: int = attrs.field(default=5, validator=positive_int)
    radial_noise: float = attrs.field(default=0.3, validator=nonnegative_float)
    tangential_noise: float = attrs.field(default=0.1, validator=nonnegative_float)
    rate: float = attrs.field(default=0.25, validator=nonnegative_float)
    scale: float = attrs.field(default=2.0, validator=positive_float)

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return shapes.pinwheel(n, generator, arms=self.arms, radial_noise=self.radial_noise,
                               tangential_noise=self.tangential_noise, rate=self.rate, scale=self.scale)


def _same_length_as_mean(instance: Any, attribute: attrs.Attribute, value: tuple[float, ...]) -> None:
    if isinstance(value, tuple) and len(value) != len(instance.mean):
        raise ValueError(f"std must have one entry per entry of mean ({len(instance.mean)}), "
                         f"got {len(value)}: {value!r}")


@attrs.frozen(kw_only=True)
class GaussianTarget(_Target):
    """A Gaussian N(mean, diag(std^2)) with known moments, 2-D by default (shapes.gaussian)."""

    mean: tuple[float, ...] = attrs.field(default=(0.0, 0.0), converter=_as_tuple, validator=finite_vector)
    std: tuple[float, ...] = attrs.field(default=(1.0, 1.0), converter=_as_tuple,
                                         validator=[positive_vector, _same_length_as_mean])

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return shapes.gaussian(n, generator, mean=self.mean, std=self.std)

    @property
    def event_shape(self) -> tuple[int, ...]:
        return (len(self.mean),)


#: Registered name -> params class of every synthetic target.
SYNTHETIC_TARGETS: dict[str, type[_Target]] = {
    "checkerboard": Checkerboard,
    "moons": Moons,
    "eight_gaussians": EightGaussians,
    "spirals": Spirals,
    "circles": Circles,
    "swissroll": Swissroll,
    "pinwheel": Pinwheel,
    "rings": Rings,
    "gaussian": GaussianTarget,
}


def build_synthetic(params: _Target, *, root: Path | None = None, **context: Any) -> SyntheticSource:
    """The data source of a synthetic target (``root`` and other context are not needed)."""
    return SyntheticSource(params.sample, params.event_shape)
