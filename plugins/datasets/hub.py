"""The ``hub`` data set: a data set on the Hugging Face Hub, for users who are online.

``load_dataset(path, name, split=split)`` downloads it (or reads the local cache). ``column``
names the examples: an image column gives images scaled to [-1, 1] (as ``image_folder``), a
numeric column (numbers or fixed-size arrays) gives vectors, standardised unless told not to.
``label_column`` gives class labels. Without network access (``HF_HUB_OFFLINE`` /
``HF_DATASETS_OFFLINE`` set, or no connection) and nothing cached, building fails with a message
that says so.
"""

from __future__ import annotations

import io
from typing import Any

import attrs
import numpy as np

from interpgen.validators import nonempty_str, one_of, optional_name, optional_positive_int

from .arrow import column_array, datasets_module, hub_access, offline
from .assemble import image_source, vector_source
from .finite import FiniteSource
from .pictures import MODES, decode_all
from .split import HeldOutSplit
from .table import label_values


@attrs.frozen(kw_only=True)
class Hub(HeldOutSplit):
    """A Hugging Face Hub data set (needs network access the first time)."""

    #: The Hub name, e.g. "uoft-cs/cifar10".
    path: str = attrs.field(validator=nonempty_str)
    #: The configuration name, where the data set has several.
    name: str | None = attrs.field(default=None, validator=optional_name)
    split: str = attrs.field(default="train", validator=nonempty_str)
    #: Column of the examples (images or numbers).
    column: str = attrs.field(default="image", validator=nonempty_str)
    #: Column of integer class labels.
    label_column: str | None = attrs.field(default=None, validator=optional_name)
    #: Images: resize to size x size; None requires one size.
    size: int | None = attrs.field(default=None, validator=optional_positive_int)
    #: Images: mirror training images left-right at random.
    flip: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    #: Images: colour mode, "RGB" or "L".
    mode: str = attrs.field(default="RGB", validator=one_of(*MODES))
    #: Numbers: standardise every feature to mean 0, standard deviation 1.
    standardize: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))


def load_hub(params: Hub) -> Any:
    """``datasets.load_dataset`` of the Hub data set; failures say whether the network was off."""
    try:
        with hub_access() as ds_mod:  # the one data set that may use the network
            return ds_mod.load_dataset(params.path, params.name, split=params.split)
    except Exception as exc:
        where = f"hub data set {params.path!r}" + (f" (config {params.name!r})" if params.name else "")
        if offline():
            raise ValueError(f"{where} needs network access; HF_HUB_OFFLINE or HF_DATASETS_OFFLINE is set and it "
                             f"is not in the local cache ({type(exc).__name__}: {exc}). Unset them to download "
                             "it once, or use image_folder / table / array with local files") from None
        raise ValueError(f"{where}: cannot load split {params.split!r}: {type(exc).__name__}: {exc}") from None


def build_hub(params: Hub, **context: Any) -> FiniteSource:
    """Load the Hub data set and build an image or vector source from ``column``."""
    ds_mod = datasets_module()
    dataset = load_hub(params)
    where = f"hub data set {params.path!r} split {params.split!r}"
    for col in (params.column, params.label_column):
        if col is not None and col not in dataset.column_names:
            raise ValueError(f"{where}: no column named {col!r}; it has: {', '.join(dataset.column_names)}")
    labels = None
    if params.label_column is not None:
        labels, _ = label_values(where, dataset[params.label_column], params.label_column)
    if isinstance(dataset.features[params.column], ds_mod.Image):
        records = dataset.cast_column(params.column, ds_mod.Image(decode=False))[params.column]
        names = [r.get("path") or f"row {i}" for i, r in enumerate(records)]

        def opener(i: int) -> Any:
            from PIL import Image

            record = records[i]
            return Image.open(io.BytesIO(record["bytes"])) if record.get("bytes") else Image.open(record["path"])

        pixels = decode_all(names, opener, mode=params.mode, size=params.size, where=where)
        return image_source(where, pixels, labels, low=0.0, high=255.0, holdout=params.holdout,
                            split_seed=params.split_seed, flip=params.flip, dataset=dataset)
    data = column_array(dataset, params.column, np.float64)
    if data.ndim == 1:
        data = data[:, None]
    return vector_source(where, data, labels, holdout=params.holdout, split_seed=params.split_seed,
                         standardize=params.standardize, dataset=dataset)
