"""The Schrödinger-bridge coupling (SB-CFM, math.md 5): entropic OT with ``reg = 2 sigma^2``,
to be used with the Brownian-bridge interpolant ``x_t = (1-t) x0 + t x1 + sigma sqrt(t(1-t)) z``.

With reference Brownian motion of variance ``sigma^2`` per unit time, the static Schrödinger
problem between rho0 and rho1 is entropic OT with the squared-distance cost and regularisation
``2 sigma^2``; given its end points, the bridge is the Brownian bridge above. In interpgen that
interpolant is ``linear`` with ``gamma = {name = "a_brownian", a = sigma^2}`` (gamma(t) =
sqrt(a t (1-t)), math.md 1.8), or ``gamma = "brownian"`` when ``sigma = 1``.

The coupling's ``sigma`` and the interpolant's must agree: :meth:`SchrodingerBridgeCoupling.check_compatible`
(called by the pipeline when it is built) compares ``alpha, beta, gamma^2`` with
``1 - t, t, sigma^2 t (1 - t)`` on a grid and raises a ValueError saying what to set otherwise.
The regularisation is absolute (in model space, the data's standardised units), not relative.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch

from interpgen.validators import positive_float, positive_int

from .sinkhorn import EntropicCoupling

#: Times at which the interpolant is compared with the Brownian bridge.
_CHECK_TIMES = (0.1, 0.25, 0.5, 0.75, 0.9)


@attrs.frozen(kw_only=True)
class SchrodingerBridgeParams:
    """Schrödinger-bridge coupling: entropic OT with reg = 2 sigma^2 (use with gamma sigma sqrt(t(1-t)))."""

    sigma: float = attrs.field(default=1.0, validator=positive_float)
    max_iter: int = attrs.field(default=1000, validator=positive_int)
    tol: float = attrs.field(default=1e-4, validator=positive_float)
    seed: int = 0


class SchrodingerBridgeCoupling(EntropicCoupling):
    """:class:`~.sinkhorn.EntropicCoupling` with the absolute ``reg = 2 sigma^2`` and a check of
    the interpolant."""

    name = "schrodinger_bridge"

    def __init__(self, *, sigma: float, max_iter: int, tol: float, seed: int):
        super().__init__(reg=2.0 * sigma * sigma, relative=False, max_iter=max_iter, tol=tol, seed=seed)
        self.sigma = float(sigma)

    def check_compatible(self, *, interpolant: Any = None, **parts: Any) -> None:
        """Raise ValueError unless ``interpolant`` is the Brownian bridge of this ``sigma``:
        ``alpha = 1 - t``, ``beta = t``, ``gamma^2 = sigma^2 t (1 - t)`` (to 1e-6 relative)."""
        if interpolant is None:
            return
        t = torch.tensor(_CHECK_TIMES, dtype=torch.float64)
        want = {"alpha": 1.0 - t, "beta": t, "gamma^2": self.sigma ** 2 * t * (1.0 - t)}
        have = {"alpha": interpolant.alpha(t), "beta": interpolant.beta(t), "gamma^2": interpolant.gamma(t) ** 2}
        bad = [k for k in want if not torch.allclose(have[k].double(), want[k], rtol=1e-6, atol=1e-9)]
        if bad:
            raise ValueError(
                f"coupling 'schrodinger_bridge' with sigma = {self.sigma:g} needs the Brownian-bridge interpolant "
                f"x_t = (1-t) x0 + t x1 + {self.sigma:g} sqrt(t(1-t)) z, i.e. interpolant = {{name = \"linear\", "
                f"gamma = {{name = \"a_brownian\", a = {self.sigma ** 2:g}}}}}; this interpolant's "
                f"{', '.join(bad)} differ(s)")


def build_schrodinger_bridge(params: SchrodingerBridgeParams, **context: Any) -> SchrodingerBridgeCoupling:
    return SchrodingerBridgeCoupling(sigma=params.sigma, max_iter=params.max_iter, tol=params.tol, seed=params.seed)
