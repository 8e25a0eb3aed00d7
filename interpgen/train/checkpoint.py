"""Checkpoint files of a run directory (read by :meth:`interpgen.pipeline.Pipeline.load` through
the ``accelerate`` trainer's ``load_state``; written by :mod:`interpgen.train.run_dir`).

``RUN/checkpoints/step_NNNNNNNN.pt`` is a short header (format marker, SHA-256 and length of the
payload) followed by the ``torch.save`` payload, read with ``weights_only=True`` so nothing in a
file is executed; ``RUN/checkpoints/latest`` names the newest complete one; ``RUN/recipe.toml``
is the resolved recipe.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path
from typing import Any

import torch

from interpgen.protocols import CheckpointError

CHECKPOINT_DIR = "checkpoints"
LATEST = "latest"
RECIPE = "recipe.toml"
_NAME = re.compile(r"^step_(\d{8})\.pt$")
_MAGIC = b"INTERPGEN-CHECKPOINT 2\n"


def encode_checkpoint(state: dict[str, Any]) -> bytes:
    """Header ``INTERPGEN-CHECKPOINT 2`` / ``<sha256 hex> <length>`` then the torch.save bytes."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    header = _MAGIC + f"{hashlib.sha256(payload).hexdigest()} {len(payload)}\n".encode()
    return header + payload


def decode_checkpoint(data: bytes, path: Path) -> dict[str, Any]:
    """The state in checkpoint bytes; CheckpointError says what is wrong with a bad file."""
    if not data.startswith(_MAGIC):
        raise CheckpointError(f"checkpoint {path} is not an interpgen checkpoint (format marker missing)")
    end = data.find(b"\n", len(_MAGIC))
    try:
        digest, length = data[len(_MAGIC):end].decode().split(" ")
        length = int(length)
    except (ValueError, UnicodeDecodeError):
        raise CheckpointError(f"checkpoint {path} is damaged: its header is unreadable") from None
    payload = data[end + 1:]
    if len(payload) != length:
        raise CheckpointError(f"checkpoint {path} is damaged: truncated ({len(payload)} of {length} bytes)")
    if hashlib.sha256(payload).hexdigest() != digest:
        raise CheckpointError(f"checkpoint {path} is damaged: its contents do not match the checksum "
                              "written with it")
    try:
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} could not be read: {type(exc).__name__}: {exc}") from None
    if not isinstance(state, dict) or "step" not in state:
        raise CheckpointError(f"checkpoint {path} holds no training state")
    return state


def list_checkpoints(run: Path) -> list[Path]:
    """Complete checkpoint files, oldest first."""
    folder = Path(run) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def checkpoint_step(path: Path) -> int:
    match = _NAME.match(Path(path).name)
    if match is None:
        raise CheckpointError(f"{path} is not named like a checkpoint (step_NNNNNNNN.pt)")
    return int(match.group(1))


def latest_checkpoint(run: Path) -> Path:
    """The checkpoint ``latest`` names, or the newest one when the pointer is missing or names
    a file that is gone (e.g. deleted by hand because it was damaged)."""
    folder = Path(run) / CHECKPOINT_DIR
    pointer = folder / LATEST
    if pointer.is_file():
        path = folder / pointer.read_text().strip()
        if path.is_file():
            return path
    found = list_checkpoints(run)
    if not found:
        raise CheckpointError(f"no checkpoint in {Path(run).resolve()}; was the run trained?")
    return found[-1]


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint, reporting a damaged, truncated or foreign file clearly."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read: {exc.strerror or exc}") from None
    return decode_checkpoint(data, path)
