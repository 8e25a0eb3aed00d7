"""From the rows of one unit of a streamed data set to examples in model space.

A shard column holds either **images** (encoded bytes such as PNG or JPEG, a ``datasets.Image``
struct ``{bytes, path}``, or a path) or **arrays** (nested or fixed-size lists of numbers, as
``datasets``' ``Array2D``..``Array5D`` and ``List`` features store them). Images become
``uint8`` pixels ``(C, H, W)`` in ``mode`` (resized to ``size x size`` when asked) and then model
space ``x = (pixels - 127.5) / 127.5`` (:mod:`.images`); arrays are served as stored (float32),
shaped by ``shape``, by the ``interpgen`` schema metadata that ``interpgen encode`` writes, or by
their nesting. Labels are integers in ``[0, num_classes)``.

Every decoding failure (a damaged image, a ragged array, a missing value, a label out of range)
is one ValueError that names the file (the image, or the shard and its row group and row).
"""

from __future__ import annotations

import io
import json
import math
from typing import Any

import numpy as np
import torch

from .images import resize, store_dtype

#: What :func:`column_kind` can find in a column.
KINDS = ("bytes", "struct", "path", "array")


def schema_metadata(schema: Any, key: str) -> dict[str, Any]:
    """The JSON object stored under ``key`` in an Arrow schema's metadata ({} when absent)."""
    raw = (schema.metadata or {}).get(key.encode())
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return {}


def column_kind(arrow_type: Any) -> str | None:
    """``bytes`` (encoded images), ``struct`` (``datasets.Image``), ``path`` (image paths),
    ``array`` (lists of numbers), or None for anything else."""
    import pyarrow as pa

    t = arrow_type.storage_type if isinstance(arrow_type, pa.ExtensionType) else arrow_type
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "bytes"
    if pa.types.is_struct(t) and t.get_field_index("bytes") >= 0:
        return "struct"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "path"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return "array"
    return None


def array_rows(column: Any, where: Any) -> np.ndarray:
    """A column of (nested) lists of numbers as an array ``(rows, *dims)``; ``where(row)`` names
    a row in errors."""
    import pyarrow as pa

    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if isinstance(arr.type, pa.ExtensionType):
        arr = arr.storage
    rows, dims = len(arr), []
    while pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type) or pa.types.is_fixed_size_list(arr.type):
        if arr.null_count:
            raise ValueError(f"{where(_first_null(arr))}: missing value")
        if pa.types.is_fixed_size_list(arr.type):
            size = arr.type.list_size
        else:
            lengths = arr.value_lengths().to_numpy(zero_copy_only=False)
            size = int(lengths[0]) if len(lengths) else 0
            if (lengths != size).any():
                bad = int(np.flatnonzero(lengths != size)[0])
                raise ValueError(f"{where(bad // max(1, math.prod(dims)))}: ragged array (a list of "
                                 f"{int(lengths[bad])} values where the others have {size})")
        dims.append(size)
        arr = arr.flatten()
    if not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
        raise ValueError(f"{where(0)}: the array holds {arr.type} values; expected numbers")
    if arr.null_count:
        raise ValueError(f"{where(_first_null(arr) // max(1, math.prod(dims)))}: missing value")
    return arr.to_numpy(zero_copy_only=False).reshape(rows, *dims)


def _first_null(arr: Any) -> int:
    return int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])


def decode_image(data: bytes | None, path: str | None, *, mode: str, size: int | None, name: str) -> np.ndarray:
    """One image as ``uint8`` pixels ``(C, H, W)`` in ``mode`` (resized to ``size x size``)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data) if data is not None else path) as image:
            pixels = np.asarray(image.convert(mode), dtype=np.uint8)
    except Exception as exc:  # a damaged or foreign file: name it
        raise ValueError(f"cannot read {name}: {type(exc).__name__}: {exc}") from None
    pixels = pixels[None] if pixels.ndim == 2 else np.ascontiguousarray(pixels.transpose(2, 0, 1))
    if size is not None and pixels.shape[1:] != (size, size):
        small = resize(torch.from_numpy(pixels)[None], size, 0.0, 255.0)
        pixels = store_dtype(small, torch.uint8)[0].numpy()
    return pixels


class UnitRows:
    """The rows of one unit as Python/NumPy values: ``images`` (``(bytes, path)`` pairs) or
    ``arrays`` (``(rows, *dims)``), and ``labels``."""

    def __init__(self, images: list[tuple[bytes | None, str | None]] | None = None, arrays: np.ndarray | None = None,
                 labels: np.ndarray | None = None):
        self.images, self.arrays, self.labels = images, arrays, labels


class RowDecoder:
    """Turns rows of units into model-space examples; ``describe(unit, row)`` names a row."""

    def __init__(self, kind: str, *, mode: str = "RGB", size: int | None = None, shape: tuple[int, ...] | None = None,
                 num_classes: int | None = None, describe: Any = None):
        self.kind, self.mode, self.size, self.shape = kind, mode, size, shape
        self.num_classes, self.describe = num_classes, describe
        self.event_shape: tuple[int, ...] | None = None

    def set_event_shape(self, shape: tuple[int, ...]) -> None:
        self.event_shape = tuple(int(s) for s in shape)

    def examples(self, units: dict[int, UnitRows], unit_ids: np.ndarray,
                 rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Rows ``rows[i]`` of units ``unit_ids[i]`` in model space (float32), with labels."""
        if self.kind == "array":
            x = np.stack([self._array(units[u], u, r) for u, r in zip(unit_ids.tolist(), rows.tolist())])
            out = torch.from_numpy(x.astype(np.float32, copy=False))
        else:
            pixels = np.stack([self._image(units[u], u, r) for u, r in zip(unit_ids.tolist(), rows.tolist())])
            out = (torch.from_numpy(pixels).to(torch.float32) - 127.5) / 127.5
        labels = None
        if self.num_classes is not None:
            labels = torch.from_numpy(np.asarray([self._label(units[u], u, r)
                                                  for u, r in zip(unit_ids.tolist(), rows.tolist())], dtype=np.int64))
        return out, labels

    def _image(self, unit: UnitRows, u: int, row: int) -> np.ndarray:
        data, path = unit.images[row]
        pixels = decode_image(data, path, mode=self.mode, size=self.size, name=self.describe(u, row))
        if self.event_shape is not None and pixels.shape != self.event_shape:
            c, h, w = self.event_shape
            raise ValueError(f"{self.describe(u, row)} is {pixels.shape[2]}x{pixels.shape[1]} (width x height), but "
                             f"the data set's images are {w}x{h}; give every image one size or set size = N "
                             "to resize them all to N x N")
        return pixels

    def _array(self, unit: UnitRows, u: int, row: int) -> np.ndarray:
        value = unit.arrays[row]
        if self.event_shape is not None:
            if value.size != math.prod(self.event_shape):
                raise ValueError(f"{self.describe(u, row)}: holds {value.size} numbers, but the data set's "
                                 f"examples have shape {self.event_shape}")
            value = value.reshape(self.event_shape)
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise ValueError(f"{self.describe(u, row)}: holds NaN or inf values")
        return value

    def _label(self, unit: UnitRows, u: int, row: int) -> int:
        label = int(unit.labels[row])
        if not 0 <= label < self.num_classes:
            raise ValueError(f"{self.describe(u, row)}: label {label} is outside [0, {self.num_classes}) "
                             "(set num_classes to the number of classes)")
        return label


def unit_rows_from_table(table: Any, column: str, kind: str, label_column: str | None, where: Any,
                         folder: str) -> UnitRows:
    """A Parquet/Arrow unit (a ``pyarrow.Table``) as :class:`UnitRows`; relative image paths are
    taken against the shards' ``folder``."""
    import pyarrow as pa

    col = table.column(column).combine_chunks()
    if isinstance(col.type, pa.ExtensionType):
        col = col.storage
    labels = None
    if label_column is not None:
        lab = table.column(label_column).combine_chunks()
        if lab.null_count:
            raise ValueError(f"{where(_first_null(lab))}: missing label")
        labels = lab.to_numpy(zero_copy_only=False).astype(np.int64)
    if kind == "array":
        return UnitRows(arrays=array_rows(col, where), labels=labels)
    if kind == "bytes":
        data, paths = col.to_pylist(), [None] * len(col)
    elif kind == "struct":
        data = col.field("bytes").to_pylist()
        has_path = col.type.get_field_index("path") >= 0
        paths = col.field("path").to_pylist() if has_path else [None] * len(col)
    else:
        data, paths = [None] * len(col), col.to_pylist()
    images = []
    for i, (d, p) in enumerate(zip(data, paths)):
        if d is None and p is None:
            raise ValueError(f"{where(i)}: missing image (neither bytes nor a path)")
        if d is None and not p.startswith("/"):
            p = f"{folder}/{p}"
        images.append((d, p))
    return UnitRows(images=images, labels=labels)
