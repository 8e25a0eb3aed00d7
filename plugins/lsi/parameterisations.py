"""The four LSI parameterisations of the latent drift (math.md 4.3, table; the paper's appendix C), for
the linear bridge ``kappa = t``, ``nu = 1 - t``, ``z_t = sigma sqrt(t(1-t)) eps + t z1 + (1-t) z0``.

With ``s_t = sqrt((1-t)(sigma^2 t + 1 - t))`` and ``z0' = ((1-t) z0 + sigma sqrt(t(1-t)) eps) / s_t`` (so that
``z_t = t z1 + s_t z0'``; for ``z0 ~ N(0, I)`` it is the paper's standard normal ``z0'``):

=============  =================================  ==============================================  ==============
name           network output (its optimum)       regression target                               J(t)
=============  =================================  ==============================================  ==============
``interpflow`` ``sqrt(t) z + sqrt(1-t) h``         ``-sigma sqrt(t) eps + sqrt(1-t)(z1-z0) + sqrt(t) z_t``  ``1/sqrt(1-t)``
``origflow``   ``sqrt(1-t) h``                     ``sqrt(1-t)(z1 - z0) - sigma sqrt(t) eps``     ``1/sqrt(1-t)``
``denoising``  ``E[z1 | z_t] = z + (1-t) h``       ``z1``                                          ``1/(1-t)``
``noisepred``  ``E[z0' | z_t]``                     ``z0'``                                         ``-s_t/(t(1-t))``
=============  =================================  ==============================================  ==============

Each drift is affine in the output, ``h - h_phi = J(t) (out - target)`` with the bridge drift
``h_phi = (z1 - z_t)/(1 - t)``, so the exact ELBO weight of ``|out - target|^2`` is ``J^2 / sigma^2``
(math.md 4.3: ``1/(sigma^2 (1-t))``, ``1/(sigma^2 (1-t)^2)``, ``(sigma^2 t + 1 - t)/(sigma^2 t^2 (1-t))``).

Priors [DERIVED]: ``h_phi`` does not involve ``z0``, so the optimal drift ``E[h_phi | z_t] = (E[z1 | z_t] - z_t)/(1-t)``
holds for any prior, and so do the Denoising and NoisePred conversions when ``z0'`` is computed from the
bridge's own ``(z0, eps)`` as here; the paper, which draws ``z0'`` itself, states them for a Gaussian ``z0``.
"""

from __future__ import annotations

from torch import Tensor

from interpgen.tensors import expand_like

#: The network outputs the lsi objective can train (``parameterisation``).
PARAMETERISATIONS: tuple[str, ...] = ("interpflow", "origflow", "denoising", "noisepred")


def _col(v: Tensor, like: Tensor) -> Tensor:
    return expand_like(v, like)


def total_noise_scale(t: Tensor, sigma: float) -> Tensor:
    """``s_t = sqrt((1-t)(sigma^2 t + 1 - t))``: ``z_t = t z1 + s_t z0'``."""
    return ((1.0 - t) * (sigma * sigma * t + 1.0 - t)).clamp_min(0.0).sqrt()


def standard_noise(z0: Tensor, eps: Tensor, t: Tensor, sigma: float) -> Tensor:
    """``z0' = (sqrt(1-t) z0 + sigma sqrt(t) eps) / sqrt(sigma^2 t + 1 - t)``, which is
    ``((1-t) z0 + sigma sqrt(t(1-t)) eps) / s_t`` written so that it stays finite at ``t = 1`` (where it is ``eps``)."""
    return (_col((1.0 - t).clamp_min(0.0).sqrt(), z0) * z0 + sigma * _col(t.sqrt(), eps) * eps) / _col(
        (sigma * sigma * t + 1.0 - t).sqrt(), z0)


def target(name: str, z0: Tensor, z1: Tensor, eps: Tensor, zt: Tensor, t: Tensor, sigma: float) -> Tensor:
    """The regression target of parameterisation ``name`` (module table)."""
    st, s1t = _col(t.sqrt(), z1), _col((1.0 - t).clamp_min(0.0).sqrt(), z1)
    if name == "interpflow":
        return -sigma * st * eps + s1t * (z1 - z0) + st * zt
    if name == "origflow":
        return s1t * (z1 - z0) - sigma * st * eps
    if name == "denoising":
        return z1
    if name == "noisepred":
        return standard_noise(z0, eps, t, sigma)
    raise ValueError(f"unknown LSI parameterisation {name!r}; known: {', '.join(PARAMETERISATIONS)}")


def drift(name: str, out: Tensor, z: Tensor, t: Tensor, sigma: float) -> Tensor:
    """The drift ``h`` read off the network output ``out`` at ``(z, t)`` (module table; math.md 4.3, 4.5)."""
    if name == "interpflow":
        return (out - _col(t.sqrt(), z) * z) / _col((1.0 - t).sqrt(), z)
    if name == "origflow":
        return out / _col((1.0 - t).sqrt(), z)
    if name == "denoising":
        return (out - z) / _col(1.0 - t, z)
    if name == "noisepred":
        x1 = (z - _col(total_noise_scale(t, sigma), z) * out) / _col(t, z)
        return (x1 - z) / _col(1.0 - t, z)
    raise ValueError(f"unknown LSI parameterisation {name!r}; known: {', '.join(PARAMETERISATIONS)}")


def output(name: str, h: Tensor, z: Tensor, t: Tensor, sigma: float) -> Tensor:
    """The inverse of :func:`drift`: the output of parameterisation ``name`` whose drift is ``h``."""
    if name == "interpflow":
        return _col(t.sqrt(), z) * z + _col((1.0 - t).sqrt(), z) * h
    if name == "origflow":
        return _col((1.0 - t).sqrt(), z) * h
    if name == "denoising":
        return z + _col(1.0 - t, z) * h
    if name == "noisepred":
        x1 = z + _col(1.0 - t, z) * h
        return (z - _col(t, z) * x1) / _col(total_noise_scale(t, sigma), z)
    raise ValueError(f"unknown LSI parameterisation {name!r}; known: {', '.join(PARAMETERISATIONS)}")


def exact_weight(name: str, t: Tensor, sigma: float) -> Tensor:
    """``J(t)^2 / sigma^2``: the ELBO weight of ``|out - target|^2`` (module docstring), shape of ``t``."""
    s2 = sigma * sigma
    if name in ("interpflow", "origflow"):
        return 1.0 / (s2 * (1.0 - t))
    if name == "denoising":
        return 1.0 / (s2 * (1.0 - t) ** 2)
    if name == "noisepred":
        return (s2 * t + 1.0 - t) / (s2 * t * t * (1.0 - t))
    raise ValueError(f"unknown LSI parameterisation {name!r}; known: {', '.join(PARAMETERISATIONS)}")


def singular_at_zero(name: str) -> bool:
    """NoisePred's drift divides by ``t``: samplers start after ``t = 0``."""
    return name == "noisepred"
