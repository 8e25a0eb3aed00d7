"""Hugging Face ``datasets`` as the common container of every finite data set.

Each finite data set is read into a ``datasets.Dataset`` (arrow) built locally, without any
network call: ``Dataset.from_dict`` for arrays (files, scikit-learn's digits, scikit-image's
faces), ``load_dataset("csv" | "parquet", data_files=...)`` for tables,
``load_dataset("imagefolder", data_dir=...)`` for image folders. Only the ``hub`` data set
contacts the Hugging Face Hub. The rows are then converted to torch tensors once.

Offline by default: every local read runs inside :func:`local_only`, which sets
``HF_HUB_OFFLINE`` and ``HF_DATASETS_OFFLINE`` (before ``datasets`` is first imported) and the
offline switches ``datasets`` and ``huggingface_hub`` read at call time, whatever the environment
says; without it ``load_dataset("csv", ...)`` sends a request to count downloads. The ``hub``
data set runs inside :func:`hub_access`, which follows the user's environment.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

#: Column names of the arrow tables built from arrays.
DATA_COLUMN = "x"
LABEL_COLUMN = "label"


def datasets_module() -> Any:
    """``import datasets`` with its progress bars off (imported lazily: it takes a second)."""
    import datasets

    datasets.disable_progress_bars()
    return datasets


#: The environment variables that switch ``huggingface_hub`` and ``datasets`` offline.
OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` or ``HF_DATASETS_OFFLINE`` asks for no network access."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in OFFLINE_VARIABLES)


@contextlib.contextmanager
def _network(allowed: bool) -> Iterator[Any]:
    saved_env = {v: os.environ.get(v) for v in OFFLINE_VARIABLES}
    if not allowed:
        os.environ.update({v: "1" for v in OFFLINE_VARIABLES})
    ds_mod = datasets_module()
    from huggingface_hub import constants

    switches = [(ds_mod.config, "HF_HUB_OFFLINE"), (ds_mod.config, "HF_DATASETS_OFFLINE"),
                (constants, "HF_HUB_OFFLINE")]
    saved = [getattr(module, name) for module, name in switches]
    for module, name in switches:
        setattr(module, name, not allowed)
    try:
        yield ds_mod
    finally:
        for (module, name), value in zip(switches, saved):
            setattr(module, name, value)
        for variable, value in saved_env.items():
            if value is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = value


def local_only() -> contextlib.AbstractContextManager[Any]:
    """``with local_only() as datasets:``: ``datasets`` and ``huggingface_hub`` make no network
    call inside (environment and switches restored on exit)."""
    return _network(False)


def hub_access() -> contextlib.AbstractContextManager[Any]:
    """``with hub_access() as datasets:``: network access as the user's environment says
    (offline when ``HF_HUB_OFFLINE`` or ``HF_DATASETS_OFFLINE`` is set)."""
    return _network(not offline())


def _array_feature(ds_mod: Any, event_shape: tuple[int, ...], dtype: np.dtype) -> Any:
    value = str(dtype)
    if len(event_shape) == 1:
        return ds_mod.List(ds_mod.Value(value), length=event_shape[0])
    arrays = {2: ds_mod.Array2D, 3: ds_mod.Array3D, 4: ds_mod.Array4D, 5: ds_mod.Array5D}
    if len(event_shape) in arrays:
        return arrays[len(event_shape)](shape=tuple(event_shape), dtype=value)
    return None  # let datasets infer nested lists


def arrow_from_arrays(data: np.ndarray, labels: np.ndarray | None = None) -> Any:
    """A ``datasets.Dataset`` with column ``x`` (one example per row, fixed shape) and, when
    given, an int64 column ``label``."""
    with local_only() as ds_mod:
        columns: dict[str, Any] = {DATA_COLUMN: data}
        feature = _array_feature(ds_mod, tuple(data.shape[1:]), data.dtype)
        features: dict[str, Any] = {DATA_COLUMN: feature}
        if labels is not None:
            columns[LABEL_COLUMN] = labels.astype(np.int64)
            features[LABEL_COLUMN] = ds_mod.Value("int64")
        if feature is None:
            return ds_mod.Dataset.from_dict(columns)
        return ds_mod.Dataset.from_dict(columns, features=ds_mod.Features(features))


def column_array(dataset: Any, column: str, dtype: Any = None) -> np.ndarray:
    """One column of a ``datasets.Dataset`` as a numpy array (rows stacked) of ``dtype``
    (given, because numpy formatting otherwise turns float64 into float32)."""
    kwargs = {"dtype": dtype} if dtype is not None else {}
    return np.asarray(dataset.with_format("numpy", **kwargs)[:][column])


def arrays_from_arrow(dataset: Any, dtype: np.dtype | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """The ``x`` column (as ``dtype``, normally the dtype it was built from) and ``label`` when
    present, of a table made by :func:`arrow_from_arrays`."""
    data = column_array(dataset, DATA_COLUMN, dtype)
    labels = column_array(dataset, LABEL_COLUMN, np.int64) if LABEL_COLUMN in dataset.column_names else None
    return data, labels
