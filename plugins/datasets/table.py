"""The ``table`` data set: rows of a ``.csv`` or ``.parquet`` file, one example per row.

The file is read with ``datasets.load_dataset("csv" | "parquet", data_files=...)`` (locally).
The feature columns are ``columns`` (all columns but ``label_column`` when left out); each must
be numeric. ``label_column`` holds class labels: integers ``>= 0`` are used as they are, text
labels are numbered in sorted order. Like ``array``, the features are standardised per column
(``x_model = (x - mean) / std``, ``data_affine() = (mean, std)``) unless ``standardize = false``.
A missing value, NaN or a text cell is an error naming its row (0-based, header excluded) and column.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from interpgen.validators import nonempty_str, optional_name, optional_positive_int

from .array_file import resolve_path
from .arrow import local_only
from .assemble import vector_source
from .checks import shown
from .finite import FiniteSource
from .split import HeldOutSplit

TABLE_FORMATS: dict[str, str] = {".csv": "csv", ".parquet": "parquet"}


def _column_names(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is None:
        return
    if (not isinstance(value, tuple) or not value
            or not all(isinstance(v, str) and v for v in value) or len(set(value)) != len(value)):
        raise ValueError(f"{attribute.name} must be a non-empty list of distinct column names, got {value!r}")


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


@attrs.frozen(kw_only=True)
class Table(HeldOutSplit):
    """Rows of a .csv or .parquet table: numeric feature columns, optionally a label column."""

    #: The file; a relative path is taken relative to the recipe's folder.
    path: str = attrs.field(validator=nonempty_str)
    #: Feature columns in order; None takes every column except label_column.
    columns: tuple[str, ...] | None = attrs.field(default=None, converter=_as_tuple, validator=_column_names)
    #: Column of class labels (integers >= 0, or text numbered in sorted order).
    label_column: str | None = attrs.field(default=None, validator=optional_name)
    #: Number of classes, when some classes may be missing from the file (labels must be below it).
    num_classes: int | None = attrs.field(default=None, validator=optional_positive_int)
    #: Shift and scale every column to mean 0, standard deviation 1.
    standardize: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))


def read_table(file: Path) -> Any:
    """The file as a ``datasets.Dataset``; errors name the file."""
    if not file.exists():
        raise FileNotFoundError(f"table file {file} does not exist")
    if not file.is_file():
        raise ValueError(f"{file} is not a file; point path at a .csv or .parquet file")
    kind = TABLE_FORMATS.get(file.suffix.lower())
    if kind is None:
        raise ValueError(f"{file} is not a table: expected a .csv or .parquet file, got suffix {file.suffix!r}")
    try:
        with local_only() as ds_mod:
            return ds_mod.load_dataset(kind, data_files=str(file), split="train")
    except ValueError as exc:
        if "corresponds to no data" in str(exc):
            raise ValueError(f"{file}: the table is empty (no rows)") from None
        raise ValueError(f"{file}: cannot read the {kind} table: {exc}") from None
    except Exception as exc:  # parser errors of pyarrow / pandas
        raise ValueError(f"{file}: cannot read the {kind} table: {type(exc).__name__}: {exc}") from None


def _number(value: Any) -> float | None:
    """``value`` as a float: a missing cell is NaN, text that reads as a number is that number, and
    anything else (other text, a bool) is None."""
    if value is None:
        return math.nan
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def numeric_column(where: str, dataset: Any, name: str) -> np.ndarray:
    """Column ``name`` as float64 (a missing value becomes NaN). One text cell makes the reader type
    the whole column as text, so every cell is read on its own: text that reads as a number is that
    number, and any other cell is an error naming its row (0-based, header excluded) and value."""
    values = [_number(v) for v in dataset[name]]
    bad = [i for i, v in enumerate(values) if v is None]
    if bad:
        raise ValueError(f"{where}: column {name!r} is not numeric: row {bad[0]} holds {dataset[name][bad[0]]!r} "
                         f"({len(bad)} non-numeric row(s): {shown(bad)}; rows count from 0 after the header); "
                         "fix the cell(s), or list the numeric columns in columns")
    return np.asarray(values, dtype=np.float64)


def label_values(where: str, values: list[Any], name: str) -> tuple[np.ndarray, list[str]]:
    """Integer labels as given, or text labels numbered in sorted order (with their names)."""
    missing = [i for i, v in enumerate(values) if v is None]
    if missing:
        raise ValueError(f"{where}: label column {name!r} has missing values (rows {shown(missing)})")
    if all(isinstance(v, str) for v in values):
        names = sorted(set(values))
        index = {n: i for i, n in enumerate(names)}
        return np.asarray([index[v] for v in values], dtype=np.int64), names
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.int64), []
    bad = next(i for i, v in enumerate(values) if not (isinstance(v, int) and not isinstance(v, bool)))
    raise ValueError(f"{where}: label column {name!r} must hold integer class indices or text, "
                     f"row {bad} holds {values[bad]!r}")


def table_arrays(where: str, dataset: Any, columns: tuple[str, ...] | None,
                 label_column: str | None) -> tuple[np.ndarray, np.ndarray | None, list[str], list[str]]:
    """``(features (N, D), labels or None, feature column names, class names)`` of a table."""
    present = list(dataset.column_names)
    wanted = [label_column] if label_column is not None else []
    wanted += list(columns) if columns is not None else []
    missing = [c for c in wanted if c not in present]
    if missing:
        raise ValueError(f"{where}: no column named {', '.join(repr(c) for c in missing)}; "
                         f"the table has: {', '.join(present)}")
    names = list(columns) if columns is not None else [c for c in present if c != label_column]
    if not names:
        raise ValueError(f"{where}: no feature columns left (the table has only {', '.join(present)})")
    if len(dataset) == 0:
        raise ValueError(f"{where}: the table is empty (no rows)")
    data = np.stack([numeric_column(where, dataset, c) for c in names], axis=1)
    labels, class_names = (label_values(where, dataset[label_column], label_column)
                           if label_column is not None else (None, []))
    return data, labels, names, class_names


def build_table(params: Table, *, root: Path | None = None, **context: Any) -> FiniteSource:
    """Read, check, split and (optionally) standardise the table named by ``params``."""
    file = resolve_path(params.path, root)
    dataset = read_table(file)
    data, labels, names, class_names = table_arrays(str(file), dataset, params.columns, params.label_column)
    num_classes = params.num_classes if params.num_classes is not None else (len(class_names) or None)
    source = vector_source(str(file), data, labels, holdout=params.holdout, split_seed=params.split_seed,
                           standardize=params.standardize, num_classes=num_classes, columns=names,
                           dataset=dataset)
    source.columns, source.class_names = names, class_names
    return source
