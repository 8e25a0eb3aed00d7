"""Time grids for fixed-step samplers.

A grid is the list of ``steps + 1`` times ``t_0 = t_start, ..., t_K = t_end`` at which a
fixed-step solver evaluates; it may run backward (``t_end < t_start``). Only ``"uniform"``
exists so far; the ``grid`` parameter of every fixed-step sampler is validated against
:data:`GRIDS`, so adding a grid here makes it available everywhere.
"""

from __future__ import annotations

from interpgen.validators import one_of

#: The grid names a sampler accepts.
GRIDS: tuple[str, ...] = ("uniform",)

#: attrs validator for a ``grid`` field.
grid_name = one_of(*GRIDS)


def time_grid(name: str, t_start: float, t_end: float, steps: int) -> list[float]:
    """The ``steps + 1`` grid times from ``t_start`` to ``t_end`` (both included, exact).

    ``uniform``: ``t_k = t_start + (k / K) (t_end - t_start)``.
    """
    if name not in GRIDS:
        raise ValueError(f"unknown time grid {name!r}; known: {', '.join(GRIDS)}")
    if steps < 1:
        raise ValueError(f"a time grid needs steps >= 1, got {steps}")
    span = t_end - t_start
    times = [t_start + span * k / steps for k in range(steps)]
    times.append(t_end)
    return times
