"""Run directories and checkpoints that survive crashes and operators (docs/training.md).

Every file is written to a temporary name in the same folder, flushed and renamed, so a process
killed mid-write leaves the previous version intact. A checkpoint is written whole into the
folder ``.step_NNNNNNNN.tmp`` (Accelerate's ``save_state`` and our files, manifest last) and
renamed into place; ``latest`` moves only after that, and old checkpoints go only after it.
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

from interpgen.train import guard
from interpgen.train.checkpoint import (CHECKPOINT_DIR, EXPORT, LATEST, MODEL, RECIPE, CheckpointError,  # noqa: F401
                                        checkpoint_step, latest_checkpoint, list_checkpoints, load_checkpoint,
                                        old_format_error, trainer_file, verify, write_manifest, write_state)

METRICS = "metrics.jsonl"
LOSS_CURVE = "loss_curve.png"
SAMPLES_DIR = "samples"
PROCESSES = "processes.json"
TRACKERS = "trackers"
#: Test hook: ``"STEP:SECONDS"`` pauses the save of checkpoint STEP for SECONDS after its
#: temporary folder is complete and before the rename (the kill-during-save test uses it).
PAUSE_ENV = "INTERPGEN_TEST_SAVE_PAUSE"

#: Recipe fields a resumed run may change: extend it, log and save at other intervals, trackers.
RESUMABLE_CHANGES = ("train.steps", "train.log_every", "train.checkpoint_every",
                     "train.keep_checkpoints", "train.sample_every", "train.log_with")


def io_error(what: str, path: Path, exc: OSError) -> CheckpointError:
    """One message for a failed read or write: the file and the system's reason."""
    return CheckpointError(f"cannot {what} {exc.filename or path}: {exc.strerror or exc}")


# -- atomic files ------------------------------------------------------------------------------
def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so readers see either the old file or the whole new one
    (temporary file in the same folder, fsync, rename, fsync of the folder). An OSError (full
    disk, read-only folder) becomes one CheckpointError naming the file."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise io_error("write", path, exc) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
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
    """Delete temporary files and checkpoint folders left by a process killed while writing."""
    found = []
    for folder in (Path(run), Path(run) / CHECKPOINT_DIR, Path(run) / SAMPLES_DIR):
        if folder.is_dir():
            for p in folder.glob(".*.tmp"):
                shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
                found.append(p)
    return found


# -- checkpoints -------------------------------------------------------------------------------
def checkpoint_path(run: Path, step: int) -> Path:
    return Path(run) / CHECKPOINT_DIR / f"step_{step:08d}"


def _agree(accelerator: Any, error: str | None) -> None:
    """Every process learns whether any failed (so none waits for a save that will not come)."""
    if accelerator.num_processes > 1:
        from accelerate.utils import gather_object

        errors = [e for e in gather_object([error]) if e]
        error = errors[0] if errors else None
    if error:
        raise CheckpointError(error)


def save_checkpoint(accelerator: Any, run: Path, step: int, trainable: dict[str, Any], trainer: dict[str, Any], *,
                    model: dict[str, Any], keep: int) -> Path:
    """Save the checkpoint of ``step`` (every process calls it): Accelerate's ``save_state`` and
    each process's ``trainer`` state into ``.step_NNNNNNNN.tmp``, then (main process) the
    ``trainable`` state (tensors of ``model`` as references), the manifest, the rename, ``latest``
    and the removal of all but the newest ``keep``. A failure anywhere leaves the last good
    checkpoint and is one CheckpointError on every process."""
    final, main = checkpoint_path(run, step), accelerator.is_main_process
    tmp = final.with_name(f".{final.name}.tmp")
    error = None
    try:
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
    except OSError as exc:
        error = str(io_error("write the checkpoint", tmp, exc))
    _agree(accelerator, error)
    try:
        accelerator.save_state(str(tmp))
        write_state(tmp / trainer_file(accelerator.process_index), trainer)
    except (OSError, RuntimeError) as exc:
        error = f"cannot save the checkpoint {final}: {getattr(exc, 'strerror', None) or exc}"
    _agree(accelerator, error)
    if main:
        try:
            write_state(tmp / "trainable.safetensors", trainable, model=model)
            write_manifest(tmp, step)
            hook = os.environ.get(PAUSE_ENV, "")
            if hook.partition(":")[0] == str(step):
                time.sleep(float(hook.partition(":")[2]))
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            _fsync_dir(final.parent)
        except (OSError, RuntimeError) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            error = f"cannot save the checkpoint {final}: {getattr(exc, 'strerror', None) or exc}"
    _agree(accelerator, error)
    if main:
        atomic_write_bytes(final.parent / LATEST, final.name.encode())
        for old in list_checkpoints(run)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_for_resume(run: Path) -> Path | None:
    """The newest checkpoint, fully checked against its manifest, or None when the run has none.
    A damaged newest checkpoint is an error (never skipped silently): the message names the file,
    what is wrong, and the previous checkpoint to fall back to by deleting the damaged one."""
    old = old_format_error(run)
    if old is not None:
        raise CheckpointError(f"cannot resume: {old}")
    if not list_checkpoints(run):
        return None
    path = latest_checkpoint(run)
    try:
        verify(path)
    except CheckpointError as exc:
        older = [p for p in list_checkpoints(run) if p != path]
        hint = (f"; delete it to resume from {older[-1].name}, the previous checkpoint" if older
                else "; no older checkpoint is left, so the run must start again (--overwrite)")
        raise CheckpointError(f"cannot resume: {exc}{hint}") from None
    return path


# -- metrics ------------------------------------------------------------------------------------
def append_metrics(run: Path, record: dict[str, Any]) -> None:
    try:
        with open(Path(run) / METRICS, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
    except OSError as exc:
        raise io_error("write", Path(run) / METRICS, exc) from None


def metrics_tracker(run: Path) -> Any:
    """``metrics.jsonl`` as one of Accelerate's trackers: ``accelerator.log`` appends a row."""
    from accelerate.tracking import GeneralTracker

    class MetricsFile(GeneralTracker):
        name, requires_logging_directory = "metrics.jsonl", False
        tracker = Path(run) / METRICS

        def log(self, values: dict[str, Any], step: int | None = None, **kwargs: Any) -> None:
            append_metrics(run, {"step": step, **values})

    return MetricsFile()


def export_weights(run: Path, state: dict[str, Any]) -> None:
    """``RUN/weights.safetensors``: the whole state in one file (written atomically)."""
    path = Path(run) / EXPORT
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write_state(tmp, state)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise io_error("write", path, exc) from None


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
    guard.check_lock(run)
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
    if run.exists() and (not run.is_dir() or any(p.name != guard.LOCK for p in run.iterdir())):
        raise ValueError(f"{run} is not empty and is not an interpgen run; choose another --output or pass --overwrite")
    return "new"


def clear_run(run: Path) -> None:
    """Delete what a run writes (recipe, checkpoints, metrics, pictures); other files stay."""
    run = Path(run)
    for name in (RECIPE, METRICS, LOSS_CURVE, PROCESSES, EXPORT):
        (run / name).unlink(missing_ok=True)
    for name in (CHECKPOINT_DIR, SAMPLES_DIR, TRACKERS, "tensorboard"):
        if (run / name).is_dir():
            shutil.rmtree(run / name)
    remove_temporaries(run)


def start_run(run: Path, files: dict[str, str], accelerator: Any, *, resume: bool, overwrite: bool) -> bool:
    """Check the run directory ``run`` in every process, then (main process) take its lock, clear
    it for ``overwrite``, drop temporaries of a killed writer and write ``files`` (``recipe.toml``):
    the one place a run directory is started, for ``interpgen train`` and ``Pipeline.fit`` alike.
    Returns whether the run resumes. The caller releases the lock (:func:`guard.release`)."""
    run = Path(run)
    plan = check_run_dir(run, files.get(RECIPE, ""), resume=resume, overwrite=overwrite)
    accelerator.wait_for_everyone()
    error = None
    if accelerator.is_main_process:
        try:
            guard.acquire(run)
        except OSError as exc:
            error = str(io_error("create", run, exc))
        except ValueError as exc:
            error = str(exc)
        try:
            if error is None:
                if plan == "overwrite":
                    clear_run(run)
                remove_temporaries(run)
                for name, text in files.items():
                    atomic_write_bytes(run / name, text.encode())
        except (OSError, CheckpointError) as exc:
            guard.release(run)
            error = str(exc)
    if accelerator.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        error = broadcast_object_list([error])[0]
    if error:
        raise ValueError(error)
    return plan == "resume"
