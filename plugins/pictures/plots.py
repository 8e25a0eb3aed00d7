"""Pictures for the run directory: samples (a scatter for points, a grid for images) and the
loss curve. matplotlib with the Agg backend; every picture is written atomically."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from interpgen.train import atomic_write_bytes

#: How many samples a picture shows: points for a scatter, images for a grid.
SCATTER_POINTS = 2000
GRID_IMAGES = 64


def picture_kind(event_shape: Sequence[int]) -> str | None:
    """``"scatter"`` for vectors of 2 or more coordinates (the first two are drawn), ``"grid"``
    for images ``(C, H, W)`` with C in {1, 3}, None when there is no sensible picture."""
    shape = tuple(event_shape)
    if len(shape) == 1 and shape[0] >= 2:
        return "scatter"
    if len(shape) == 3 and shape[0] in (1, 3):
        return "grid"
    return None


def picture_size(event_shape: Sequence[int]) -> int:
    """Samples needed for the picture of this event shape (0 when there is none)."""
    kind = picture_kind(event_shape)
    return SCATTER_POINTS if kind == "scatter" else GRID_IMAGES if kind == "grid" else 0


def _figure():
    """matplotlib's Figure class: a Figure made directly (not through pyplot) renders PNG with
    Agg whatever the interactive backend, and never opens a window."""
    from matplotlib.figure import Figure

    return Figure


def _save(fig: Any, path: Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(Path(path), buffer.getvalue())


def image_grid(images: Tensor, *, low: float, high: float) -> Tensor:
    """Tile ``images (N, C, H, W)`` into one ``(H_total, W_total, C)`` array in [0, 1]: values
    are clipped to ``[low, high]`` (the data's range) and mapped linearly to [0, 1]."""
    n, c, h, w = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    scaled = ((images.float().clamp(low, high) - low) / max(high - low, 1e-12))
    canvas = torch.ones(c, rows * (h + 1) + 1, cols * (w + 1) + 1)
    for i in range(n):
        r, q = divmod(i, cols)
        canvas[:, 1 + r * (h + 1):1 + r * (h + 1) + h, 1 + q * (w + 1):1 + q * (w + 1) + w] = scaled[i]
    return canvas.permute(1, 2, 0)


def save_samples_picture(path: str | Path, samples: Tensor, *, reference: Tensor | None = None,
                         title: str = "") -> bool:
    """Draw ``samples`` (data space): a scatter over the ``reference`` data for points, an image
    grid for images (clipped to the reference's range, or the samples' own). Returns False (and
    writes nothing) when the event shape has no picture."""
    kind = picture_kind(samples.shape[1:])
    if kind is None:
        return False
    figure_cls = _figure()
    x = samples.detach().float().cpu()
    if kind == "scatter":
        fig = figure_cls(figsize=(5, 5))
        ax = fig.add_subplot()
        if reference is not None:
            ref = reference.detach().float().cpu().numpy()
            ax.scatter(ref[:, 0], ref[:, 1], s=2, c="0.7", label="data")
        ax.scatter(x[:, 0].numpy(), x[:, 1].numpy(), s=2, c="tab:blue", alpha=0.6, label="samples")
        ax.legend(loc="upper right", markerscale=4)
        ax.set_aspect("equal", adjustable="datalim")
    else:
        bounds = reference if reference is not None else x
        grid = image_grid(x, low=float(bounds.min()), high=float(bounds.max()))
        size = max(3.0, grid.shape[1] / 40)
        fig = figure_cls(figsize=(size, size * grid.shape[0] / grid.shape[1]))
        ax = fig.add_axes((0, 0, 1, 0.9 if title else 1))
        ax.imshow((grid[..., 0] if grid.shape[-1] == 1 else grid).numpy(), cmap="gray", vmin=0, vmax=1,
                  interpolation="nearest")
        ax.axis("off")
    if title:
        ax.set_title(title)
    _save(fig, Path(path))
    return True


def save_loss_curve(path: str | Path, records: Sequence[dict[str, Any]]) -> bool:
    """Plot ``loss`` against ``step`` from metrics records (log scale when every loss is > 0).
    Returns False when there is nothing to plot."""
    points = [(r["step"], r["loss"]) for r in records if "loss" in r and "step" in r]
    if not points:
        return False
    steps, losses = zip(*points)
    fig = _figure()(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.plot(list(steps), list(losses), lw=1.2)
    if all(v > 0 for v in losses if v == v):
        from matplotlib.ticker import LogFormatter, NullFormatter

        ax.set_yscale("log")  # plain tick labels: mathtext ones take a second to lay out
        ax.yaxis.set_major_formatter(LogFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, Path(path))
    return True
