"""Run-directory pictures, on the training engine's events (``interpgen_train_event``):

* ``RUN/samples/step_NNNNNNNN.png``: samples (a scatter over the data for 2D points, a grid for
  images) at every logged step that is a multiple of ``train.sample_every``, and at the end;
* ``RUN/loss_curve.png``: the logged loss against the step, redrawn with each picture.

``train.pictures = false`` turns both off. It also registers the writer ``.png`` (registry kind
``writer``, keyed by file suffix): ``interpgen sample RUN --output FILE.png`` draws the samples
(:func:`build_png_writer`). Drawing uses :mod:`.plots` (matplotlib, Agg).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import torch

from interpgen import hookimpl
from interpgen.hookspecs import TrainEvent
from interpgen.registry import Registry
from interpgen.validators import positive_int


@attrs.frozen(kw_only=True)
class PngPicture:
    """A picture of samples: an image grid, points over the data, or one row per class."""

    #: Images a grid shows at most (a model without classes).
    max_images: int = attrs.field(default=256, validator=positive_int)
    #: Images each class's row shows at most (a class-conditional model).
    per_class: int = attrs.field(default=16, validator=positive_int)


def _data(pipe: Any, registry: Registry, num: int) -> tuple[torch.Tensor | None, Any, str]:
    """``num`` rows of the run's data in data space and its class names, rebuilt from the
    recipe; without the data (a moved file, the user's own source) None and the reason."""
    entry = registry.entry_for(pipe.recipe.data)
    if entry is None:
        return None, None, "the run's data is not a registered data set"
    try:
        source = entry.create(pipe.recipe.data, root=pipe.root, registry=registry)
        rows = source.reference(num, generator=torch.Generator().manual_seed(0))
    except (OSError, ValueError, RuntimeError, ImportError) as exc:
        return None, None, f"{type(exc).__name__}: {exc}"
    return pipe.to_data_space(rows.to(torch.float32)), getattr(source, "class_names", None) or None, ""


def build_png_writer(params: PngPicture, *, pipe: Any, registry: Registry, **context: Any) -> Any:
    """``write(path, samples, title="") -> str`` for ``pipe``'s samples (a
    :class:`~interpgen.pipeline.Samples` in data space): draws the picture of
    :func:`.plots.samples_figure` over the run's data, one row per class when the samples have
    labels, and says what it drew. Refuses, before any sampling, an event shape that has no
    picture."""
    from . import plots

    kind = plots.picture_kind(pipe.event_shape)
    if kind is None:
        raise ValueError(f"samples of shape {tuple(pipe.event_shape)} have no picture (points need (D,) with "
                         "D >= 2, images (1 or 3, H, W)); write them to a .npy file")

    def write(path: Path, samples: Any, title: str = "") -> str:
        x, labels = samples.x.detach().cpu(), samples.labels
        reference, names, missing = _data(pipe, registry, min(x.shape[0], 2000) if kind == "scatter" else 256)
        plots.save_samples_picture(path, x, reference=reference, title=title, labels=labels, class_names=names,
                                   max_images=params.max_images, per_class=params.per_class)
        if kind == "scatter":
            what = f"a scatter over {reference.shape[0]} points of the data" if reference is not None else "a scatter"
        elif labels is not None:
            what = f"one row per class, at most {params.per_class} images each"
        else:
            what = f"an image grid of {min(x.shape[0], params.max_images)} of them"
        return f"a picture: {what}" + (f" (no data drawn: {missing})" if missing else "")

    return write


def _due(event: TrainEvent) -> bool:
    cfg = event.train
    if event.run_dir is None or not getattr(cfg, "pictures", False) or not hasattr(event.pipe, "sample"):
        return False
    if event.kind == "end":
        return True
    if event.kind != "log":
        return False
    every = getattr(cfg, "sample_every", 0)
    return bool(every) and event.step % every == 0 and event.step != cfg.steps


@hookimpl
def interpgen_train_event(event: TrainEvent) -> None:
    if not _due(event):
        return
    from interpgen.train import LOSS_CURVE, SAMPLES_DIR, read_metrics

    from . import plots

    pipe, run, seed = event.pipe, event.run_dir, event.train.seed
    num = plots.picture_size(pipe.event_shape)
    if num:
        samples = pipe.sample(num, seed=seed).x
        try:
            reference = pipe.to_data_space(pipe.data.reference(num, generator=torch.Generator().manual_seed(seed)))
        except Exception:  # a source without reference data still gets its samples drawn
            reference = None
        plots.save_samples_picture(run / SAMPLES_DIR / f"step_{event.step:08d}.png", samples.cpu(),
                                   reference=reference, title=f"step {event.step}")
    plots.save_loss_curve(run / LOSS_CURVE, read_metrics(run))


@hookimpl
def interpgen_register(registry: Registry) -> None:
    registry.add("writer", ".png", PngPicture, build=build_png_writer)
