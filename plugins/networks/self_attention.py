"""Multi-head self-attention over a token sequence, with a pluggable attention backend.

For tokens ``x: (B, T, dim)`` and ``heads`` heads of size ``d = dim / heads``:

    [q, k, v] = x W_qkv + b_qkv          (each split into heads: (B, heads, T, d))
    out       = attend(q, k, v, mask) W_o + b_o,

where ``attend`` is a backend of :mod:`.attention` (``softmax(q k^T / sqrt(d) + M) v``).
"""

from __future__ import annotations

from torch import Tensor, nn

from .attention import AttendFn


class MultiHeadSelfAttention(nn.Module):
    """``x: (B, T, dim) -> (B, T, dim)``; ``attend`` is any backend callable."""

    def __init__(self, dim: int, heads: int, attend: AttendFn):
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention width {dim} is not divisible by heads={heads}")
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attend = attend

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        out = self.attend(qkv[0], qkv[1], qkv[2], mask)
        return self.proj(out.transpose(1, 2).reshape(batch, tokens, dim))
