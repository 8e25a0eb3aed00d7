"""Run directories and checkpoints that survive crashes.

Layout::

    RUN/recipe.toml                  the resolved recipe (round-trips)
    RUN/metrics.jsonl                one JSON object per logged step
    RUN/checkpoints/step_00003000.pt model, EMA, optimiser, step, data affine map
    RUN/checkpoints/latest           the file name of the newest complete checkpoint

Every file is written to a temporary name in the same folder, flushed to disk and renamed over
the old one, so a process killed mid-write leaves the previous version intact. ``latest`` is
updated only after its checkpoint is complete.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_DIR = "checkpoints"
LATEST = "latest"
RECIPE = "recipe.toml"
METRICS = "metrics.jsonl"
_NAME = re.compile(r"^step_(\d{8})\.pt$")


class CheckpointError(RuntimeError):
    """A run directory or checkpoint is missing, damaged or of another run."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see either the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_checkpoint(run: Path, step: int, state: dict[str, Any], *, keep: int) -> Path:
    """Save ``state`` as the checkpoint of ``step``, point ``latest`` at it, keep the newest ``keep``."""
    folder = Path(run) / CHECKPOINT_DIR
    path = folder / f"step_{step:08d}.pt"
    buffer = io.BytesIO()
    torch.save({"format": "interpgen-checkpoint-1", "step": step, **state}, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    atomic_write_bytes(folder / LATEST, path.name.encode())
    for old in list_checkpoints(run)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(run: Path) -> list[Path]:
    folder = Path(run) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def latest_checkpoint(run: Path) -> Path:
    folder = Path(run) / CHECKPOINT_DIR
    pointer = folder / LATEST
    if not pointer.is_file():
        raise CheckpointError(f"no checkpoint in {Path(run).resolve()} (missing {pointer.name}); was the run trained?")
    path = folder / pointer.read_text().strip()
    if not path.is_file():
        raise CheckpointError(f"{pointer} names {path.name}, which does not exist")
    return path


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint, reporting a damaged or foreign file clearly."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} is damaged or not an interpgen checkpoint: "
                              f"{type(exc).__name__}: {exc}") from None
    if not isinstance(state, dict) or state.get("format") != "interpgen-checkpoint-1":
        raise CheckpointError(f"checkpoint {path} is not an interpgen checkpoint (format marker missing)")
    return state


def append_metrics(run: Path, record: dict[str, Any]) -> None:
    with open(Path(run) / METRICS, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
