"""Checks that turn bad input into one clear message naming the file, the row and the column.

Every finite data set (array files, tables, image folders, digits, faces, hub data) goes through
these before anything is trained, so a NaN in row 17 of a table is reported as such instead of
surfacing as a NaN loss hours later.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: How many offending rows or features an error message lists.
SHOWN = 5


def shown(items: Sequence[Any]) -> str:
    """The first :data:`SHOWN` items, then how many more."""
    more = f", ... ({len(items) - SHOWN} more)" if len(items) > SHOWN else ""
    return ", ".join(str(i) for i in items[:SHOWN]) + more


def feature_name(flat_index: int, event_shape: tuple[int, ...], columns: Sequence[str] | None = None) -> str:
    """How an error names feature ``flat_index`` of one example: a table's column name, a
    vector's ``column j`` or an array's ``feature (i, j, k)``."""
    if columns is not None:
        return f"column {columns[flat_index]!r}"
    if len(event_shape) == 1:
        return f"column {flat_index}"
    return f"feature {tuple(int(i) for i in np.unravel_index(flat_index, event_shape))}"


def check_data(where: str, data: np.ndarray, *, columns: Sequence[str] | None = None,
               row_name: str = "row") -> None:
    """Reject arrays that cannot be training data: non-numeric, fewer than 2 dimensions, fewer
    than 2 rows, NaN or inf values (naming how many rows, the first few, and the row and
    column/feature of the first bad value). ``where`` names the file or data set."""
    if data.dtype.kind not in "biuf":
        raise ValueError(f"{where}: the array has non-numeric dtype {data.dtype}; expected integers or "
                         "real floating-point numbers")
    if data.ndim < 2:
        raise ValueError(f"{where}: the array has shape {data.shape}, fewer than 2 dimensions; expected "
                         "(N, D) or (N, *event) with one example per row (reshape 1-D data to (N, 1))")
    if data.shape[0] == 0:
        raise ValueError(f"{where}: the data set is empty (0 rows, shape {data.shape}); it needs at least 2 examples")
    if data.shape[0] < 2:
        raise ValueError(f"{where}: the array has {data.shape[0]} row(s) (shape {data.shape}); "
                         "at least 2 examples are needed")
    if data.dtype.kind == "f":
        flat = data.reshape(data.shape[0], -1)
        finite = np.isfinite(flat)
        bad_rows = np.flatnonzero(~finite.all(axis=1)).tolist()
        if bad_rows:
            first = bad_rows[0]
            feature = int(np.flatnonzero(~finite[first])[0])
            value = flat[first, feature]
            raise ValueError(
                f"{where}: {len(bad_rows)} of {data.shape[0]} {row_name}s hold NaN or inf values "
                f"({row_name}s {shown(bad_rows)}); the first is {value} at {row_name} {first}, "
                f"{feature_name(feature, data.shape[1:], columns)}; remove or impute them")


def check_labels(where: str, labels: np.ndarray, rows: int, *, num_classes: int | None = None) -> np.ndarray:
    """Labels must be integers in ``[0, num_classes)`` (``num_classes`` when given), one per
    row; returns them as int64."""
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{where}: labels have dtype {labels.dtype}; expected integer class indices")
    if labels.shape != (rows,):
        raise ValueError(f"{where}: labels have shape {labels.shape}; expected ({rows},), one per row")
    if rows and labels.min() < 0:
        row = int(np.argmin(labels))
        raise ValueError(f"{where}: labels must be >= 0, found {int(labels.min())} (row {row})")
    if num_classes is not None and rows and labels.max() >= num_classes:
        row = int(np.argmax(labels))
        raise ValueError(f"{where}: labels must be < num_classes = {num_classes}, found {int(labels.max())} "
                         f"(row {row})")
    return labels.astype(np.int64)


def check_same_sizes(where: str, names: Sequence[str], shapes: Sequence[tuple[int, ...]]) -> None:
    """All images must have one size: otherwise name two files of different sizes."""
    first = shapes[0]
    for name, shape in zip(names, shapes):
        if shape != first:
            raise ValueError(
                f"{where}: images have different sizes: {names[0]} is {_size(first)} but {name} is "
                f"{_size(shape)}; give every image one size or set size = N to resize them all to N x N")


def _size(shape: tuple[int, ...]) -> str:
    height, width = shape[:2]
    return f"{width}x{height} (width x height)"
