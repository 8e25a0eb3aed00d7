"""Decoding image files (or hub image records) into one ``uint8`` array ``(N, C, H, W)``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from .checks import check_same_sizes
from .images import resize, store_dtype

#: Pillow modes an image data set may be converted to, and their channel counts.
MODES: dict[str, int] = {"RGB": 3, "L": 1}


def decode_all(names: Sequence[str], opener: Callable[[int], Any], *, mode: str, size: int | None,
               where: str) -> np.ndarray:
    """Open image ``i`` with ``opener(i)`` (a PIL image), convert it to ``mode`` and stack them.

    Without ``size`` every image must have the size of the first (else a ValueError names two
    files and their sizes); with it each image is resized to ``size x size`` (see
    :func:`.images.resize`). Pixels stay ``uint8`` (0..255)."""
    if not names:
        raise ValueError(f"{where}: no images found")
    first = _pixels(opener, 0, mode, names[0], where)
    height, width = first.shape[1:]
    if size is None:
        out = np.empty((len(names), first.shape[0], height, width), dtype=np.uint8)
    else:
        out = np.empty((len(names), first.shape[0], size, size), dtype=np.uint8)
    for i, name in enumerate(names):
        pixels = first if i == 0 else _pixels(opener, i, mode, name, where)
        if size is None:
            if pixels.shape[1:] != (height, width):
                check_same_sizes(where, [names[0], name], [(height, width), pixels.shape[1:]])
            out[i] = pixels
        else:
            small = resize(torch.from_numpy(pixels)[None], size, 0.0, 255.0)
            out[i] = store_dtype(small, torch.uint8)[0].numpy()
    return out


def _pixels(opener: Callable[[int], Any], i: int, mode: str, name: str, where: str) -> np.ndarray:
    try:  # opening and decoding both fail on a damaged file
        with opener(i) as image:
            array = np.array(image.convert(mode), dtype=np.uint8)
    except Exception as exc:  # a damaged file: name it
        raise ValueError(f"{where}: cannot read image {name}: {type(exc).__name__}: {exc}") from None
    return array[None] if array.ndim == 2 else np.ascontiguousarray(array.transpose(2, 0, 1))
