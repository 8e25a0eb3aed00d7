"""Samplers of the built-in 2-D target shapes.

Each sampler is a pure function ``sampler(n, generator, **shape_params) -> Tensor`` returning
``(n, 2)`` float32 samples drawn with ``generator`` alone (same seed, same samples) on the
generator's device. The defaults put every shape roughly inside ``[-4, 4]^2`` with a spread of
order one, the usual scale of a standard-normal prior ``x0`` at ``t = 0`` (math.md 0), so no
standardisation is needed. Benchmarks import these functions to draw fresh target samples.

Where a shape mixes several pieces (the two moons, the eight Gaussians, ...), each sample picks
its piece independently and uniformly unless said otherwise, so a batch is already in random
order.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "checkerboard", "circles", "eight_gaussians", "gaussian", "moons", "pinwheel", "rings",
    "spirals", "swissroll", "MOON_CENTRES",
]

#: Closed-form means of the two moons as drawn by :func:`moons` (outer moon, inner moon):
#: the mean of ``(cos u, sin u)`` for ``u ~ U[0, pi]`` is ``(0, 2/pi)``, shifted and scaled
#: as :func:`moons` does.
MOON_CENTRES: tuple[tuple[float, float], tuple[float, float]] = (
    (-1.0, 4.0 / math.pi - 0.5),
    (1.0, 0.5 - 4.0 / math.pi),
)


def _uniform(n: int, generator: torch.Generator) -> Tensor:
    return torch.rand(n, generator=generator, device=generator.device, dtype=torch.float32)


def _normal(shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
    return torch.randn(shape, generator=generator, device=generator.device, dtype=torch.float32)


def _choice(n: int, k: int, generator: torch.Generator) -> Tensor:
    return torch.randint(0, k, (n,), generator=generator, device=generator.device)


def _on_circle(radius: Tensor, angle: Tensor) -> Tensor:
    return torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)


def _add_noise(x: Tensor, noise: float, generator: torch.Generator) -> Tensor:
    """Isotropic Gaussian noise of standard deviation ``noise`` (drawn even when it is 0, so
    changing ``noise`` never changes the rest of the random stream)."""
    return x + noise * _normal(tuple(x.shape), generator)


def checkerboard(n: int, generator: torch.Generator, *, cells: int = 4, extent: float = 4.0) -> Tensor:
    """Uniform on the black squares of a ``cells x cells`` board covering ``[-extent, extent]^2``.

    Square ``(i, j)`` (column ``i``, row ``j``, counted from the lower left corner) spans
    ``[-extent + i w, -extent + (i + 1) w] x [-extent + j w, -extent + (j + 1) w]`` with
    ``w = 2 extent / cells`` and is black when ``i + j`` is even. Every black square carries
    the same mass.
    """
    width = 2.0 * extent / cells
    black = [(i, j) for i in range(cells) for j in range(cells) if (i + j) % 2 == 0]
    corners = torch.tensor(black, dtype=torch.float32, device=generator.device) * width - extent
    pick = _choice(n, len(black), generator)
    offset = torch.stack([_uniform(n, generator), _uniform(n, generator)], dim=1) * width
    return corners[pick] + offset


def moons(n: int, generator: torch.Generator, *, noise: float = 0.1) -> Tensor:
    """Two interleaved half circles of radius 2, plus Gaussian noise of std ``noise``.

    Before scaling: the outer moon is ``(cos u, sin u)`` and the inner one ``(1 - cos u,
    0.5 - sin u)`` with ``u ~ U[0, pi]``; both are shifted by ``-(0.5, 0.25)`` (the mixture's
    mean) and scaled by 2. The moon means are :data:`MOON_CENTRES`.
    """
    u = math.pi * _uniform(n, generator)
    inner = _choice(n, 2, generator).to(torch.float32)
    sign = 1.0 - 2.0 * inner  # +1 outer, -1 inner
    x = inner + sign * torch.cos(u) - 0.5
    y = 0.5 * inner + sign * torch.sin(u) - 0.25
    return _add_noise(2.0 * torch.stack([x, y], dim=1), noise, generator)


def eight_gaussians(n: int, generator: torch.Generator, *, radius: float = 2.8, noise: float = 0.3) -> Tensor:
    """Equal mixture of eight isotropic Gaussians of std ``noise`` centred at
    ``radius (cos(k pi/4), sin(k pi/4))``, ``k = 0..7``."""
    k = _choice(n, 8, generator).to(torch.float32)
    centres = _on_circle(torch.full_like(k, radius), k * (math.pi / 4.0))
    return _add_noise(centres, noise, generator)


def spirals(n: int, generator: torch.Generator, *, turns: float = 1.5, radius: float = 3.0,
            noise: float = 0.1) -> Tensor:
    """Two interleaved spiral arms (Archimedean, point-symmetric about the origin).

    Arm ``a in {0, 1}`` is ``r (cos(phi + a pi), sin(phi + a pi))`` with ``r = radius phi /
    phi_max``, ``phi_max = 2 pi turns`` and ``phi = phi_max sqrt(u)``, ``u ~ U[0, 1]`` (the square
    root spreads points about evenly along the arm), plus Gaussian noise of std ``noise``.
    """
    phi_max = 2.0 * math.pi * turns
    phi = phi_max * torch.sqrt(_uniform(n, generator))
    arm = _choice(n, 2, generator).to(torch.float32)
    return _add_noise(_on_circle(radius * phi / phi_max, phi + math.pi * arm), noise, generator)


def circles(n: int, generator: torch.Generator, *, inner_radius: float = 1.5, outer_radius: float = 3.0,
            noise: float = 0.1) -> Tensor:
    """Two concentric rings, each sample on either with probability 1/2, at a uniform angle,
    plus Gaussian noise of std ``noise``."""
    outer = _choice(n, 2, generator).to(torch.float32)
    r = inner_radius + (outer_radius - inner_radius) * outer
    return _add_noise(_on_circle(r, 2.0 * math.pi * _uniform(n, generator)), noise, generator)


def rings(n: int, generator: torch.Generator, *, count: int = 4, max_radius: float = 3.0,
          noise: float = 0.08) -> Tensor:
    """``count`` concentric rings of radii ``max_radius k / count``, ``k = 1..count``.

    Ring ``k`` is chosen with probability proportional to its circumference (``k``), so the
    density along the rings is uniform; angles are uniform; Gaussian noise of std ``noise``.
    """
    weights = torch.arange(1, count + 1, dtype=torch.float32, device=generator.device)
    k = torch.multinomial(weights, n, replacement=True, generator=generator).to(torch.float32) + 1.0
    r = max_radius * k / count
    return _add_noise(_on_circle(r, 2.0 * math.pi * _uniform(n, generator)), noise, generator)


def swissroll(n: int, generator: torch.Generator, *, radius: float = 3.0, noise: float = 0.1) -> Tensor:
    """A 2-D Swiss roll: ``r (cos s, sin s)`` with ``s = 1.5 pi (1 + 2 u)``, ``u ~ U[0, 1]``
    (one and a half turns) and ``r = radius s / (4.5 pi)``, plus Gaussian noise of std ``noise``."""
    s = 1.5 * math.pi * (1.0 + 2.0 * _uniform(n, generator))
    return _add_noise(_on_circle(radius * s / (4.5 * math.pi), s), noise, generator)


def pinwheel(n: int, generator: torch.Generator, *, arms: int = 5, radial_noise: float = 0.3,
             tangential_noise: float = 0.1, rate: float = 0.25, scale: float = 2.0) -> Tensor:
    """Curved Gaussian blades arranged like a pinwheel.

    A point ``(1 + radial_noise a, tangential_noise b)`` with ``a, b ~ N(0, 1)`` is rotated by
    ``2 pi k / arms + rate exp(1 + radial_noise a)`` (arm ``k`` uniform; the further out, the more
    it turns) and multiplied by ``scale``.
    """
    radial = 1.0 + radial_noise * _normal((n,), generator)
    tangential = tangential_noise * _normal((n,), generator)
    k = _choice(n, arms, generator).to(torch.float32)
    angle = 2.0 * math.pi * k / arms + rate * torch.exp(radial)
    cos, sin = torch.cos(angle), torch.sin(angle)
    x = radial * cos - tangential * sin
    y = radial * sin + tangential * cos
    return scale * torch.stack([x, y], dim=1)


def gaussian(n: int, generator: torch.Generator, *, mean: tuple[float, ...] = (0.0, 0.0),
             std: tuple[float, ...] = (1.0, 1.0)) -> Tensor:
    """``N(mean, diag(std^2))``: ``mean + std * eps`` with ``eps ~ N(0, I)``; the dimension is
    ``len(mean)`` (2 by default)."""
    m = torch.tensor(mean, dtype=torch.float32, device=generator.device)
    s = torch.tensor(std, dtype=torch.float32, device=generator.device)
    return m + s * _normal((n, len(mean)), generator)
