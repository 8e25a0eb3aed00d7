"""Images in model space: pixel values scaled to [-1, 1], optional resizing.

An image data set with pixel values in ``[low, high]`` (``0..255`` for ``uint8`` files, ``0..16``
for scikit-learn's digits, ``0..1`` for scikit-image's faces) is used in model space as

    x_model = (x - shift) / scale,   shift = (high + low) / 2,   scale = (high - low) / 2,

so ``low -> -1`` and ``high -> +1`` (math.md 0: the model works in this space, and a standard
Gaussian base at ``t = 0`` then has the data's scale). ``data_affine()`` returns ``(shift, scale)``
as tensors of the event shape ``(C, H, W)``, so ``x = shift + scale * x_model`` maps samples
back to pixel values.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

#: Pixel range of each integer dtype an image file may hold.
INTEGER_RANGES: dict[str, tuple[float, float]] = {"uint8": (0.0, 255.0), "uint16": (0.0, 65535.0)}


def pixel_affine(low: float, high: float, event_shape: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    """``(shift, scale)`` of shape ``event_shape`` for pixels in ``[low, high]``."""
    if not high > low:
        raise ValueError(f"pixel range must have high > low, got [{low}, {high}]")
    shift = torch.full(event_shape, (high + low) / 2.0)
    scale = torch.full(event_shape, (high - low) / 2.0)
    return shift, scale


def pixel_encoder(shift: Tensor, scale: Tensor) -> Callable[[Tensor], Tensor]:
    """The map stored pixels -> model space, ``(x - shift) / scale`` in float32."""
    shift32, scale32 = shift.to(torch.float32), scale.to(torch.float32)

    def encode(rows: Tensor) -> Tensor:
        return (rows.to(torch.float32) - shift32.to(rows.device)) / scale32.to(rows.device)

    return encode


def to_channels_first(images: np.ndarray, where: str) -> np.ndarray:
    """``(N, H, W)`` -> ``(N, 1, H, W)`` and ``(N, H, W, C)`` with ``C`` in 1..4 -> ``(N, C, H, W)``."""
    if images.ndim == 3:
        return images[:, None]
    if images.ndim == 4 and images.shape[-1] in (1, 2, 3, 4):
        return np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    raise ValueError(f"{where}: expected images of shape (N, H, W) or (N, H, W, C) with 1 to 4 channels, "
                     f"got {images.shape}")


def resize(images: Tensor, size: int, low: float, high: float) -> Tensor:
    """Resize ``(N, C, H, W)`` images to ``size x size`` with antialiased bilinear interpolation
    (float32, clamped back into the pixel range ``[low, high]``)."""
    x = images.to(torch.float32)
    if tuple(x.shape[-2:]) == (size, size):
        return x
    out = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return out.clamp_(low, high)


def store_dtype(images: Tensor, dtype: torch.dtype) -> Tensor:
    """Round resized pixels back to an integer dtype (one byte per pixel for uint8); float
    pixels are kept as float32."""
    if dtype.is_floating_point:
        return images.to(torch.float32)
    return images.round().to(dtype)
