"""The training engine: Accelerate training of anything :class:`~interpgen.protocols.Trainable`.

The kernel never imports this package; :meth:`interpgen.pipeline.Pipeline.fit` reaches it through
the registry (kind ``trainer``, name ``accelerate``, registered by the built-in ``accelerate``
plugin). Plugins may use what this module exports and nothing else of the package:

* :func:`fit`, :class:`Trainer`, :class:`TrainingError`, :class:`TrainingInterrupted`, :class:`LaunchError`;
* the run directory: :func:`start_run`, :func:`atomic_write_bytes`, :func:`read_metrics`,
  :func:`latest_checkpoint`, :func:`load_checkpoint`, :func:`load_run` (what ``Pipeline.load``
  reads), and the file names ``RECIPE``, ``METRICS``, ``LOSS_CURVE``, ``SAMPLES_DIR``.
"""

from __future__ import annotations

from interpgen.protocols import CheckpointError
from interpgen.train.checkpoint import latest_checkpoint, load_checkpoint, load_run
from interpgen.train.distributed import LaunchError
from interpgen.train.loop import Trainer, TrainingError, TrainingInterrupted, fit
from interpgen.train.run_dir import (LOSS_CURVE, METRICS, RECIPE, SAMPLES_DIR, atomic_write_bytes, read_metrics,
                                     start_run)

__all__ = ["CheckpointError", "LaunchError", "LOSS_CURVE", "METRICS", "RECIPE", "SAMPLES_DIR", "Trainer",
           "TrainingError", "TrainingInterrupted", "atomic_write_bytes", "fit", "latest_checkpoint",
           "load_checkpoint", "load_run", "read_metrics", "start_run"]
