"""The ``image_folder`` data set: a folder of image files, optionally one subfolder per class.

Layout (the layout of ``datasets``' ``imagefolder`` builder, which reads it)::

    FOLDER/cat/0001.png       labels from subfolder names, sorted: cat = 0, dog = 1
    FOLDER/dog/0002.png
    FOLDER/0003.png           or images directly in FOLDER: no labels

Every image is converted to ``mode`` (``RGB`` or ``L``), must have one size unless ``size``
resizes them all, and is used in model space ``[-1, 1]`` (pixels 0..255, see :mod:`.images`).
Pixels are kept as ``uint8`` in memory and scaled per batch. With ``streaming = true`` nothing is
held in memory: the files are read and decoded while training (:func:`.shards.build_image_stream`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from interpgen.validators import nonempty_str, one_of, optional_positive_int

from .array_file import resolve_path
from .arrow import local_only
from .assemble import image_source
from .pictures import MODES, decode_all
from .shards import StreamOptions, build_image_stream

#: File name endings read as images.
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


@attrs.frozen(kw_only=True)
class ImageFolder(StreamOptions):
    """Images from a folder (one subfolder per class gives labels), scaled to [-1, 1]."""

    #: The folder; a relative path is taken relative to the recipe's folder.
    path: str = attrs.field(validator=nonempty_str)
    #: Resize every image to size x size; None requires all images to have one size.
    size: int | None = attrs.field(default=None, validator=optional_positive_int)
    #: Mirror training images left-right at random.
    flip: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    #: Colour mode every image is converted to: "RGB" (3 channels) or "L" (grey, 1 channel).
    mode: str = attrs.field(default="RGB", validator=one_of(*MODES))
    #: Use the subfolder names as class labels (when the images sit in subfolders).
    labels: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    #: Read and decode the images while training (in num_workers DataLoader workers) instead of
    #: holding them all in memory.
    streaming: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))


def image_files(folder: Path) -> list[Path]:
    """Every image file under ``folder``, sorted; errors name the folder."""
    if not folder.exists():
        raise FileNotFoundError(f"image folder {folder} does not exist")
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder; point path at a folder of images")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"image folder {folder} is empty: no files ending in {', '.join(IMAGE_SUFFIXES)}")
    return files


def class_labels(folder: Path, files: list[Path]) -> tuple[list[int] | None, list[str]]:
    """Label of each file from its first subfolder (class names sorted); None when every file
    sits directly in ``folder``. A mix of both is an error naming one file of each."""
    parents = [p.relative_to(folder).parts[:-1] for p in files]
    loose = [f for f, parts in zip(files, parents) if not parts]
    if len(loose) == len(files):
        return None, []
    if loose:
        nested = next(f for f, parts in zip(files, parents) if parts)
        raise ValueError(f"image folder {folder}: some images sit in class subfolders ({nested}) and some "
                         f"directly in the folder ({loose[0]}); put every image in a class subfolder, "
                         "or none, or set labels = false")
    names = sorted({parts[0] for parts in parents})
    index = {name: i for i, name in enumerate(names)}
    return [index[parts[0]] for parts in parents], names


def build_image_folder(params: ImageFolder, *, root: Path | None = None, **context: Any) -> Any:
    """Read the folder with ``datasets``' ``imagefolder`` builder (locally, no network), decode
    every image, check sizes and build the source; or stream it (``streaming = true``)."""
    import io

    import numpy as np
    from PIL import Image

    folder = resolve_path(params.path, root)
    files = image_files(folder)  # a missing or empty folder is reported before datasets sees it
    if params.streaming:
        labels, class_names = class_labels(folder, files) if params.labels else (None, [])
        return build_image_stream(params, folder, files, labels, class_names)
    if params.num_workers:
        raise ValueError(f"image folder {folder}: num_workers applies with streaming = true "
                         "(an image folder in memory is decoded once, when it is loaded)")
    with local_only() as ds_mod:
        dataset = ds_mod.load_dataset("imagefolder", data_dir=str(folder), split="train", drop_labels=True)
        records = dataset.cast_column("image", ds_mod.Image(decode=False))["image"]
    files = [Path(r["path"]) if r.get("path") else folder / f"image_{i}" for i, r in enumerate(records)]
    labels, class_names = class_labels(folder, files) if params.labels else (None, [])

    def opener(i: int) -> Any:
        data = records[i].get("bytes")
        return Image.open(io.BytesIO(data)) if data else Image.open(files[i])

    where = f"image folder {folder}"
    pixels = decode_all([str(f) for f in files], opener, mode=params.mode, size=params.size, where=where)
    label_array = np.asarray(labels, dtype=np.int64) if labels is not None else None
    source = image_source(where, pixels, label_array, low=0.0, high=255.0, holdout=params.holdout,
                          split_seed=params.split_seed, flip=params.flip,
                          num_classes=len(class_names) if label_array is not None else None, dataset=dataset)
    source.class_names = class_names
    return source
