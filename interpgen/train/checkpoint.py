"""Checkpoint folders and the exported weights of a run directory (docs/training.md).

``RUN/checkpoints/step_NNNNNNNN/`` holds what Accelerate's ``save_state`` writes (``model.safetensors``:
the trainable modules; ``optimizer.bin``, ``scheduler.bin``, ``random_states_R.pkl``, all read back
with ``weights_only``) and ours: ``trainable.safetensors`` (the Trainable's ``state_dict()``: EMA,
step, ...; its tensors that are the model's own weights are references into ``model.safetensors``),
``trainer_R.safetensors`` per process (loss window, loss scaler, data stream, generators) and
``manifest.json`` (SHA-256 and size of every other file), written last. ``RUN/weights.safetensors``
is the whole state in one file. Plain values go into a safetensors header as JSON, so reading a
state for sampling unpickles nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from interpgen.protocols import CheckpointError

CHECKPOINT_DIR, LATEST, RECIPE, EXPORT = "checkpoints", "latest", "recipe.toml", "weights.safetensors"
MANIFEST, MODEL, TRAINABLE = "manifest.json", "model.safetensors", "trainable.safetensors"
FORMAT = "interpgen-checkpoint 3"
_NAME = re.compile(r"^step_(\d{8})$")
_OLD = "step_*.pt"
_KEY = "interpgen"


def trainer_file(rank: int) -> str:
    return f"trainer_{rank}.safetensors"


# -- states as safetensors: tensors in the file, everything else as JSON in its header ------------
def _identity(t: torch.Tensor) -> tuple:
    return t.data_ptr(), t.dtype, tuple(t.shape), t.stride()


def write_state(path: Path, state: Any, *, model: dict[str, torch.Tensor] | None = None) -> None:
    """Write ``state`` (dicts with str keys, lists, tensors, None, bool, int, float, str) to ``path``;
    tensors of ``model`` (name -> tensor) are stored as references to those names. The header
    also carries the SHA-256 of the tensor data, checked by :func:`read_state`."""
    refs = {_identity(t): name for name, t in (model or {}).items()}
    tensors: dict[str, torch.Tensor] = {}
    storages: set[int] = set()

    def pack(value: Any, at: str) -> Any:
        if isinstance(value, torch.Tensor):
            if _identity(value) in refs:
                return {"__model__": refs[_identity(value)]}
            value = value.detach().cpu().contiguous()
            if value.untyped_storage().data_ptr() in storages:
                value = value.clone()  # safetensors refuses tensors that share memory
            storages.add(value.untyped_storage().data_ptr())
            tensors[at] = value
            return {"__tensor__": at}
        if isinstance(value, dict):
            if not all(isinstance(k, str) for k in value):
                raise TypeError(f"checkpoint state {at or '(top)'}: dictionary keys must be strings")
            return {k: pack(v, f"{at}.{k}" if at else k) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [pack(v, f"{at}.{i}") for i, v in enumerate(value)]
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise TypeError(f"checkpoint state {at}: cannot store a {type(value).__name__}")

    skeleton = json.dumps(pack(state, ""))
    try:
        save_file(tensors, str(path), metadata={_KEY: skeleton, "sha256": _tensor_digest(tensors)})
    except SafetensorError as exc:  # e.g. a full disk, reported by safetensors' own writer
        raise OSError(None, str(exc), str(path)) from None


def _tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        with safe_open(str(path), framework="pt") as handle:
            return {k: handle.get_tensor(k) for k in handle.keys()}, handle.metadata() or {}
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is damaged or not a safetensors file ({exc})") from None


def read_state(path: Path, *, model: Path | None = None) -> Any:
    """The state :func:`write_state` wrote, its references resolved from the ``model`` file."""
    tensors, meta = _read_tensors(path)
    if _KEY not in meta:
        raise CheckpointError(f"{path} is not an interpgen state file (no '{_KEY}' entry in its header)")
    if meta.get("sha256") != _tensor_digest(tensors):
        raise CheckpointError(f"{path} is damaged: its tensors do not match the SHA-256 in its header")
    weights = _read_tensors(model)[0] if model is not None else {}

    def unpack(value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"__tensor__"}:
                return tensors[value["__tensor__"]]
            if set(value) == {"__model__"}:
                if value["__model__"] not in weights:
                    raise CheckpointError(f"{path} refers to {value['__model__']}, which {model} lacks")
                return weights[value["__model__"]]
            return {k: unpack(v) for k, v in value.items()}
        return [unpack(v) for v in value] if isinstance(value, list) else value

    return unpack(json.loads(meta[_KEY]))


# -- the manifest --------------------------------------------------------------------------------
def file_digest(path: Path) -> dict[str, Any]:
    """SHA-256 and size of a file (read in 1 MiB blocks), fsynced on the way."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
            size += len(block)
        os.fsync(handle.fileno())
    return {"sha256": digest.hexdigest(), "bytes": size}


def write_manifest(folder: Path, step: int) -> None:
    files = {p.relative_to(folder).as_posix(): file_digest(p) for p in sorted(folder.rglob("*"))
             if p.is_file() and p.name != MANIFEST}
    (folder / MANIFEST).write_text(json.dumps({"format": FORMAT, "step": step, "files": files}, indent=1))


def verify(folder: Path, names: list[str] | None = None) -> dict[str, Any]:
    """Check ``folder``'s files (all, or ``names``) against its manifest; returns the manifest.
    CheckpointError names the checkpoint and the missing, truncated or altered file."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {folder} is incomplete or not an interpgen checkpoint "
                              f"(no {MANIFEST})") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {folder} is damaged: {MANIFEST} cannot be read ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {folder} is not an interpgen checkpoint ({MANIFEST} says "
                              f"{manifest.get('format') if isinstance(manifest, dict) else manifest!r}, "
                              f"expected {FORMAT!r})")
    for name in names if names is not None else sorted(manifest["files"]):
        expected, path = manifest["files"].get(name), folder / name
        if expected is None or not path.is_file():
            raise CheckpointError(f"checkpoint {folder} is damaged: {name} is missing")
        found = file_digest(path)
        if found["bytes"] != expected["bytes"]:
            raise CheckpointError(f"checkpoint {folder} is damaged: {name} is truncated or grown "
                                  f"({found['bytes']} of {expected['bytes']} bytes)")
        if found["sha256"] != expected["sha256"]:
            raise CheckpointError(f"checkpoint {folder} is damaged: {name} does not match its SHA-256 in {MANIFEST}")
    return manifest


# -- finding checkpoints ---------------------------------------------------------------------------
def list_checkpoints(run: Path) -> list[Path]:
    """Complete checkpoint folders (not links), oldest first."""
    folder = Path(run) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name) and p.is_dir() and not p.is_symlink())


def checkpoint_step(path: Path) -> int:
    match = _NAME.match(Path(path).name)
    if match is None:
        raise CheckpointError(f"{path} is not named like a checkpoint (step_NNNNNNNN)")
    return int(match.group(1))


def old_format_error(run: Path) -> CheckpointError | None:
    """The refusal for a run whose checkpoints are all of the single-file ``.pt`` format."""
    old = sorted((Path(run) / CHECKPOINT_DIR).glob(_OLD))
    if not old or list_checkpoints(run):
        return None
    return CheckpointError(f"{old[-1]} is a checkpoint of the old single-file format (interpgen 0.1), which this "
                           "version does not read (it reads checkpoint folders of safetensors files); train the "
                           "run again with --overwrite, or sample from it with interpgen 0.1")


def latest_checkpoint(run: Path) -> Path:
    """The checkpoint ``latest`` names, or the newest one when the pointer is missing or names a
    checkpoint that is gone. A pointer naming anything but a checkpoint of this run is refused."""
    folder = Path(run) / CHECKPOINT_DIR
    pointer = folder / LATEST
    if pointer.is_file():
        name = pointer.read_text(errors="replace").strip()
        if not _NAME.match(name):
            raise CheckpointError(f"{pointer} names {name!r}, which is not a checkpoint of this run (step_NNNNNNNN "
                                  f"in {folder}); delete {pointer} to use the newest checkpoint")
        if (folder / name) in list_checkpoints(run):
            return folder / name
    found = list_checkpoints(run)
    if not found:
        raise old_format_error(run) or CheckpointError(f"no checkpoint in {Path(run).resolve()}; was the run trained?")
    return found[-1]


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The Trainable's state in a checkpoint folder or an exported ``.safetensors`` file, checked
    against the manifest (or the file's own digest) and read without unpickling anything."""
    path = Path(path)
    if path.is_file() and path.suffix == ".pt":
        raise old_format_error(path.parent.parent) or CheckpointError(f"{path} is not an interpgen checkpoint")
    if path.is_file():
        state = read_state(path)
    elif path.is_dir():
        verify(path, [MODEL, TRAINABLE] if (path / MODEL).exists() else [TRAINABLE])
        state = read_state(path / TRAINABLE, model=path / MODEL if (path / MODEL).exists() else None)
    else:
        raise CheckpointError(f"checkpoint {path} does not exist")
    if not isinstance(state, dict) or "step" not in state:
        raise CheckpointError(f"{path} holds no training state")
    return state


def load_run(run: Path, checkpoint: str | Path | None = None) -> dict[str, Any]:
    """What ``Pipeline.load`` reads: ``checkpoint`` if given, else the newest checkpoint, else the
    exported ``weights.safetensors``."""
    if checkpoint is not None:
        return load_checkpoint(Path(checkpoint))
    if not list_checkpoints(run) and (Path(run) / EXPORT).is_file():
        return load_checkpoint(Path(run) / EXPORT)
    return load_checkpoint(latest_checkpoint(run))
