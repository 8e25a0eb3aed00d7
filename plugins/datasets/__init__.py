"""Built-in data sets.

Registered names (kind ``"dataset"``):

* synthetic 2-D targets ``checkerboard``, ``moons``, ``eight_gaussians``, ``spirals``,
  ``circles``, ``swissroll``, ``pinwheel``, ``rings``, ``gaussian`` (:mod:`.synthetic`, samplers
  in :mod:`.shapes`): infinite, a fresh draw every batch;
* finite data held as a ``datasets.Dataset`` and served by :class:`.finite.FiniteSource`, each
  with a held-out part (:mod:`.split`): ``array`` (.npy/.npz, :mod:`.array_file`), ``table``
  (.csv/.parquet, :mod:`.table`), ``image_folder`` (:mod:`.image_folder`), ``digits`` and
  ``faces`` (real images shipped in scikit-learn / scikit-image wheels, :mod:`.bundled`) and
  ``hub`` (a Hugging Face Hub name, :mod:`.hub`);
* streamed data, read from disk while training (:class:`.stream_source.StreamSource`, in
  DataLoader workers, resumable exactly): ``shards`` (Parquet or Arrow files, :mod:`.shards`) and
  ``image_folder`` with ``streaming = true``.

See docs/data.md for every parameter.
"""

from __future__ import annotations

from interpgen import Registry, hookimpl

from .array_file import ArrayFile, build_array
from .bundled import Digits, Faces, build_digits, build_faces
from .finite import FiniteSource
from .hub import Hub, build_hub
from .image_folder import ImageFolder, build_image_folder
from .shards import Shards, build_shards
from .split import HeldOutSplit
from .stream_source import StreamIterator, StreamSource
from .synthetic import SYNTHETIC_TARGETS, SyntheticSource, build_synthetic
from .table import Table, build_table

__all__ = ["ArrayFile", "Digits", "Faces", "FiniteSource", "HeldOutSplit", "Hub", "ImageFolder", "Shards",
           "StreamIterator", "StreamSource", "SyntheticSource", "Table", "interpgen_register"]


@hookimpl
def interpgen_register(registry: Registry) -> None:
    """Add the data sets (kind ``"dataset"``)."""
    for name, params_cls in SYNTHETIC_TARGETS.items():
        registry.add("dataset", name, params_cls, build=build_synthetic)
    registry.add("dataset", "array", ArrayFile, build=build_array)
    registry.add("dataset", "table", Table, build=build_table)
    registry.add("dataset", "image_folder", ImageFolder, build=build_image_folder)
    registry.add("dataset", "digits", Digits, build=build_digits)
    registry.add("dataset", "faces", Faces, build=build_faces)
    registry.add("dataset", "hub", Hub, build=build_hub)
    registry.add("dataset", "shards", Shards, build=build_shards)
