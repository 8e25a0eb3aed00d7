"""From checked numpy arrays to a :class:`~.finite.FiniteSource`: held-out split, then
standardisation (vectors) or pixel scaling to [-1, 1] (images)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .checks import check_data, check_labels, feature_name, shown
from .finite import FiniteSource
from .images import pixel_affine, pixel_encoder, resize, store_dtype
from .split import split_rows


def num_classes_of(labels: np.ndarray | None, declared: int | None) -> int | None:
    """The declared number of classes, else ``max(label) + 1`` (None without labels)."""
    if labels is None:
        return None
    return declared if declared is not None else int(labels.max()) + 1


def standardization(where: str, data: np.ndarray, columns: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and (population) standard deviation over all rows, in float64; a
    feature that never changes is an error naming it."""
    flat = data.reshape(data.shape[0], -1)
    constant = np.flatnonzero((flat == flat[:1]).all(axis=0)).tolist()
    if constant:
        names = shown([feature_name(j, data.shape[1:], columns) for j in constant])
        raise ValueError(f"{where}: {len(constant)} feature(s) are constant (std 0), so they cannot be "
                         f"standardized: {names}; drop them or set standardize = false")
    as64 = data.astype(np.float64)
    return as64.mean(axis=0), as64.std(axis=0)


def _split(where: str, rows: int, labels: np.ndarray | None, holdout: float, seed: int):
    train, held = split_rows(rows, holdout, seed, where=where)
    label_tensor = torch.from_numpy(labels) if labels is not None else None
    pick = (lambda index: label_tensor[index]) if label_tensor is not None else (lambda index: None)
    return train, held, pick


def vector_source(where: str, data: np.ndarray, labels: np.ndarray | None = None, *, holdout: float,
                  split_seed: int, standardize: bool = True, num_classes: int | None = None,
                  columns: Sequence[str] | None = None, dataset: Any = None) -> FiniteSource:
    """A finite source of examples used as numbers (vectors or arrays of any event shape).

    With ``standardize`` every feature ``j`` is used as ``(x_j - mean_j) / std_j`` (mean and
    population std over all rows) and ``data_affine()`` is ``(mean, std)``.
    """
    check_data(where, data, columns=columns)
    if labels is not None:
        labels = check_labels(where, labels, data.shape[0], num_classes=num_classes)
    affine = None
    if standardize:
        mean, std = standardization(where, data, columns)
        data = (data.astype(np.float64) - mean) / std
        affine = (torch.from_numpy(mean.astype(np.float32)), torch.from_numpy(std.astype(np.float32)))
    tensor = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
    train, held, pick = _split(where, tensor.shape[0], labels, holdout, split_seed)
    return FiniteSource(tensor[train], labels=pick(train), num_classes=num_classes_of(labels, num_classes),
                        affine=affine, heldout=tensor[held], heldout_labels=pick(held), dataset=dataset)


def image_source(where: str, images: np.ndarray, labels: np.ndarray | None = None, *, low: float, high: float,
                 holdout: float, split_seed: int, flip: bool = False, size: int | None = None,
                 num_classes: int | None = None, dataset: Any = None) -> FiniteSource:
    """A finite source of ``(N, C, H, W)`` images with pixel values in ``[low, high]``, used in
    model space ``[-1, 1]`` (see :mod:`.images`; ``normalised_range = (-1, 1)``, so samples are clamped to
    ``[low, high]`` on output), optionally resized to ``size x size``."""
    check_data(where, images, row_name="image")
    if images.ndim != 4:
        raise ValueError(f"{where}: expected images of shape (N, C, H, W), got {images.shape}")
    if labels is not None:
        labels = check_labels(where, labels, images.shape[0], num_classes=num_classes)
    out_of_range = np.flatnonzero((images.reshape(images.shape[0], -1) < low).any(axis=1)
                                  | (images.reshape(images.shape[0], -1) > high).any(axis=1)).tolist()
    if out_of_range:
        raise ValueError(f"{where}: {len(out_of_range)} image(s) have pixel values outside [{low:g}, {high:g}] "
                         f"(images {shown(out_of_range)})")
    pixels = torch.from_numpy(np.ascontiguousarray(images))
    if size is not None:
        pixels = store_dtype(resize(pixels, size, low, high), pixels.dtype)
    elif pixels.dtype.is_floating_point:
        pixels = pixels.to(torch.float32)
    shift, scale = pixel_affine(low, high, tuple(pixels.shape[1:]))
    train, held, pick = _split(where, pixels.shape[0], labels, holdout, split_seed)
    source = FiniteSource(pixels[train], labels=pick(train), num_classes=num_classes_of(labels, num_classes),
                          affine=(shift, scale), heldout=pixels[held], heldout_labels=pick(held),
                          encode=pixel_encoder(shift, scale), flip=flip, dataset=dataset)
    source.normalised_range = (-1.0, 1.0)  # pixels in [low, high]: samples are clamped there on output
    return source
