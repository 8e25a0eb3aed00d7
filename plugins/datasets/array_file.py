"""The ``array`` dataset: the user's own ``.npy`` / ``.npz`` file of examples.

The file holds an array of shape ``(N, D)`` or ``(N, *event)``: one example per row. With
``standardize`` (the default) each feature ``j`` is shifted and scaled to mean 0 and standard
deviation 1 over all rows (held-out ones included), ``x_model = (x - mean) / std``, and ``data_affine()`` returns
``(mean, std)`` so that ``x = mean + std * x_model`` maps samples back (math.md 0: the model
works in this space, and a standard-normal prior at ``t = 0`` then matches the data's scale).

Like every finite data set it has a held-out part (``holdout``, ``split_seed``; see
:mod:`.split`): ``batches()`` serves the other rows, ``reference()`` the held-out ones.

Every problem with the file is a ``FileNotFoundError`` or ``ValueError`` that names the file by
its absolute path and says what is wrong and how to fix it.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from interpgen.validators import nonempty_str, optional_name

from .arrow import arrays_from_arrow, arrow_from_arrays
from .assemble import vector_source
from .checks import check_data, check_labels
from .finite import FiniteSource
from .split import HeldOutSplit

ARRAY_SUFFIXES: tuple[str, ...] = (".npy", ".npz")
#: The first bytes of each format (a .npz is a zip archive).
MAGIC: dict[str, bytes] = {".npy": b"\x93NUMPY", ".npz": b"PK"}


@attrs.frozen(kw_only=True)
class ArrayFile(HeldOutSplit):
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


def build_array(params: ArrayFile, *, root: Path | None = None, **context: Any) -> FiniteSource:
    """Load the file named by ``params`` into an arrow table, check it, split off the held-out
    rows and (optionally) standardise it (statistics over all rows)."""
    file = resolve_path(params.path, root)
    data, labels = load_arrays(file, key=params.key, labels_key=params.labels_key)
    where = str(file)
    check_data(where, data)
    if labels is not None:
        labels = check_labels(where, labels, data.shape[0])
    dataset = arrow_from_arrays(data, labels)
    data, labels = arrays_from_arrow(dataset, data.dtype)
    return vector_source(str(file), data, labels, holdout=params.holdout, split_seed=params.split_seed,
                         standardize=params.standardize, dataset=dataset)
