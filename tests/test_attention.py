"""Attention backends (plugins/networks/attention.py): math, sdpa, xformers, auto."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch

from interpgen.plugin_manager import registry as default_registry
from interpgen.registry import Registry
from interpgen_plugins.networks import attention as attn
from interpgen_plugins.networks.attention import (ATTENTION_ENV, AutoAttention, MathAttention, SdpaAttention,
                                                  XformersAttention, attention_backend, auto_choice)
from interpgen_plugins.networks.self_attention import MultiHeadSelfAttention

HAS_CUDA = torch.cuda.is_available()
HAS_XFORMERS = importlib.util.find_spec("xformers") is not None


def qkv(dtype: torch.dtype, *, batch=2, heads=3, tq=7, tk=7, dim=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, heads, tq, dim, generator=g).to(dtype)
    k = torch.randn(batch, heads, tk, dim, generator=g).to(dtype)
    v = torch.randn(batch, heads, tk, dim, generator=g).to(dtype)
    return q, k, v


def bool_mask(tq=7, tk=7, seed=1):
    """A random key-padding-like mask with at least one allowed key per query row."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.rand(2, 1, tq, tk, generator=g) > 0.4
    mask[..., 0] = True
    return mask


def test_math_backend_is_the_closed_form():
    q, k, v = qkv(torch.float64, heads=1, tq=2, tk=3, dim=2, batch=1)
    scores = q[0, 0] @ k[0, 0].T / math.sqrt(2)
    expected = torch.softmax(scores, dim=-1) @ v[0, 0]
    assert torch.allclose(MathAttention()(q, k, v)[0, 0], expected, atol=1e-14)
    # a bool mask that forbids key 2 equals attending over keys 0, 1 only
    mask = torch.tensor([True, True, False])
    masked = MathAttention()(q, k, v, mask)[0, 0]
    assert torch.allclose(masked, torch.softmax(scores[:, :2], -1) @ v[0, 0, :2], atol=1e-14)
    # a float mask is added to the scores
    offset = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    assert torch.allclose(MathAttention()(q, k, v, offset)[0, 0],
                          torch.softmax(scores + offset, -1) @ v[0, 0], atol=1e-14)


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)])
@pytest.mark.parametrize("mask_kind", [None, "bool", "float"])
@pytest.mark.parametrize("tk", [7, 12])
def test_sdpa_matches_math(dtype, tol, mask_kind, tk):
    q, k, v = qkv(dtype, tk=tk)
    mask = None
    if mask_kind == "bool":
        mask = bool_mask(tk=tk)
    elif mask_kind == "float":
        mask = torch.randn(1, 3, 7, tk, generator=torch.Generator().manual_seed(3))
    out = SdpaAttention()(q, k, v, mask)
    ref = MathAttention()(q, k, v, mask)
    assert out.dtype == ref.dtype == dtype and out.shape == (2, 3, 7, 16)
    assert torch.allclose(out.float(), ref.float(), atol=tol, rtol=tol)
    if mask_kind is not None:  # the mask matters (so the comparison above checks its handling)
        assert not torch.allclose(SdpaAttention()(q, k, v).float(), out.float(), atol=tol, rtol=tol)


def test_shape_errors():
    q, k, v = qkv(torch.float32)
    with pytest.raises(ValueError, match=r"expects q, k, v of shape \(B, heads, tokens, head_dim\)"):
        MathAttention()(q[0], k[0], v[0])
    with pytest.raises(ValueError, match="mismatched"):
        SdpaAttention()(q, k[..., :8], v)
    with pytest.raises(ValueError, match="must be bool .* or floating"):
        MathAttention()(q, k, v, torch.ones(7, 7, dtype=torch.long))


def test_backends_are_registered_and_built_by_name():
    reg = default_registry()
    assert {"auto", "math", "sdpa", "xformers"} <= set(reg.names("attention"))
    assert isinstance(attention_backend("math", reg), MathAttention)
    assert isinstance(attention_backend("sdpa", reg), SdpaAttention)
    assert reg.get("attention", "sdpa").plugin == "networks"
    with pytest.raises(ValueError, match=r"unknown attention 'flash'; installed: auto, math, sdpa, xformers"):
        attention_backend("flash", reg)


def test_a_third_party_backend_works_by_name():
    import attrs

    @attrs.frozen(kw_only=True)
    class DoubledParams:
        """Twice sdpa (a recognisable fake)."""

    reg = Registry()
    reg.add("attention", "doubled", DoubledParams, build=lambda params, **ctx: lambda q, k, v, mask=None: 2 * v)
    attend = attention_backend("doubled", reg)
    q, k, v = qkv(torch.float32)
    assert torch.equal(attend(q, k, v), 2 * v)
    layer = MultiHeadSelfAttention(8, 2, attend)
    assert layer(torch.randn(2, 5, 8)).shape == (2, 5, 8)


def test_environment_variable_replaces_auto_only(monkeypatch):
    reg = default_registry()
    monkeypatch.setenv(ATTENTION_ENV, "math")
    assert isinstance(attention_backend("auto", reg), MathAttention)
    assert isinstance(attention_backend("sdpa", reg), SdpaAttention)  # an explicit choice wins
    monkeypatch.setenv(ATTENTION_ENV, "nope")
    with pytest.raises(ValueError, match=rf"unknown attention 'nope'.* \(from \${ATTENTION_ENV}\)"):
        attention_backend("auto", reg)
    monkeypatch.delenv(ATTENTION_ENV)
    assert isinstance(attention_backend("auto", reg), AutoAttention)


def test_auto_uses_sdpa_on_cpu_and_probes_once_per_device_and_dtype(monkeypatch):
    calls = []

    def fake_probe(device, dtype):
        calls.append((device, dtype))
        return False

    monkeypatch.setattr(attn, "_xformers_probe", fake_probe)
    auto_choice.cache_clear()
    try:
        cpu = torch.device("cpu")
        assert auto_choice(cpu, torch.float32) == "sdpa" and calls == []  # no probe off CUDA
        cuda = torch.device("cuda", 0)
        for _ in range(3):
            assert auto_choice(cuda, torch.bfloat16) == "sdpa"
        assert auto_choice(cuda, torch.float16) == "sdpa"
        assert calls == [(cuda, torch.bfloat16), (cuda, torch.float16)]
        monkeypatch.setattr(attn, "_xformers_probe", lambda device, dtype: True)
        assert auto_choice(torch.device("cuda", 1), torch.bfloat16) == "xformers"
        q, k, v = qkv(torch.float32)
        assert isinstance(AutoAttention().backend_for(q), SdpaAttention)
        assert torch.equal(AutoAttention()(q, k, v), SdpaAttention()(q, k, v))
    finally:
        auto_choice.cache_clear()


@pytest.mark.skipif(HAS_XFORMERS, reason="xformers is installed here; the not-installed error cannot be shown")
def test_xformers_not_installed_is_a_clear_error():
    with pytest.raises(ImportError, match=r"attention backend 'xformers' needs the xformers package, which is "
                                          r"not installed: install the extra .*interpgen\[xformers\].*sdpa"):
        attention_backend("xformers", default_registry())


def test_xformers_on_cpu_is_a_clear_error():
    class FakeOps:  # stands in for xformers.ops: the device check comes first
        def memory_efficient_attention(self, *args, **kwargs):
            raise AssertionError("must not be reached on CPU")

    q, k, v = qkv(torch.float32)
    with pytest.raises(RuntimeError, match=r"attention backend 'xformers' cannot run on device cpu: its kernels "
                                           r"need CUDA; run on a CUDA device, or choose attention = \"sdpa\""):
        XformersAttention(FakeOps())(q, k, v)


def test_old_xformers_versions_are_rejected(monkeypatch):
    monkeypatch.setattr(attn.importlib.metadata, "version", lambda name: "0.0.28.post1")
    with pytest.raises(ImportError, match=r"needs xformers >= 0.0.35, found 0.0.28.post1"):
        attn.load_xformers_ops()
    assert attn._parse_version("0.0.35+cu128") == (0, 0, 35) >= attn.XFORMERS_MIN_VERSION


@pytest.mark.skipif(not HAS_CUDA, reason="xformers kernels need CUDA and no CUDA device is present")
@pytest.mark.skipif(not HAS_XFORMERS, reason="xformers is not installed (extra interpgen[xformers])")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("masked", [False, True])
def test_xformers_matches_math_on_cuda(dtype, masked):
    q, k, v = (a.cuda() for a in qkv(dtype, tk=12))
    mask = bool_mask(tk=12).cuda() if masked else None
    out = XformersAttention()(q, k, v, mask)
    ref = MathAttention()(q, k, v, mask)
    assert torch.allclose(out.float(), ref.float(), atol=2e-2, rtol=2e-2)
    auto_choice.cache_clear()
    assert auto_choice(q.device, dtype) == "xformers"


def test_self_attention_layer_is_backend_independent():
    torch.manual_seed(0)
    layer = MultiHeadSelfAttention(12, 3, MathAttention())
    x = torch.randn(2, 5, 12)
    ref = layer(x)
    layer.attend = SdpaAttention()
    assert torch.allclose(layer(x), ref, atol=1e-5)
    with pytest.raises(ValueError, match="width 12 is not divisible by heads=5"):
        MultiHeadSelfAttention(12, 5, MathAttention())
