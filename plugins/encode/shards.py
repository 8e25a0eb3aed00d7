"""Encoding a data set with a frozen autoencoder into Parquet shards (``interpgen encode``).

Each part of the data set (``train``, ``heldout``) is read with the source's ``take(part, index)``
in model space, encoded to the latent mean ``mu(x)`` (math.md 4.3: the encoder is
``z1 = mu(x) + c xi``; ``c`` is kept in the metadata, or in a ``noise_scale`` column when it varies),
and written to ``OUTPUT/<part>/part-NNNNN.parquet``: a column ``x`` of ``prod(latent_shape)``
float32 numbers, a column ``label`` when the data has labels, and schema metadata ``interpgen``
(JSON: ``event_shape``, ``num_classes``, ``label_column``, ``noise_scale``, ``data_affine``) that the
``shards`` data set reads. Rows are written in a block-shuffled order (``seed``): chunks of
``CHUNK`` consecutive rows in random order, mixed in buffers of several chunks, so a data set
stored class by class does not come out class by class, and a streamed input is read about once.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: Rows read as one piece (consecutive rows of a part).
CHUNK = 1024
#: About how many bytes of model-space rows (float32) a buffer holds.
BUFFER_BYTES = 1 << 30
PARTS = ("train", "heldout")


def buffer_rows(event_shape: tuple[int, ...]) -> int:
    """Rows per shuffling buffer: about :data:`BUFFER_BYTES` of float32 rows, in whole chunks
    (at least one, at most 64)."""
    per_row = 4 * math.prod(event_shape)
    return CHUNK * max(1, min(64, BUFFER_BYTES // (per_row * CHUNK)))


def reading_order(rows: int, event_shape: tuple[int, ...], seed: int) -> list[np.ndarray]:
    """The part's row indices in buffers: chunks in random order, rows shuffled in each buffer."""
    generator = torch.Generator().manual_seed(seed)
    chunks = torch.randperm(-(-rows // CHUNK), generator=generator).tolist()
    per_buffer = buffer_rows(event_shape) // CHUNK
    out = []
    for start in range(0, len(chunks), per_buffer):
        index = torch.cat([torch.arange(c * CHUNK, min(rows, (c + 1) * CHUNK))
                           for c in chunks[start:start + per_buffer]])
        out.append(index[torch.randperm(len(index), generator=generator)].numpy())
    return out


class ShardWriter:
    """Writes rows to ``folder/part-NNNNN.parquet``, ``rows_per_file`` rows per file in row
    groups of ``rows_per_group``."""

    def __init__(self, folder: Path, metadata: dict[str, Any], *, rows_per_group: int, rows_per_file: int):
        self.folder, self.metadata = folder, metadata
        self.rows_per_group, self.rows_per_file = rows_per_group, rows_per_file
        self.files: list[Path] = []
        self._writer: Any = None
        self._in_file = 0
        self._pending: list[dict[str, np.ndarray]] = []
        self.rows = 0

    def write(self, columns: dict[str, np.ndarray]) -> None:
        self._pending.append(columns)
        while sum(len(c["x"]) for c in self._pending) >= self.rows_per_group:
            self._flush(self.rows_per_group)

    def _flush(self, count: int) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        merged = {k: np.concatenate([c[k] for c in self._pending]) for k in self._pending[0]}
        now = {k: v[:count] for k, v in merged.items()}
        rest = {k: v[count:] for k, v in merged.items()}
        self._pending = [rest] if len(rest["x"]) else []
        arrays = {k: (pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), v.shape[1]) if v.ndim == 2
                      else pa.array(v)) for k, v in now.items()}
        table = pa.table(arrays).replace_schema_metadata({"interpgen": json.dumps(self.metadata)})
        if self._writer is None or self._in_file >= self.rows_per_file:
            self._close_file()
            self.files.append(self.folder / f"part-{len(self.files):05d}.parquet")
            self._writer = pq.ParquetWriter(self.files[-1], table.schema, compression="zstd")
        self._writer.write_table(table, row_group_size=self.rows_per_group)
        self._in_file += len(table)
        self.rows += len(table)

    def _close_file(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._writer, self._in_file = None, 0

    def close(self) -> None:
        if self._pending:
            self._flush(sum(len(c["x"]) for c in self._pending))
        self._close_file()


def _latents(source: Any, part: str, autoencoder: Any, *, batch_size: int, seed: int, device: torch.device):
    """``(index, mean (B, D), noise scale (B, D), labels or None)`` batches of ``part``, encoded."""
    for index in reading_order(source.part_size(part), tuple(source.event_shape), seed):
        x, labels = source.take(part, torch.from_numpy(index))
        for start in range(0, len(index), batch_size):
            with torch.no_grad():
                mean, scale = autoencoder.encode(x[start:start + batch_size].to(device))
            mean = mean.float().cpu()
            scale = torch.as_tensor(scale).float().cpu().expand_as(mean)
            yield mean, scale, (labels[start:start + batch_size] if labels is not None else None)


def encode_part(source: Any, part: str, autoencoder: Any, folder: Path, meta: dict[str, Any], *, batch_size: int,
                seed: int, device: torch.device, rows_per_group: int, rows_per_file: int) -> dict[str, Any]:
    """Encode and write every row of ``part`` into ``folder``. The noise scale goes into the
    metadata when the first batch has one value everywhere (it must keep it), else into a column."""
    writer, constant, shape = None, None, ()
    for mean, scale, labels in _latents(source, part, autoencoder, batch_size=batch_size, seed=seed, device=device):
        if writer is None:
            shape = tuple(mean.shape[1:])
            first = scale.reshape(-1)[0] if scale.numel() else torch.zeros(())
            constant = float(first) if bool((scale == first).all()) else None
            writer = ShardWriter(folder, {**meta, "noise_scale": constant}, rows_per_group=rows_per_group,
                                 rows_per_file=rows_per_file)
        columns = {"x": mean.reshape(len(mean), -1).numpy()}
        if constant is None:
            columns["noise_scale"] = scale.reshape(len(scale), -1).numpy()
        elif not bool((scale == constant).all()):
            raise ValueError(f"the autoencoder's noise scale changed from {constant} during encoding; "
                             "encode with a fixed noise scale")
        if labels is not None:
            columns["label"] = labels.numpy().astype(np.int64)
        writer.write(columns)
    writer.close()
    return {"rows": writer.rows, "files": len(writer.files), "noise_scale": constant, "shape": shape}


def encode_dataset(source: Any, autoencoder: Any, output: Path, *, describe: dict[str, Any], batch_size: int = 256,
                   rows_per_group: int = 1024, rows_per_file: int = 65536, seed: int = 0,
                   device: str = "cpu", overwrite: bool = False) -> dict[str, Any]:
    """Write ``OUTPUT/train`` and ``OUTPUT/heldout`` shards and ``OUTPUT/encode.json``; the folder
    appears complete or not at all (written beside it, then renamed)."""
    for method in ("take", "part_size"):
        if not callable(getattr(source, method, None)):
            raise ValueError(f"encode needs a finite data set with take() and part_size(); "
                             f"{type(source).__name__} has none (a synthetic target has no rows to encode)")
    output = Path(output)
    if output.exists() and not overwrite:
        raise ValueError(f"{output} exists; choose another --output or pass --overwrite")
    if hasattr(autoencoder, "eval"):
        autoencoder.eval()
    latent = tuple(int(s) for s in autoencoder.latent_shape(tuple(source.event_shape)))
    affine = source.data_affine() if getattr(autoencoder, "is_identity", False) else None
    scratch = output.parent / f".{output.name}.encoding"
    shutil.rmtree(scratch, ignore_errors=True)
    started, summary = time.perf_counter(), {}
    try:
        for i, part in enumerate(PARTS):
            if part == "heldout" and not _has_heldout(source):
                continue
            (scratch / part).mkdir(parents=True)
            meta = {"format": 1, "event_shape": list(latent), "num_classes": source.num_classes,
                    "label_column": "label" if source.num_classes is not None else None,
                    "data_affine": [t.tolist() for t in affine] if affine is not None else None, **describe}
            done = encode_part(source, part, autoencoder, scratch / part, meta, batch_size=batch_size, seed=seed + i,
                               device=torch.device(device), rows_per_group=rows_per_group,
                               rows_per_file=rows_per_file)
            if done.pop("shape") != latent:
                raise ValueError(f"the autoencoder's encoder does not give its latent shape {latent}")
            summary[part] = done
        info = {"latent_shape": list(latent), "data_event_shape": list(source.event_shape),
                "num_classes": source.num_classes, "parts": summary, "seconds": time.perf_counter() - started,
                **describe}
        (scratch / "encode.json").write_text(json.dumps(info, indent=2) + "\n")
        if output.exists():
            shutil.rmtree(output)
        scratch.rename(output)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return info


def _has_heldout(source: Any) -> bool:
    """Whether the source has a held-out part of its own (not the training part standing in)."""
    has = getattr(source, "has_heldout", None)
    return bool(has) if has is not None else getattr(source, "heldout", None) is not None
