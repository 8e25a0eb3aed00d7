"""Attention backends (kind ``"attention"``): ``math``, ``sdpa``, ``xformers`` and ``auto``.

A backend is a callable ``attend(q, k, v, mask=None) -> out`` with ``q: (B, heads, Tq, d)``,
``k, v: (B, heads, Tk, d)`` and ``out: (B, heads, Tq, d)``. Every backend computes the same
scaled dot-product attention

    out = softmax(q k^T / sqrt(d) + M) v,

where ``M`` comes from ``mask``, which must broadcast to ``(B, heads, Tq, Tk)``:

* a **bool** mask says which keys a query may attend to (``True`` = attend; ``M = 0`` there and
  ``-inf`` elsewhere), the convention of ``torch.nn.functional.scaled_dot_product_attention``;
* a **floating** mask is added to the scores as it is (``M = mask``).

A query row that may attend to no key has an undefined softmax; do not pass such masks.

Backends:

* ``math``: the formula above written out with matmuls and a softmax computed in float32 (then
  cast back), the reference the others are tested against;
* ``sdpa``: PyTorch's fused ``scaled_dot_product_attention``;
* ``xformers``: ``xformers.ops.memory_efficient_attention`` (the optional extra
  ``interpgen[xformers]``, xformers >= 0.0.35); its kernels need CUDA, so building it without
  xformers installed, or calling it on CPU tensors, is an error that says how to fix it;
* ``auto``: per ``(device, dtype)`` of the inputs, xformers on CUDA if a probe call with that
  device and dtype succeeds, else ``sdpa``. The probe runs once per ``(device, dtype)`` and the
  choice is cached for the process (:func:`auto_choice`).

Networks name their backend with a parameter ``attention = "auto"`` and get it through
:func:`attention_backend`, which looks the name up in the registry (so a third-party backend
works by name). The environment variable ``INTERPGEN_ATTENTION`` replaces ``auto`` (and only
``auto``: a backend named explicitly in a recipe wins over the environment).
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import math
import os
from collections.abc import Callable
from typing import Any

import attrs
import torch
import torch.nn.functional as F
from torch import Tensor

from interpgen.registry import Registry

#: Environment variable that replaces the backend name ``auto``.
ATTENTION_ENV = "INTERPGEN_ATTENTION"
#: Oldest xformers release supported (the first whose wheels install beside torch >= 2.10).
XFORMERS_MIN_VERSION = (0, 0, 35)

AttendFn = Callable[..., Tensor]


def _check_shapes(q: Tensor, k: Tensor, v: Tensor) -> None:
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(f"attention expects q, k, v of shape (B, heads, tokens, head_dim), got "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    if k.shape != v.shape or q.shape[:2] != k.shape[:2] or q.shape[-1] != k.shape[-1]:
        raise ValueError(f"attention got mismatched q, k, v shapes {tuple(q.shape)}, {tuple(k.shape)}, "
                         f"{tuple(v.shape)}")


def additive_mask(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """The score offset ``M`` of a mask (module docstring): ``0 / -inf`` for a bool mask, the
    mask itself (in ``dtype``) for a floating one."""
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, float("-inf"))
    if not mask.dtype.is_floating_point:
        raise ValueError(f"an attention mask must be bool (True = attend) or floating (added to the scores), "
                         f"got {mask.dtype}")
    return mask.to(dtype)


class MathAttention:
    """``softmax(q k^T / sqrt(d) + M) v`` with explicit matmuls, scores and softmax in float32."""

    name = "math"

    def __call__(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
        _check_shapes(q, k, v)
        work = torch.promote_types(q.dtype, torch.float32)
        scores = torch.matmul(q.to(work), k.to(work).transpose(-2, -1)) / math.sqrt(q.shape[-1])
        if mask is not None:
            scores = scores + additive_mask(mask, work)
        weights = torch.softmax(scores, dim=-1)
        return torch.matmul(weights, v.to(work)).to(q.dtype)


class SdpaAttention:
    """PyTorch's fused ``scaled_dot_product_attention`` (flash / memory-efficient / math kernels,
    picked by PyTorch for the device and dtype)."""

    name = "sdpa"

    def __call__(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
        _check_shapes(q, k, v)
        if mask is not None and mask.dtype != torch.bool:
            mask = additive_mask(mask, q.dtype)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def _parse_version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


_HOW_TO_FIX = ("install the extra `pip install 'interpgen[xformers]'` (xformers >= 0.0.35) and run on a "
               "CUDA device, or choose attention = \"sdpa\" (or \"auto\")")


def load_xformers_ops() -> Any:
    """``xformers.ops``, or an ImportError naming the backend and how to fix it."""
    try:
        version = importlib.metadata.version("xformers")
    except importlib.metadata.PackageNotFoundError:
        raise ImportError(f"attention backend 'xformers' needs the xformers package, which is not installed: "
                          f"{_HOW_TO_FIX}") from None
    if _parse_version(version) < XFORMERS_MIN_VERSION:
        raise ImportError(f"attention backend 'xformers' needs xformers >= 0.0.35, found {version}: {_HOW_TO_FIX}")
    try:
        return importlib.import_module("xformers.ops")
    except Exception as exc:  # a broken install (e.g. built for another torch)
        raise ImportError(f"attention backend 'xformers': importing xformers {version} failed "
                          f"({type(exc).__name__}: {exc}): {_HOW_TO_FIX}") from exc


def _aligned_bias(bias: Tensor, shape: tuple[int, int, int, int]) -> Tensor:
    """Expand ``bias`` to ``shape`` in storage whose last dimension is padded to a multiple of 8
    (xformers reads the bias with aligned loads)."""
    padded = -(-shape[-1] // 8) * 8
    storage = torch.zeros((*shape[:-1], padded), dtype=bias.dtype, device=bias.device)
    view = storage[..., : shape[-1]]
    view.copy_(bias.expand(shape))
    return view


class XformersAttention:
    """``xformers.ops.memory_efficient_attention`` (CUDA only); q, k, v are transposed to
    xformers' ``(B, tokens, heads, d)`` layout and back."""

    name = "xformers"

    def __init__(self, ops: Any | None = None):
        self.ops = ops if ops is not None else load_xformers_ops()

    def __call__(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
        _check_shapes(q, k, v)
        if q.device.type != "cuda":
            raise RuntimeError(f"attention backend 'xformers' cannot run on device {q.device}: its kernels need "
                               f"CUDA; run on a CUDA device, or choose attention = \"sdpa\" (or \"auto\", which "
                               f"uses xformers only where it runs)")
        bias = None
        if mask is not None:
            shape = (q.shape[0], q.shape[1], q.shape[2], k.shape[2])
            bias = _aligned_bias(additive_mask(mask, q.dtype), shape)
        out = self.ops.memory_efficient_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                                  attn_bias=bias)
        return out.transpose(1, 2)


def _xformers_probe(device: torch.device, dtype: torch.dtype) -> bool:
    """True when a small xformers call on ``device`` in ``dtype`` runs and agrees with ``math``."""
    try:
        backend = XformersAttention()
        generator = torch.Generator(device=device).manual_seed(0)
        q, k, v = (torch.randn(1, 2, 16, 32, device=device, generator=generator).to(dtype) for _ in range(3))
        out = backend(q, k, v)
        ref = MathAttention()(q, k, v)
        return bool(torch.allclose(out.float(), ref.float(), atol=3e-2, rtol=3e-2))
    except Exception:  # any failure means "not here": auto falls back to sdpa
        return False


@functools.lru_cache(maxsize=None)
def auto_choice(device: torch.device, dtype: torch.dtype) -> str:
    """The backend ``auto`` uses for inputs on ``device`` in ``dtype``: ``"xformers"`` on CUDA when
    :func:`_xformers_probe` succeeds, else ``"sdpa"`` (computed once per pair, then cached)."""
    if device.type == "cuda" and _xformers_probe(device, dtype):
        return "xformers"
    return "sdpa"


class AutoAttention:
    """xformers where it runs (CUDA, probe succeeded), PyTorch SDPA elsewhere; see :func:`auto_choice`."""

    name = "auto"

    def __init__(self) -> None:
        self._sdpa = SdpaAttention()
        self._xformers: XformersAttention | None = None

    def backend_for(self, q: Tensor) -> AttendFn:
        """The backend used for inputs like ``q``."""
        if auto_choice(q.device, q.dtype) == "xformers":
            if self._xformers is None:
                self._xformers = XformersAttention()
            return self._xformers
        return self._sdpa

    def __call__(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.backend_for(q)(q, k, v, mask)


# -- registered parameter classes (no parameters: the name is the choice) ---------------------

@attrs.frozen(kw_only=True)
class MathAttentionParams:
    """Plain matmul-softmax-matmul attention (float32 scores): the reference."""


@attrs.frozen(kw_only=True)
class SdpaAttentionParams:
    """PyTorch's fused scaled_dot_product_attention."""


@attrs.frozen(kw_only=True)
class XformersAttentionParams:
    """xformers memory-efficient attention (CUDA; extra interpgen[xformers])."""


@attrs.frozen(kw_only=True)
class AutoAttentionParams:
    """xformers on CUDA when a probe call succeeds, else PyTorch SDPA."""


def build_math(params: MathAttentionParams, **context: Any) -> MathAttention:
    return MathAttention()


def build_sdpa(params: SdpaAttentionParams, **context: Any) -> SdpaAttention:
    return SdpaAttention()


def build_xformers(params: XformersAttentionParams, **context: Any) -> XformersAttention:
    return XformersAttention()


def build_auto(params: AutoAttentionParams, **context: Any) -> AutoAttention:
    return AutoAttention()


def register_attention_backends(registry: Registry) -> None:
    registry.add("attention", "math", MathAttentionParams, build=build_math)
    registry.add("attention", "sdpa", SdpaAttentionParams, build=build_sdpa)
    registry.add("attention", "xformers", XformersAttentionParams, build=build_xformers)
    registry.add("attention", "auto", AutoAttentionParams, build=build_auto)


def resolve_attention_name(name: str) -> str:
    """``name``, except that ``auto`` is replaced by ``$INTERPGEN_ATTENTION`` when that is set."""
    if name == "auto":
        override = os.environ.get(ATTENTION_ENV, "").strip()
        if override:
            return override
    return name


def attention_backend(name: str, registry: Registry) -> AttendFn:
    """The backend callable registered as ``name`` (after :func:`resolve_attention_name`), built
    from ``registry``: the one passed in the network's build context."""
    resolved = resolve_attention_name(name)
    try:
        entry = registry.get("attention", resolved)
    except LookupError as exc:
        where = f" (from ${ATTENTION_ENV})" if resolved != name else ""
        raise ValueError(f"{exc}{where}") from None
    return entry.create(registry=registry)
