"""Built-in samplers and diffusion coefficients (math.md 1.3, 2.2).

Samplers (kind ``"sampler"``; each params class is the sampler itself):

* ODE, also usable as ODE solvers for likelihoods: ``euler``, ``heun``, ``midpoint``, ``rk4``
  (fixed steps on a time grid) and ``dopri5`` (adaptive Dormand-Prince 5(4));
* SDE, needing the score: ``euler_maruyama`` and ``stochastic_heun`` with a diffusion eps(t);
* fast sampling without retraining (math.md 3): ``converted`` (any inner sampler under a target
  ``schedule``) and ``point_mass`` (the few-step point-mass SDE of math.md 3.4).

Every fixed-step sampler takes ``grid`` = ``uniform``, ``edm`` or ``tuned`` (:mod:`.time_grid`), the ODE
ones also ``fitted``, fitted once per model and kept in the run directory (:mod:`.grid_cache`).

Diffusions (kind ``"diffusion"``): ``zero``, ``constant``, ``reverse`` (the reverse-diffusion
``eps_rev`` of math.md 1.3, the SDE samplers' default), ``optimal`` (the older name of ``reverse``,
**not** the SI paper's optimal diffusion), ``sigma``, ``linear``, ``decreasing``,
``increasing_decreasing``.
"""

from __future__ import annotations

from interpgen import Registry, hookimpl
from interpgen_plugins.samplers.diffusions import (
    ConstantDiffusion, DecreasingDiffusion, IncreasingDecreasingDiffusion, LinearDiffusion,
    OptimalDiffusion, ReverseDiffusion, SigmaDiffusion, ZeroDiffusion)
from interpgen_plugins.samplers.dopri5 import Dopri5Sampler
from interpgen_plugins.samplers.fixed_step import (EulerSampler, FixedStepSampler, HeunSampler, MidpointSampler,
                                                   Rk4Sampler, build_in_run)
from interpgen_plugins.samplers.sde import EulerMaruyamaSampler, StochasticHeunSampler
from interpgen_plugins.samplers.converted import ConvertedSampler
from interpgen_plugins.samplers.point_mass import PointMassSampler

SAMPLERS: dict[str, type] = {
    "euler": EulerSampler,
    "heun": HeunSampler,
    "midpoint": MidpointSampler,
    "rk4": Rk4Sampler,
    "dopri5": Dopri5Sampler,
    "euler_maruyama": EulerMaruyamaSampler,
    "stochastic_heun": StochasticHeunSampler,
    "converted": ConvertedSampler,  # schedule conversion, math.md 3.1
    "point_mass": PointMassSampler,  # few-step point-mass SDE, math.md 3.4
}

DIFFUSIONS: dict[str, type] = {
    "zero": ZeroDiffusion,
    "constant": ConstantDiffusion,
    "reverse": ReverseDiffusion,
    "optimal": OptimalDiffusion,  # the older name of "reverse" (math.md 1.3)
    "sigma": SigmaDiffusion,
    "linear": LinearDiffusion,
    "decreasing": DecreasingDiffusion,
    "increasing_decreasing": IncreasingDecreasingDiffusion,
}


@hookimpl
def interpgen_register(registry: Registry) -> None:
    """Add the samplers (kind ``"sampler"``) and diffusion coefficients (kind ``"diffusion"``)."""
    for name, cls in SAMPLERS.items():  # fixed-step ones keep fitted grids in the run directory
        registry.add("sampler", name, cls, build=build_in_run if issubclass(cls, FixedStepSampler) else None)
    for name, cls in DIFFUSIONS.items():
        registry.add("diffusion", name, cls)
