"""Run-directory pictures, on the training engine's events (``interpgen_train_event``):

* ``RUN/samples/step_NNNNNNNN.png``: samples (a scatter over the data for 2D points, a grid for
  images) at every logged step that is a multiple of ``train.sample_every``, and at the end;
* ``RUN/loss_curve.png``: the logged loss against the step, redrawn with each picture.

``train.pictures = false`` turns both off. Drawing uses :mod:`.plots` (matplotlib, Agg).
"""

from __future__ import annotations

import torch

from interpgen import hookimpl
from interpgen.hookspecs import TrainEvent


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
