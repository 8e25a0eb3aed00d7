"""Streamed data sets (docs/data.md "Streaming"): ``shards`` (Parquet or Arrow files) and
``image_folder`` with ``streaming = true``, both served by :class:`.stream_source.StreamSource`.

Only unit sizes, the schema and one example are read when the source is built; rows are read,
decoded and flipped while training (in ``num_workers`` DataLoader workers), one shuffle window at
a time, so memory does not grow with the data set.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import attrs

from interpgen.validators import (nonempty_str, nonnegative_int, one_of, optional_name, optional_positive_int,
                                  positive_int)

from .pictures import MODES
from .split import HeldOutSplit, check_holdout
from .stream_files import ImageFiles, ShardFiles, find_shards
from .stream_order import Order
from .stream_rows import RowDecoder, column_kind, decode_image, schema_metadata
from .stream_source import StreamData, StreamSource, fingerprint, image_affine

_bool = attrs.validators.instance_of(bool)


def _shape(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _check_shape(_: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and (not isinstance(value, tuple) or not value
                              or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)):
        raise ValueError(f"{attribute.name} must be a non-empty list of integers >= 1, got {value!r}")


def _optional_holdout(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None:
        check_holdout(instance, attribute, value)


@attrs.frozen(kw_only=True)
class StreamOptions(HeldOutSplit):
    """The held-out split and how a streamed data set is read (fields shared by ``shards`` and
    ``image_folder``). Not registered itself."""

    #: DataLoader worker processes that read, decode and flip rows (0: the training process does).
    num_workers: int = attrs.field(default=0, validator=nonnegative_int)
    #: Training rows shuffled together: one window of stored rows is in memory per reader.
    shuffle_window: int = attrs.field(default=10_000, validator=positive_int)


@attrs.frozen(kw_only=True)
class Shards(StreamOptions):
    """Rows of Parquet or Arrow shards (a folder, a file or a glob), streamed from disk."""

    #: A folder of .parquet or .arrow files, one file, or a glob pattern (relative: to the recipe).
    path: str = attrs.field(validator=nonempty_str)
    #: Column of the examples: images (bytes, datasets.Image, paths) or arrays; None: "image",
    #: else "x", else the only column besides label_column.
    column: str | None = attrs.field(default=None, validator=optional_name)
    #: Column of integer class labels.
    label_column: str | None = attrs.field(default=None, validator=optional_name)
    #: Number of classes (needed with label_column unless the shards' metadata gives it).
    num_classes: int | None = attrs.field(default=None, validator=optional_positive_int)
    #: Images: colour mode, "RGB" or "L".
    mode: str = attrs.field(default="RGB", validator=one_of(*MODES))
    #: Images: resize to size x size; None requires one size.
    size: int | None = attrs.field(default=None, validator=optional_positive_int)
    #: Mirror training rows left-right at random.
    flip: bool = attrs.field(default=False, validator=_bool)
    #: Arrays: the shape of one example, when the shards store them flat.
    shape: tuple[int, ...] | None = attrs.field(default=None, converter=_shape, validator=_check_shape)
    #: Latent shards (interpgen encode): add the encoder noise c xi (c from the metadata) to every
    #: training row, as the frozen encoder would at every step (math.md 4.3).
    encoder_noise: bool = attrs.field(default=False, validator=_bool)
    #: Shards of held-out rows (e.g. what interpgen encode writes); then nothing else is held out.
    heldout_path: str | None = attrs.field(default=None, validator=optional_name)
    #: Rows held out of path's shards: a fraction or a count; None: 0.1, or 0 with heldout_path.
    holdout: float | None = attrs.field(default=None, validator=_optional_holdout)


def _pick_column(where: str, names: list[str], column: str | None, label_column: str | None) -> str:
    for name in (c for c in (column, label_column) if c is not None):
        if name not in names:
            raise ValueError(f"{where}: no column named {name!r}; the shards have: {', '.join(names)}")
    if column is not None:
        return column
    rest = [n for n in names if n != label_column]
    for name in ("image", "x"):
        if name in rest:
            return name
    if len(rest) == 1:
        return rest[0]
    raise ValueError(f"{where}: set column to one of {', '.join(rest)}")


def _num_classes(where: str, schema: Any, label_column: str, declared: int | None) -> int:
    import pyarrow as pa

    if not pa.types.is_integer(schema.field(label_column).type):
        raise ValueError(f"{where}: label column {label_column!r} holds {schema.field(label_column).type}; "
                         "streamed labels must be integers >= 0")
    if declared is not None:
        return declared
    feature = schema_metadata(schema, "huggingface").get("info", {}).get("features", {}).get(label_column, {})
    if isinstance(feature, dict) and feature.get("_type") == "ClassLabel" and feature.get("names"):
        return len(feature["names"])
    meta = schema_metadata(schema, "interpgen")
    if meta.get("label_column") == label_column and meta.get("num_classes"):
        return int(meta["num_classes"])
    raise ValueError(f"{where}: set num_classes: the number of classes in {label_column!r} is not in the shards' "
                     "metadata, and a streamed data set is not read through to count them")


def _shard_data(params: Shards, path: str, root: Path | None, holdout: float) -> tuple[StreamData, str]:
    files, folder = find_shards(path, root)
    shards = ShardFiles(files, folder)
    where = f"shards {path!r} ({len(files)} file(s) in {folder})"
    column = _pick_column(where, list(shards.schema.names), params.column, params.label_column)
    kind = column_kind(shards.schema.field(column).type)
    if kind is None:
        raise ValueError(f"{where}: column {column!r} holds {shards.schema.field(column).type}; expected images "
                         "(bytes, a datasets.Image struct or paths) or arrays of numbers (lists)")
    if kind != "array" and params.shape is not None:
        raise ValueError(f"{where}: shape applies to array columns; column {column!r} holds images")
    if kind == "array" and params.size is not None:
        raise ValueError(f"{where}: size applies to image columns; column {column!r} holds arrays")
    num_classes = (_num_classes(where, shards.schema, params.label_column, params.num_classes)
                   if params.label_column is not None else None)
    decoder = RowDecoder("array" if kind == "array" else "image", mode=params.mode, size=params.size,
                         num_classes=num_classes, describe=shards.where)
    order = Order(shards.unit_rows, holdout=holdout, split_seed=params.split_seed, window=params.shuffle_window,
                  where=where)
    data = StreamData(shards, order, decoder, column=column, kind=kind, label_column=params.label_column)
    return data, where


def _first_example_shape(data: StreamData, params: Any) -> tuple[int, ...]:
    unit = int(next(u for u, r in enumerate(data.files.unit_rows) if r > 0))
    rows = data.load(unit)
    if rows.images is not None:
        first, path = rows.images[0]
        return decode_image(first, path, mode=params.mode, size=params.size, name=data.files.where(unit, 0)).shape
    shape = getattr(params, "shape", None) or schema_metadata(data.files.schema, "interpgen").get("event_shape")
    if shape is None:
        return tuple(rows.arrays.shape[1:])
    if math.prod(shape) != math.prod(rows.arrays.shape[1:]):
        raise ValueError(f"{data.files.where(unit, 0)}: holds {math.prod(rows.arrays.shape[1:])} numbers, which "
                         f"cannot have shape {tuple(shape)}")
    return tuple(int(s) for s in shape)


def _layout(data: StreamData) -> list[Any]:
    """The shard files (relative to their folder) and the size of every unit."""
    return [[str(Path(f).relative_to(data.files.folder)) for f in data.files.files], data.files.unit_rows.tolist()]


def build_shards(params: Shards, *, root: Path | None = None, **context: Any) -> StreamSource:
    """The streamed source of ``params``; checks the files, the columns and one example."""
    if params.heldout_path is not None and params.holdout not in (None, 0):
        raise ValueError(f"shards {params.path!r}: set either heldout_path (held-out rows in their own shards) or "
                         f"holdout (rows held out of path's shards), not both")
    holdout = params.holdout if params.holdout is not None else (0 if params.heldout_path is not None else 0.1)
    train, where = _shard_data(params, params.path, root, holdout)
    train.decoder.set_event_shape(_first_example_shape(train, params))
    heldout, layouts = None, [_layout(train)]
    if params.heldout_path is not None:
        held, _ = _shard_data(params, params.heldout_path, root, 0)
        held.decoder.set_event_shape(_first_example_shape(held, params))
        if held.decoder.event_shape != train.decoder.event_shape:
            raise ValueError(f"shards {params.heldout_path!r} hold examples of shape {held.decoder.event_shape}, "
                             f"but {params.path!r} holds {train.decoder.event_shape}")
        heldout, layouts = (held, "train"), [*layouts, _layout(held)]
    shape = train.decoder.event_shape
    if train.decoder.kind == "image":
        affine = image_affine(shape)
    else:
        affine = _stored_affine(train.files.schema, shape)
    noise = 0.0
    if params.encoder_noise:
        noise = schema_metadata(train.files.schema, "interpgen").get("noise_scale")
        if not isinstance(noise, (int, float)) or isinstance(noise, bool) or noise < 0:
            raise ValueError(f"{where}: encoder_noise needs the noise scale in the shards' interpgen metadata "
                             f"(what interpgen encode writes for a fixed noise scale), found {noise!r}")
    return StreamSource(train, heldout, affine=affine, flip=params.flip, noise=noise,
                        num_workers=params.num_workers,
                        fingerprint=fingerprint("shards", layouts, attrs.asdict(params, filter=_stream_fields)),
                        where=where)


def _stream_fields(attribute: attrs.Attribute, value: Any) -> bool:
    """The parameters that change the rows served (everything but where and how fast)."""
    return attribute.name not in ("path", "heldout_path", "num_workers")


def _stored_affine(schema: Any, shape: tuple[int, ...]) -> Any:
    import torch

    affine = schema_metadata(schema, "interpgen").get("data_affine")
    if not affine:
        return None
    shift, scale = (torch.tensor(v, dtype=torch.float32) for v in affine)
    return shift.expand(shape).clone(), scale.expand(shape).clone()


def build_image_stream(params: Any, folder: Path, files: list[Path], labels: list[int] | None,
                       class_names: list[str]) -> StreamSource:
    """An image folder streamed from disk (``image_folder`` with ``streaming = true``)."""
    images = ImageFiles(files, labels)
    where = f"image folder {folder}"
    num_classes = len(class_names) if labels is not None else None
    decoder = RowDecoder("image", mode=params.mode, size=params.size, num_classes=num_classes, describe=images.where)
    order = Order(images.unit_rows, holdout=params.holdout, split_seed=params.split_seed,
                  window=params.shuffle_window, where=where)
    data = StreamData(images, order, decoder)
    decoder.set_event_shape(_first_example_shape(data, params))
    names = [str(f.relative_to(folder)) for f in files]
    layout = fingerprint(names, labels)
    source = StreamSource(data, None, affine=image_affine(decoder.event_shape), flip=params.flip,
                          num_workers=params.num_workers, where=where,
                          fingerprint=fingerprint("image_folder", layout, attrs.asdict(params, filter=_stream_fields)))
    source.class_names = class_names
    return source
