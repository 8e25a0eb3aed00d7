"""The ``encode`` command: a data set encoded by a frozen autoencoder into Parquet shards, which
the ``shards`` data set streams (what latent models at scale train on; docs/data.md "Encoding").

    interpgen encode SOURCE --output DIR [--data RECIPE.toml] [--batch-size N] [--seed S]
                     [--rows-per-group N] [--rows-per-file N] [--device D] [--overwrite]

``SOURCE`` is a run directory (its autoencoder, e.g. trained by ``lsi`` or loaded ``pretrained``,
and unless ``--data`` says otherwise its data set) or a recipe file whose ``[autoencoder]`` and
``[data]`` tables name them. Added through ``registry.add_command`` as any plugin adds a command.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from interpgen import hookimpl
from interpgen.registry import Registry

from .shards import encode_dataset

__all__ = ["encode_dataset", "interpgen_register"]


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="a run directory, or a recipe TOML with [autoencoder] and [data] tables")
    p.add_argument("--output", required=True, help="folder to write: OUTPUT/train, OUTPUT/heldout, encode.json")
    p.add_argument("--data", metavar="RECIPE", help="a recipe TOML whose [data] table is the data set to encode "
                   "(default: the source's own)")
    p.add_argument("--batch-size", type=int, default=256, help="rows per encoder call (default 256)")
    p.add_argument("--rows-per-group", type=int, default=1024, help="rows per Parquet row group (default 1024)")
    p.add_argument("--rows-per-file", type=int, default=65536, help="rows per shard file (default 65536)")
    p.add_argument("--seed", type=int, default=0, help="seed of the order rows are written in (default 0)")
    p.add_argument("--device", default="cpu", help="device the encoder runs on (default cpu)")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT when it exists")


def _parts(source: str, data: str | None, registry: Any) -> tuple[Any, Any, dict[str, Any]]:
    """``(autoencoder, data source, description)`` from a run directory or a recipe file."""
    from interpgen.pipeline import Pipeline
    from interpgen.recipe import load_recipe

    path = Path(source)
    if path.is_dir():
        pipe = Pipeline.load(path, registry=registry)
        autoencoder, spec, root = pipe.autoencoder, pipe.recipe.data, pipe.root
        describe: dict[str, Any] = {"autoencoder_from": str(path.resolve()), "step": int(pipe.step)}
        expected = tuple(pipe.event_shape)
    elif path.is_file():
        recipe = load_recipe(path, registry)
        spec, root, autoencoder, expected = recipe.data, path.resolve().parent, None, None
        describe = {"autoencoder_from": str(path.resolve())}
    else:
        raise FileNotFoundError(f"{path.resolve()} is neither a run directory nor a recipe file")
    if data is not None:
        spec, root = load_recipe(data, registry).data, Path(data).resolve().parent
    entry = registry.entry_for(spec)
    if entry is None:
        raise ValueError("the data to encode is not a registered data set")
    dataset = entry.create(spec, root=root, registry=registry)
    describe["data"] = entry.name
    if autoencoder is None:
        spec_ae = recipe.autoencoder
        autoencoder = registry.entry_for(spec_ae).create(
            spec_ae, event_shape=tuple(dataset.event_shape), num_classes=dataset.num_classes, registry=registry,
            root=root)
    elif tuple(dataset.event_shape) != expected:
        raise ValueError(f"the data set has event shape {tuple(dataset.event_shape)}, but the run's autoencoder "
                         f"was trained on {expected}")
    return autoencoder, dataset, describe


def run(args: argparse.Namespace) -> int:
    from interpgen.plugin_manager import registry

    for name in ("batch_size", "rows_per_group", "rows_per_file"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    autoencoder, dataset, describe = _parts(args.source, args.data, registry())
    info = encode_dataset(dataset, autoencoder, Path(args.output), describe=describe, batch_size=args.batch_size,
                          rows_per_group=args.rows_per_group, rows_per_file=args.rows_per_file, seed=args.seed,
                          device=args.device, overwrite=args.overwrite)
    out = Path(args.output).resolve()
    counts = ", ".join(f"{part} {v['rows']} rows in {v['files']} file(s)" for part, v in info["parts"].items())
    print(f"wrote {out}: latents of shape {tuple(info['latent_shape'])}; {counts} ({info['seconds']:.1f} s)")
    table = ['name = "shards"', f'path = "{out / "train"}"']
    if "heldout" in info["parts"]:
        table.append(f'heldout_path = "{out / "heldout"}"')
    if info["num_classes"] is not None:
        table.append('label_column = "label"')
    print("train on it with:\n[data]\n" + "\n".join(table))
    return 0


@hookimpl
def interpgen_register(registry: Registry) -> None:
    registry.add_command("encode", run, configure=configure,
                         help="encode a data set with a frozen autoencoder into Parquet shards to stream")
