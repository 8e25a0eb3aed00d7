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
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight", pad_inches=0.1)  # titles and labels kept
    atomic_write_bytes(Path(path), buffer.getvalue())


def image_grid(images: Tensor, *, low: float, high: float, cols: int | None = None) -> Tensor:
    """Tile ``images (N, C, H, W)`` into one ``(H_total, W_total, C)`` array in [0, 1], ``cols``
    images a row (default: a square): values are clipped to ``[low, high]`` (the data's range)
    and mapped linearly to [0, 1]."""
    n, c, h, w = images.shape
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    scaled = ((images.float().clamp(low, high) - low) / max(high - low, 1e-12))
    canvas = torch.ones(c, rows * (h + 1) + 1, cols * (w + 1) + 1)
    for i in range(n):
        r, q = divmod(i, cols)
        canvas[:, 1 + r * (h + 1):1 + r * (h + 1) + h, 1 + q * (w + 1):1 + q * (w + 1) + w] = scaled[i]
    return canvas.permute(1, 2, 0)


def class_rows(images: Tensor, labels: Tensor, per_row: int, *, blank: float) -> tuple[Tensor, list[int], int]:
    """One row per class present in ``labels``, in class order, of at most ``per_row`` images (as
    many as the largest class has, up to that); a class with fewer images is padded with ``blank``
    images. Returns the rows stacked ``(K * width, C, H, W)``, the classes top to bottom, and the
    row width."""
    classes = sorted(set(int(k) for k in labels.tolist()))
    per_row = min(per_row, max(int((labels == k).sum()) for k in classes))
    rows = []
    for k in classes:
        mine = images[labels == k][:per_row]
        pad = images.new_full((per_row - mine.shape[0], *images.shape[1:]), blank)
        rows.append(torch.cat([mine, pad]))
    return torch.cat(rows), classes, per_row


def _class_name(k: int, names: Sequence[str] | None) -> str:
    return str(names[k]) if names is not None and 0 <= k < len(names) else f"class {k}"


def samples_figure(samples: Tensor, *, reference: Tensor | None = None, title: str = "",
                   labels: Tensor | None = None, class_names: Sequence[str] | None = None,
                   max_images: int = GRID_IMAGES, per_class: int = 16) -> Any:
    """The figure of ``samples`` (data space), or None when the event shape has no picture.

    Points: a scatter over the ``reference`` data (grey), coloured by class with a legend when
    ``labels`` are given. Images: a grid of at most ``max_images`` (clipped to the reference's
    range, or the samples' own), or with ``labels`` one row of at most ``per_class`` images per
    class, each row named on the left (``class_names[k]``, else ``class k``)."""
    kind = picture_kind(samples.shape[1:])
    if kind is None:
        return None
    figure_cls = _figure()
    x = samples.detach().float().cpu()
    if kind == "scatter":
        fig = figure_cls(figsize=(5, 5))
        ax = fig.add_subplot()
        if reference is not None:
            ref = reference.detach().float().cpu().numpy()
            ax.scatter(ref[:, 0], ref[:, 1], s=2, c="0.7", label="data")
        groups = [(x, "samples")] if labels is None else [
            (x[labels.cpu() == k], _class_name(k, class_names)) for k in sorted(set(labels.tolist()))]
        for points, name in groups:
            ax.scatter(points[:, 0].numpy(), points[:, 1].numpy(), s=2, alpha=0.6, label=name,
                       **({"c": "tab:blue"} if labels is None else {}))
        ax.legend(loc="upper right", markerscale=4)
        ax.set_aspect("equal", adjustable="datalim")
    else:
        bounds = reference if reference is not None else x
        low, high = float(bounds.min()), float(bounds.max())
        if labels is None:
            grid = image_grid(x[:max_images], low=low, high=high)
        else:
            rows, classes, width = class_rows(x, labels.cpu(), per_class, blank=high)
            grid = image_grid(rows, low=low, high=high, cols=width)
        size = min(12.0, max(3.0, grid.shape[1] / 30))  # inches: small images are drawn larger
        fig = figure_cls(figsize=(size, size * grid.shape[0] / grid.shape[1]))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.imshow((grid[..., 0] if grid.shape[-1] == 1 else grid).numpy(), cmap="gray", vmin=0, vmax=1,
                  interpolation="nearest")
        ax.set_xticks([])
        if labels is None:
            ax.set_yticks([])
        else:  # one tick per row, at its centre, named by its class
            h = x.shape[2]
            ax.set_yticks([1 + r * (h + 1) + (h - 1) / 2 for r in range(len(classes))],
                          [_class_name(k, class_names) for k in classes])
            ax.tick_params(axis="y", length=0)
        for side in ax.spines.values():
            side.set_visible(False)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def save_samples_picture(path: str | Path, samples: Tensor, *, reference: Tensor | None = None,
                         title: str = "", **options: Any) -> bool:
    """Draw ``samples`` with :func:`samples_figure` (``options``: its ``labels``, ``class_names``,
    ``max_images``, ``per_class``) to ``path``. Returns False (and writes nothing) when the event
    shape has no picture."""
    fig = samples_figure(samples, reference=reference, title=title, **options)
    if fig is None:
        return False
    _save(fig, Path(path))
    return True


def loss_figure(records: Sequence[dict[str, Any]]) -> Any:
    """``loss`` against ``step`` from metrics records, or None when there is nothing to plot. A
    log scale when every loss is > 0, with plain numbers at about five ticks spread evenly (in
    log) over the losses' range (powers of ten over two decades or more), so the axis is labelled
    however narrow the range is."""
    points = [(r["step"], r["loss"]) for r in records if "loss" in r and "step" in r]
    if not points:
        return None
    steps, losses = zip(*points)
    fig = _figure()(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.plot(list(steps), list(losses), lw=1.2)
    finite = [v for v in losses if math.isfinite(v)]
    if finite and all(v > 0 for v in finite):
        from matplotlib.ticker import NullFormatter, NullLocator

        low, high = min(finite), max(finite)
        ax.set_yscale("log")  # plain tick labels: mathtext ones take a second to lay out
        if high / low >= 100:  # powers of ten
            ticks = [10.0 ** k for k in range(math.ceil(math.log10(low)), math.floor(math.log10(high)) + 1)]
        else:  # two significant digits
            ticks = sorted({float(f"{low * (high / low) ** (i / 4):.2g}") for i in range(5)})
        ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
        ax.yaxis.set_minor_locator(NullLocator())
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def save_loss_curve(path: str | Path, records: Sequence[dict[str, Any]]) -> bool:
    """Draw :func:`loss_figure` to ``path``. Returns False when there is nothing to plot."""
    fig = loss_figure(records)
    if fig is None:
        return False
    _save(fig, Path(path))
    return True
