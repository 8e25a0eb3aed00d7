"""Real images that ship inside wheels, so recipes run offline: scikit-learn's handwritten
``digits`` and scikit-image's ``faces`` (a subset of Labeled Faces in the Wild).

Both are read into an arrow table (``datasets.Dataset.from_dict``), then scaled to [-1, 1]
(:mod:`.images`) and split into training and held-out rows (:mod:`.split`). scikit-learn and
scikit-image are optional: the extra ``interpgen[data]`` installs them, and without them building
either data set fails with :class:`MissingExtra` naming the package and the extra.
"""

from __future__ import annotations

from typing import Any

import importlib
from types import ModuleType

import attrs
import numpy as np

from interpgen.validators import one_of, optional_positive_int

from .arrow import arrays_from_arrow, arrow_from_arrays
from .assemble import image_source
from .finite import FiniteSource
from .split import HeldOutSplit, check_holdout

#: scikit-image's lfw_subset holds 100 faces followed by 100 non-face crops.
FACES_IN_LFW_SUBSET = 100
FACE_SUBSETS = ("faces", "all")

_bool = attrs.validators.instance_of(bool)

#: The extra that installs what the bundled data sets need (pyproject.toml).
DATA_EXTRA = "interpgen[data]"


class MissingExtra(ImportError, ValueError):
    """A data set needs a package that is not installed (a ValueError too, so the command line
    reports it as one message with exit status 2)."""


def _optional(module: str, package: str, data_set: str) -> ModuleType:
    """``import module``, or :class:`MissingExtra` saying which package and extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(f"data set {data_set!r} needs {package}, which is not installed ({exc}): "
                           f"pip install '{DATA_EXTRA}' (or pip install {package})", name=module) from None


@attrs.frozen(kw_only=True)
class Digits(HeldOutSplit):
    """scikit-learn's 1,797 handwritten digits: 8x8 grey images, pixel values 0..16, 10 classes."""

    #: Rows kept out of training for evaluation (about 360 by default).
    holdout: float = attrs.field(default=0.2, validator=check_holdout)
    #: Use the digit (0-9) as class label; false trains an unconditional model.
    labels: bool = attrs.field(default=True, validator=_bool)
    #: Resize to size x size (e.g. 16); None keeps 8x8.
    size: int | None = attrs.field(default=None, validator=optional_positive_int)
    #: Mirror training images left-right at random (off: digits are not mirror-symmetric).
    flip: bool = attrs.field(default=False, validator=_bool)


@attrs.frozen(kw_only=True)
class Faces(HeldOutSplit):
    """scikit-image's LFW subset: 25x25 grey face crops, pixel values 0..1."""

    #: "faces": the 100 face crops, unlabelled; "all": also the 100 non-face crops, labelled
    #: 0 (face) and 1 (non-face).
    subset: str = attrs.field(default="faces", validator=one_of(*FACE_SUBSETS))
    #: Resize to size x size (24 or 32 suit a U-Net that halves the size); None keeps 25x25.
    size: int | None = attrs.field(default=None, validator=optional_positive_int)
    #: Mirror training images left-right at random (faces are roughly symmetric).
    flip: bool = attrs.field(default=True, validator=_bool)


def build_digits(params: Digits, **context: Any) -> FiniteSource:
    """The digits as ``(N, 1, 8, 8)`` images (resized when asked), labels 0..9 when asked."""
    bunch = _optional("sklearn.datasets", "scikit-learn", "digits").load_digits()
    images = bunch.images.astype(np.float32)[:, None]  # integer values 0..16
    dataset = arrow_from_arrays(images, bunch.target.astype(np.int64))
    images, labels = arrays_from_arrow(dataset, np.float32)
    return image_source("scikit-learn digits", images, labels if params.labels else None, low=0.0, high=16.0,
                        holdout=params.holdout, split_seed=params.split_seed, flip=params.flip, size=params.size,
                        num_classes=10 if params.labels else None, dataset=dataset)


def build_faces(params: Faces, **context: Any) -> FiniteSource:
    """The face crops as ``(N, 1, 25, 25)`` images (resized when asked)."""
    lfw_subset = _optional("skimage.data", "scikit-image", "faces").lfw_subset
    crops = np.asarray(lfw_subset(), dtype=np.float32)[:, None]  # (200, 1, 25, 25) in [0, 1]
    labels = (np.arange(crops.shape[0]) >= FACES_IN_LFW_SUBSET).astype(np.int64)
    if params.subset == "faces":
        crops, labels = crops[:FACES_IN_LFW_SUBSET], None
    dataset = arrow_from_arrays(crops, labels)
    crops, labels = arrays_from_arrow(dataset, np.float32)
    return image_source("scikit-image lfw_subset faces", crops, labels, low=0.0, high=1.0,
                        holdout=params.holdout, split_seed=params.split_seed, flip=params.flip,
                        size=params.size, num_classes=2 if labels is not None else None, dataset=dataset)


