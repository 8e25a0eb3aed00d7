"""The built-in trainer: kind ``trainer``, name ``accelerate`` — the engine of :mod:`interpgen.train`.

``Pipeline.fit`` looks its trainer up by ``train.trainer`` (default ``accelerate``) instead of
importing the engine, so the kernel stays free of it and a plugin can offer another trainer: a
registered params class whose instance is called as
``trainer(pipe, train, run_dir=, progress=, resume=, overwrite=) -> list[float]``, with
``trainer.load_state(run_dir, checkpoint=None) -> dict`` to read back what it wrote.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from interpgen import hookimpl
from interpgen.registry import Registry


@attrs.frozen(kw_only=True)
class AccelerateTrainer:
    """Accelerate training on one CPU, one GPU, several GPUs or machines (docs/training.md)."""

    def __call__(self, pipe: Any, train: Any, *, run_dir: str | Path | None = None, progress: bool = True,
                 resume: bool = False, overwrite: bool = False) -> list[float]:
        from interpgen.train import fit

        return fit(pipe, train, run_dir=run_dir, progress=progress, resume=resume, overwrite=overwrite)

    def load_state(self, run_dir: str | Path, checkpoint: str | Path | None = None) -> dict[str, Any]:
        """The state the named checkpoint (a checkpoint folder or an exported ``.safetensors`` file)
        holds, else the run's newest checkpoint, else its ``weights.safetensors``: checked against
        its SHA-256 and read from safetensors files, so nothing in them is unpickled or executed."""
        from interpgen.train import load_run

        return load_run(Path(run_dir), checkpoint)


@hookimpl
def interpgen_register(registry: Registry) -> None:
    registry.add("trainer", "accelerate", AccelerateTrainer)
