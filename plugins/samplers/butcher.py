"""Butcher tableaux of the explicit Runge-Kutta methods the samplers use.

A tableau ``(c, a, b)`` defines the stages ``k_i = f(t + c_i h, y + h sum_j a_ij k_j)`` and
the step ``y_next = y + h sum_i b_i k_i``. ``b_low`` (when present) is an embedded
lower-order solution used for error control.
"""

from __future__ import annotations

import attrs


@attrs.frozen(kw_only=True)
class ButcherTableau:
    """An explicit Runge-Kutta method: ``a`` is strictly lower triangular (row ``i`` holds
    ``a_i0 .. a_i(i-1)``), ``b`` the weights of the propagated solution of order ``order``,
    ``b_low`` optional embedded weights, ``fsal`` True when the last stage is evaluated at
    ``(t + h, y_next)`` and can be reused as the next step's first stage."""

    name: str
    order: int
    c: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    b_low: tuple[float, ...] | None = None
    fsal: bool = False

    @property
    def stages(self) -> int:
        return len(self.c)


EULER = ButcherTableau(name="euler", order=1, c=(0.0,), a=((),), b=(1.0,))

MIDPOINT = ButcherTableau(name="midpoint", order=2, c=(0.0, 0.5), a=((), (0.5,)), b=(0.0, 1.0))

# Heun's method: explicit trapezoid rule.
HEUN = ButcherTableau(name="heun", order=2, c=(0.0, 1.0), a=((), (1.0,)), b=(0.5, 0.5))

# The classical fourth-order Runge-Kutta method.
RK4 = ButcherTableau(
    name="rk4", order=4,
    c=(0.0, 0.5, 0.5, 1.0),
    a=((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)),
    b=(1 / 6, 1 / 3, 1 / 3, 1 / 6),
)

# Dormand-Prince 5(4): the 7th stage is taken at (t + h, y_next) (first same as last).
DOPRI5 = ButcherTableau(
    name="dopri5", order=5,
    c=(0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0),
    a=(
        (),
        (1 / 5,),
        (3 / 40, 9 / 40),
        (44 / 45, -56 / 15, 32 / 9),
        (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
        (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
        (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
    ),
    b=(35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0),
    b_low=(5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40),
    fsal=True,
)
