"""The files of a streamed data set, cut into units that are read one at a time.

* **Parquet shards** (``*.parquet``): a unit is a row group, read with
  ``pyarrow.parquet.ParquetFile.read_row_group`` (the reader ``datasets`` itself uses).
* **Arrow shards** (``*.arrow``): a unit is a record batch, of the IPC file format (random access)
  or of the IPC stream format that ``datasets.Dataset.save_to_disk`` writes (the byte offset of
  every batch is found once by scanning the message headers of a memory map; a unit is then read
  from that offset, so no file stays mapped and memory does not grow with the file).
* **Image folders**: ``units`` chunks of the sorted file list, interleaved (unit ``u`` holds files
  ``u, u + U, u + 2U, ...``), so a unit mixes every class even when the files are sorted by class.

Only unit sizes are read when the data set is built (Parquet footers, Arrow message headers,
the file list); every problem names the file.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

import numpy as np

SHARD_SUFFIXES: dict[str, str] = {".parquet": "parquet", ".arrow": "arrow"}
_ARROW_FILE_MAGIC = b"ARROW1"


def find_shards(path: str, root: Path | None) -> tuple[list[Path], Path]:
    """``(shard files sorted, the folder they are named relative to)`` for a folder, one file or
    a glob pattern; a relative ``path`` is taken against ``root`` (the recipe's folder)."""
    base = Path(root) if root is not None else Path.cwd()
    raw = Path(path).expanduser()
    full = raw if raw.is_absolute() else base / raw
    if any(c in path for c in "*?["):
        files = sorted(Path(p).resolve() for p in glob.glob(str(full), recursive=True) if Path(p).is_file())
        if not files:
            raise FileNotFoundError(f"no shard file matches {full}")
        fixed = next(i for i, part in enumerate(full.parts) if any(c in part for c in "*?["))
        folder = Path(*full.parts[:fixed]).resolve()
    elif full.is_dir():
        folder = full.resolve()
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SHARD_SUFFIXES)
        if not files:
            raise ValueError(f"shard folder {folder} holds no .parquet or .arrow file")
    elif full.is_file():
        files, folder = [full.resolve()], full.resolve().parent
    else:
        raise FileNotFoundError(f"shard path {full.resolve()} does not exist")
    kinds = {SHARD_SUFFIXES.get(f.suffix.lower()) for f in files}
    if None in kinds:
        bad = next(f for f in files if f.suffix.lower() not in SHARD_SUFFIXES)
        raise ValueError(f"{bad} is not a shard: expected .parquet or .arrow files")
    if len(kinds) > 1:
        first = {k: next(f for f in files if SHARD_SUFFIXES[f.suffix.lower()] == k) for k in kinds}
        raise ValueError(f"{folder}: mixes Parquet ({first['parquet']}) and Arrow ({first['arrow']}) shards; "
                         "keep one format")
    return files, folder


class ShardFiles:
    """Parquet or Arrow shard files as units; :meth:`read` gives one unit as a ``pyarrow.Table``."""

    def __init__(self, files: list[Path], folder: Path):
        import pyarrow as pa

        self.files, self.folder = files, folder
        self.kind = SHARD_SUFFIXES[files[0].suffix.lower()]
        self.units: list[tuple[int, int, int]] = []  # (file, part, byte offset or -1)
        rows: list[int] = []
        self.schema: Any = None
        for i, file in enumerate(files):
            try:
                schema, parts = self._scan_parquet(file) if self.kind == "parquet" else self._scan_arrow(file)
            except (OSError, pa.ArrowException, ValueError) as exc:
                raise ValueError(f"{file}: cannot read the {self.kind} shard: {type(exc).__name__}: {exc}") from None
            if self.schema is None:
                self.schema = schema
            self.units += [(i, j, offset) for j, (_, offset) in enumerate(parts)]
            rows += [n for n, _ in parts]
            self._check_columns(file, schema)
        self.unit_rows = np.asarray(rows, dtype=np.int64)
        self._handles: dict[int, Any] = {}

    def _check_columns(self, file: Path, schema: Any) -> None:
        missing = [name for name in self.schema.names if name not in schema.names]
        if missing:
            raise ValueError(f"{file}: has no column {missing[0]!r}, which {self.files[0]} has; "
                             "every shard must have the same columns")

    @staticmethod
    def _scan_parquet(file: Path) -> tuple[Any, list[tuple[int, int]]]:
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(file).metadata
        return meta.schema.to_arrow_schema(), [(meta.row_group(g).num_rows, -1) for g in range(meta.num_row_groups)]

    @staticmethod
    def _scan_arrow(file: Path) -> tuple[Any, list[tuple[int, int]]]:
        import pyarrow as pa

        with open(file, "rb") as handle:
            magic = handle.read(len(_ARROW_FILE_MAGIC))
        with pa.memory_map(str(file)) as source:  # batch bodies are mapped, not read
            if magic == _ARROW_FILE_MAGIC:
                reader = pa.ipc.open_file(source)
                return reader.schema, [(reader.get_batch(i).num_rows, -1) for i in range(reader.num_record_batches)]
            messages = pa.ipc.MessageReader.open_stream(source)
            schema, parts = None, []
            while True:
                offset = source.tell()
                try:
                    message = messages.read_next_message()
                except StopIteration:
                    break
                if message.type == "schema":
                    schema = pa.ipc.read_schema(message)
                elif message.type == "record batch":
                    parts.append((pa.ipc.read_record_batch(message, schema).num_rows, offset))
                else:
                    raise ValueError(f"holds a {message.type} message; only plain record batches are read")
        if schema is None:
            raise ValueError("no Arrow schema found (is it an Arrow IPC file?)")
        return schema, parts

    def where(self, unit: int, row: int | None = None) -> str:
        """How an error names a unit (and a row in it)."""
        file, part, _ = self.units[unit]
        what = "row group" if self.kind == "parquet" else "record batch"
        return f"shard {self.files[file]} ({what} {part}" + (f", row {row})" if row is not None else ")")

    def read(self, unit: int, columns: list[str]) -> Any:
        """Unit ``unit`` (only ``columns``) as a ``pyarrow.Table``; a damaged shard is a ValueError
        naming it."""
        import pyarrow as pa

        file, part, offset = self.units[unit]
        try:
            if self.kind == "parquet":
                return self._parquet(file).read_row_group(part, columns=columns)
            with pa.OSFile(str(self.files[file])) as source:
                if offset < 0:
                    batch = pa.ipc.open_file(source).get_batch(part)
                else:
                    source.seek(offset)
                    batch = pa.ipc.read_record_batch(pa.ipc.read_message(source), self.schema)
            return pa.Table.from_batches([batch]).select(columns)
        except (OSError, pa.ArrowException) as exc:
            raise ValueError(f"cannot read {self.where(unit)}: {type(exc).__name__}: {exc}") from None

    def _parquet(self, file: int) -> Any:
        import pyarrow.parquet as pq

        if file not in self._handles:
            if len(self._handles) >= 8:
                self._handles.pop(next(iter(self._handles))).close()
            self._handles[file] = pq.ParquetFile(self.files[file])
        return self._handles[file]

    def __getstate__(self) -> dict[str, Any]:  # open files stay with their process
        return {**self.__dict__, "_handles": {}}


class ImageFiles:
    """The files of an image folder in ``count`` interleaved units; :meth:`read` gives the paths
    (and labels) of one unit."""

    def __init__(self, files: list[Path], labels: list[int] | None, *, unit_size: int = 1024):
        self.files = [str(f) for f in files]
        self.labels = np.asarray(labels, dtype=np.int64) if labels is not None else None
        self.count = max(1, -(-len(files) // unit_size))
        self.unit_rows = np.asarray([len(range(u, len(files), self.count)) for u in range(self.count)], dtype=np.int64)

    def indices(self, unit: int) -> range:
        """File numbers (in sorted order) of ``unit``."""
        return range(unit, len(self.files), self.count)

    def where(self, unit: int, row: int | None = None) -> str:
        return f"image {self.files[self.indices(unit)[row]]}" if row is not None else f"image folder unit {unit}"
