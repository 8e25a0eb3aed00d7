"""The ``array`` dataset: the user's own ``.npy`` / ``.npz`` file of examples.

The file holds an array of shape ``(N, D)`` or ``(N, *event)``: one example per row. With
``standardize`` (the default) each feature ``j`` is shifted and scaled to mean 0 and standard
deviation 1 over the rows, ``x_model = (x - mean) / std``, and ``data_affine()`` returns
``(mean, std)`` so that ``x = mean + std * x_model`` maps samples back (math.md 0: the model
works in this space, and a standard-normal prior at ``t = 0`` then matches the data's scale).

Every problem with the file is a ``FileNotFoundError`` or ``ValueError`` that names the file by
its absolute path and says what is wrong and how to fix it.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

from .finite import FiniteSource
from interpgen.validators import nonempty_str, optional_name

ARRAY_SUFFIXES: tuple[str, ...] = (".npy", ".npz")
#: The first bytes of each format (a .npz is a zip archive).
MAGIC: dict[str, bytes] = {".npy": b"\x93NUMPY", ".npz": b"PK"}
#: How many offending rows or features an error message lists.
SHOWN = 5


@attrs.frozen(kw_only=True)
class ArrayFile:
    """Examples from a .npy or .npz file of shape (N, D) or (N, *event), optionally standardised."""

    #: The file; a relative path is taken relative to the recipe's folder.
    path: str = attrs.field(validator=nonempty_str)
    #: The array's name inside a .npz (required when the .npz holds several arrays).
    key: str | None = attrs.field(default=None, validator=optional_name)
    #: Shift and scale every feature to mean 0, standard deviation 1.
    standardize: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    #: Name of an array of integer class labels (shape (N,)) inside the same .npz.
    labels_key: str | None = attrs.field(default=None, validator=optional_name)


def resolve_path(path: str, root: Path | None) -> Path:
    """``path`` with ``~`` expanded, relative paths taken against ``root`` (the recipe's
    folder; the working directory when None), made absolute."""
    p = Path(path).expanduser()
    if not p.is_absolute():
        p = (Path(root) if root is not None else Path.cwd()) / p
    return p.resolve()


def _npz_member(file: Path, archive: Any, key: str | None, what: str) -> np.ndarray:
    names = sorted(archive.files)
    listed = ", ".join(names) if names else "(none)"
    if key is None:
        if len(names) != 1:
            raise ValueError(f"{file}: the .npz holds {len(names)} arrays ({listed}); "
                             f"set key to the name of the {what} array")
        key = names[0]
    elif key not in names:
        raise ValueError(f"{file}: the .npz has no array named {key!r}; it holds: {listed}")
    try:
        return archive[key]
    except ValueError as exc:  # object arrays need pickle, which is never allowed
        raise ValueError(f"{file}: array {key!r} has a non-numeric dtype (object array: {exc}); "
                         "save a numeric array instead") from None


def load_arrays(file: Path, *, key: str | None = None,
                labels_key: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Read the data array (and the labels array, when asked) from ``file`` with numpy,
    never unpickling anything."""
    if not file.exists():
        raise FileNotFoundError(f"array file {file} does not exist")
    if not file.is_file():
        raise ValueError(f"{file} is not a file; point path at a .npy or .npz file")
    suffix = file.suffix.lower()
    if suffix not in ARRAY_SUFFIXES:
        raise ValueError(f"{file} is not an array file: expected a .npy or .npz file, got suffix {file.suffix!r}")
    with open(file, "rb") as handle:
        head = handle.read(len(MAGIC[suffix]))
    if head != MAGIC[suffix]:  # without this check numpy would try to unpickle it
        raise ValueError(f"{file} is not a valid {suffix} array file: it does not start like one "
                         f"(was it saved with numpy.{'save' if suffix == '.npy' else 'savez'}?)")
    if suffix == ".npy":
        if key is not None or labels_key is not None:
            raise ValueError(f"{file}: key and labels_key name arrays inside a .npz; a .npy holds one array "
                             "(leave them out, or save data and labels together with numpy.savez)")
        try:
            return np.load(file, allow_pickle=False), None
        except ValueError as exc:
            if "allow_pickle" in str(exc):
                raise ValueError(f"{file}: the array has a non-numeric dtype (object array); "
                                 "save a numeric array instead") from None
            raise ValueError(f"{file} is not a valid .npy array file: {exc}") from None
        except (OSError, EOFError) as exc:
            raise ValueError(f"{file} is not a valid .npy array file: {exc}") from None
    try:
        with np.load(file, allow_pickle=False) as archive:
            data = _npz_member(file, archive, key, "data")
            labels = _npz_member(file, archive, labels_key, "labels") if labels_key is not None else None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValueError(f"{file} is not a valid .npz array file: {exc}") from None
    return data, labels


def _shown(items: list[Any]) -> str:
    more = f", ... ({len(items) - SHOWN} more)" if len(items) > SHOWN else ""
    return ", ".join(str(i) for i in items[:SHOWN]) + more


def _feature_name(flat_index: int, event_shape: tuple[int, ...]) -> str:
    if len(event_shape) == 1:
        return f"column {flat_index}"
    return f"feature {tuple(int(i) for i in np.unravel_index(flat_index, event_shape))}"


def check_data(file: Path, data: np.ndarray) -> None:
    """Reject arrays that cannot be training data: non-numeric, fewer than 2 dimensions or
    rows, NaN or inf values (naming how many rows and the first few)."""
    if data.dtype.kind not in "biuf":
        raise ValueError(f"{file}: the array has non-numeric dtype {data.dtype}; expected integers or "
                         "real floating-point numbers")
    if data.ndim < 2:
        raise ValueError(f"{file}: the array has shape {data.shape}, fewer than 2 dimensions; expected "
                         "(N, D) or (N, *event) with one example per row (reshape 1-D data to (N, 1))")
    if data.shape[0] < 2:
        raise ValueError(f"{file}: the array has {data.shape[0]} row(s) (shape {data.shape}); "
                         "at least 2 examples are needed")
    if data.dtype.kind == "f":
        bad_rows = np.flatnonzero(~np.isfinite(data.reshape(data.shape[0], -1)).all(axis=1)).tolist()
        if bad_rows:
            raise ValueError(f"{file}: {len(bad_rows)} of {data.shape[0]} rows hold NaN or inf values "
                             f"(rows {_shown(bad_rows)}); remove or impute them")


def check_labels(file: Path, labels: np.ndarray, rows: int) -> np.ndarray:
    """Labels must be non-negative integers, one per row."""
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{file}: labels have dtype {labels.dtype}; expected integer class indices")
    if labels.shape != (rows,):
        raise ValueError(f"{file}: labels have shape {labels.shape}; expected ({rows},), one per row")
    if labels.min() < 0:
        raise ValueError(f"{file}: labels must be >= 0, found {int(labels.min())}")
    return labels.astype(np.int64)


def standardization(file: Path, data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and (population) standard deviation over the rows, in float64; a
    feature that never changes is an error naming it."""
    flat = data.reshape(data.shape[0], -1)
    constant = np.flatnonzero((flat == flat[:1]).all(axis=0)).tolist()
    if constant:
        names = _shown([_feature_name(j, data.shape[1:]) for j in constant])
        raise ValueError(f"{file}: {len(constant)} feature(s) are constant (std 0), so they cannot be "
                         f"standardized: {names}; drop them or set standardize = false")
    as64 = data.astype(np.float64)
    return as64.mean(axis=0), as64.std(axis=0)


def build_array(params: ArrayFile, *, root: Path | None = None, **context: Any) -> FiniteSource:
    """Load, check and (optionally) standardise the file named by ``params``."""
    file = resolve_path(params.path, root)
    data, labels = load_arrays(file, key=params.key, labels_key=params.labels_key)
    check_data(file, data)
    label_tensor, num_classes = None, None
    if labels is not None:
        labels = check_labels(file, labels, data.shape[0])
        label_tensor, num_classes = torch.from_numpy(labels), int(labels.max()) + 1
    affine = None
    if params.standardize:
        mean, std = standardization(file, data)
        data = (data.astype(np.float64) - mean) / std
        affine = (torch.from_numpy(mean.astype(np.float32)), torch.from_numpy(std.astype(np.float32)))
    tensor = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
    return FiniteSource(tensor, labels=label_tensor, num_classes=num_classes, affine=affine)
