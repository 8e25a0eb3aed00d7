"""Run directories and checkpoints that survive crashes.

Layout (docs/training.md)::

    RUN/recipe.toml                   the resolved recipe (round-trips)
    RUN/metrics.jsonl                 one JSON object per logged step
    RUN/loss_curve.png                the loss against the step
    RUN/samples/step_00003000.png     samples at intervals (scatter for points, grid for images)
    RUN/processes.json                world size and each process's final weight hash
    RUN/tensorboard/                  TensorBoard events (when tensorboard is installed)
    RUN/checkpoints/step_00003000.pt  model, EMA, optimiser, step, data affine map
    RUN/checkpoints/latest            the file name of the newest complete checkpoint

Every file is written to a temporary name in the same folder, flushed to disk and renamed over
the old one, so a process killed mid-write leaves the previous version intact. ``latest`` is
updated only after its checkpoint is complete. A checkpoint file is a short header (format,
SHA-256 and length of the payload) followed by the ``torch.save`` payload, so a truncated or
altered file is reported instead of loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

import torch

from interpgen.train.checkpoint import (CHECKPOINT_DIR, LATEST, RECIPE, CheckpointError, checkpoint_step,  # noqa: F401
                                  encode_checkpoint, latest_checkpoint, list_checkpoints, load_checkpoint)

METRICS = "metrics.jsonl"
LOSS_CURVE = "loss_curve.png"
SAMPLES_DIR = "samples"
PROCESSES = "processes.json"
TENSORBOARD = "tensorboard"
#: Test hook: ``"STEP:SECONDS"`` pauses the save of checkpoint STEP for SECONDS after its
#: temporary file is complete and before the rename (the kill-during-save test uses it).
PAUSE_ENV = "INTERPGEN_TEST_SAVE_PAUSE"

#: Recipe fields a resumed run may change: extend it, or log and save at other intervals.
RESUMABLE_CHANGES = ("train.steps", "train.log_every", "train.checkpoint_every",
                     "train.keep_checkpoints", "train.sample_every")


# -- atomic files ------------------------------------------------------------------------------
def atomic_write_bytes(path: Path, data: bytes, *, pause: float = 0.0) -> None:
    """Write ``data`` to ``path`` so readers see either the old file or the whole new one
    (temporary file in the same folder, fsync, rename, fsync of the folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if pause > 0:
            time.sleep(pause)
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


def remove_temporaries(run: Path) -> list[Path]:
    """Delete temporary files left by a process killed while writing; returns them."""
    found = []
    for folder in (Path(run), Path(run) / CHECKPOINT_DIR, Path(run) / SAMPLES_DIR):
        if folder.is_dir():
            for p in folder.glob(".*.tmp"):
                p.unlink(missing_ok=True)
                found.append(p)
    return found


# -- checkpoints -------------------------------------------------------------------------------
def checkpoint_path(run: Path, step: int) -> Path:
    return Path(run) / CHECKPOINT_DIR / f"step_{step:08d}.pt"


def save_checkpoint(run: Path, step: int, state: dict[str, Any], *, keep: int) -> Path:
    """Save ``state`` as the checkpoint of ``step``, point ``latest`` at it and delete all but
    the newest ``keep`` checkpoints (only after the new one is complete)."""
    path = checkpoint_path(run, step)
    pause = 0.0
    hook = os.environ.get(PAUSE_ENV)
    if hook:
        at, _, seconds = hook.partition(":")
        pause = float(seconds) if int(at) == step else 0.0
    atomic_write_bytes(path, encode_checkpoint({**state, "step": step}), pause=pause)
    atomic_write_bytes(path.parent / LATEST, path.name.encode())
    for old in list_checkpoints(run)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_for_resume(run: Path) -> dict[str, Any] | None:
    """The newest checkpoint's state, or None when the run has none. A damaged newest
    checkpoint is an error (never skipped silently): the message names the file, what is
    wrong, and the previous good checkpoint to fall back to by deleting the damaged one."""
    if not list_checkpoints(run):
        return None
    path = latest_checkpoint(run)
    try:
        return load_checkpoint(path)
    except CheckpointError as exc:
        older = [p for p in list_checkpoints(run) if p != path]
        hint = (f"; delete it to resume from {older[-1].name}, the previous checkpoint" if older
                else "; no older checkpoint is left, so the run must start again (--overwrite)")
        raise CheckpointError(f"cannot resume: {exc}{hint}") from None


# -- metrics ------------------------------------------------------------------------------------
def append_metrics(run: Path, record: dict[str, Any]) -> None:
    with open(Path(run) / METRICS, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def read_metrics(run: Path) -> list[dict[str, Any]]:
    """Every complete record of ``metrics.jsonl`` (a torn last line from a crash is skipped)."""
    path = Path(run) / METRICS
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def truncate_metrics(run: Path, step: int) -> None:
    """Keep only the records up to ``step`` (a resumed run logs the later steps again)."""
    path = Path(run) / METRICS
    if not path.is_file():
        return
    kept = [r for r in read_metrics(run) if int(r.get("step", 0)) <= step]
    atomic_write_bytes(path, "".join(json.dumps(r) + "\n" for r in kept).encode())


# -- whole run directories ---------------------------------------------------------------------
def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else key))
        return out
    return {prefix: value}


def recipe_differences(saved: str, new: str) -> list[str]:
    """Dotted fields that differ between two recipe TOML texts, as ``key: old -> new``
    (``(absent)`` where one side lacks the key), sorted by key."""
    old_flat, new_flat = _flatten(tomllib.loads(saved)), _flatten(tomllib.loads(new))
    lines = []
    for key in sorted(old_flat.keys() | new_flat.keys()):
        a, b = old_flat.get(key, "(absent)"), new_flat.get(key, "(absent)")
        if a != b or type(a) is not type(b):
            lines.append(f"{key}: {a!r} -> {b!r}" if isinstance(a, str) or isinstance(b, str) else f"{key}: {a} -> {b}")
    return lines


def check_run_dir(run: Path, recipe_text: str, *, resume: bool, overwrite: bool) -> str:
    """Decide what to do with ``run`` before anything is written: ``"new"`` (empty or absent),
    ``"resume"`` or ``"overwrite"``. Raises ValueError for a run directory holding another run
    (without --resume/--overwrite), a folder that is not a run, and a resume whose recipe
    differs in fields other than :data:`RESUMABLE_CHANGES` (each difference is listed)."""
    run = Path(run)
    saved = run / RECIPE
    if overwrite:
        return "overwrite" if run.exists() else "new"
    if saved.is_file() or (run / CHECKPOINT_DIR).is_dir():  # a run, with or without a recipe file
        if not resume:
            raise ValueError(f"{run} already holds a run; pass --resume to continue it or --overwrite to replace it")
        if not (saved.is_file() and recipe_text):
            return "resume"
        try:
            differences = recipe_differences(saved.read_text(encoding="utf-8"), recipe_text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"cannot resume: the saved recipe {saved} is not valid TOML ({exc})") from None
        fixed = [d for d in differences if d.split(":", 1)[0] not in RESUMABLE_CHANGES]
        if fixed:
            raise ValueError(f"cannot resume {run}: the recipe differs from the saved one in "
                             + "; ".join(fixed) + f" (only {', '.join(RESUMABLE_CHANGES)} may change on resume)")
        return "resume"
    if run.exists() and (not run.is_dir() or any(run.iterdir())):
        raise ValueError(f"{run} is not empty and is not an interpgen run; choose another --output or pass --overwrite")
    return "new"


def clear_run(run: Path) -> None:
    """Delete what a run writes (recipe, checkpoints, metrics, pictures); other files stay."""
    run = Path(run)
    for name in (RECIPE, METRICS, LOSS_CURVE, PROCESSES):
        (run / name).unlink(missing_ok=True)
    for name in (CHECKPOINT_DIR, SAMPLES_DIR, TENSORBOARD):
        if (run / name).is_dir():
            shutil.rmtree(run / name)
    remove_temporaries(run)


def start_run(run: Path, files: dict[str, str], accelerator: Any, *, resume: bool, overwrite: bool) -> bool:
    """Check and prepare the run directory ``run`` in every process, then (main process only)
    clear it for ``overwrite``, create it, drop temporaries of a killed writer and write ``files``
    (``recipe.toml``): the one place a run directory is started, for ``interpgen train`` and
    ``Pipeline.fit(run_dir=...)`` alike. Returns whether the run resumes."""
    run = Path(run)
    plan = check_run_dir(run, files.get(RECIPE, ""), resume=resume, overwrite=overwrite)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if plan == "overwrite":
            clear_run(run)
        run.mkdir(parents=True, exist_ok=True)
        remove_temporaries(run)
        for name, text in files.items():
            atomic_write_bytes(run / name, text.encode())
    accelerator.wait_for_everyone()
    return plan == "resume"
