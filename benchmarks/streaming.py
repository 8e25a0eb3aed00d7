"""Streaming against in-memory data: samples per second and the training process's peak memory.

    python benchmarks/streaming.py --sizes 0.5 2 --workdir /tmp

The image set is scikit-image's 200 face crops (25x25 grey) stored as PNG bytes in Parquet shards
(row groups of 1,024 rows, no dictionary, no compression: PNG is compressed already), repeated
until the shards hold ``size`` GB on disk. Each measurement runs in a fresh process, which

* builds the data set: ``shards`` streamed (``num_workers`` 0 or 2, flips on, ``shuffle_window``
  10,000), or the same rows in memory: every PNG decoded once into a ``uint8`` array served by
  ``FiniteSource``, what the in-memory image sets (``image_folder``, ``hub``) hold;
* times ``--batches`` batches of 256 drawn from ``batch_stream`` (the loader alone), then trains
  ``--train-steps`` steps of ``Pipeline.fit`` with a small MLP on the same data (the workers
  decoding while the step runs) and takes the median of the engine's own ``samples_per_second``
  over its logging windows (the first one, which starts the workers, left out);
* reports ``VmHWM`` of /proc/self/status (its peak resident memory) and the largest
  ``ru_maxrss`` of its finished children (the DataLoader workers).

Streamed settings run ``--repeats`` times, alternating, and report median rates (the machine may
be busy: the load average is reported beside them). The shards are written under ``--workdir``
and deleted at the end (``--keep`` keeps them).
Results go to benchmarks/results/streaming.{json,md}.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
ROWS_PER_GROUP = 1024
ROWS_PER_FILE = 256 * ROWS_PER_GROUP


def write_shards(folder: Path, gigabytes: float) -> dict:
    """Faces as PNG bytes, repeated into Parquet files until they hold ``gigabytes`` GB."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image
    from skimage.data import lfw_subset

    faces = (np.asarray(lfw_subset()) * 255).round().astype(np.uint8)
    encoded = []
    for face in faces:
        buffer = io.BytesIO()
        Image.fromarray(face).save(buffer, format="PNG")
        encoded.append(buffer.getvalue())
    folder.mkdir(parents=True)
    target, written, rows, index = gigabytes * 1e9, 0, 0, 0
    while written < target:
        picks = np.arange(rows, rows + ROWS_PER_FILE) % len(encoded)
        table = pa.table({"image": pa.array([encoded[i] for i in picks], pa.binary()),
                          "label": pa.array((picks >= 100).astype(np.int64))})
        path = folder / f"part-{index:05d}.parquet"
        pq.write_table(table, path, row_group_size=ROWS_PER_GROUP, use_dictionary=False, compression="none")
        written += path.stat().st_size
        rows += ROWS_PER_FILE
        index += 1
    return {"bytes": written, "rows": rows, "files": index, "png_bytes_per_row": float(np.mean([len(e) for e in encoded]))}


def in_memory_source(folder: Path):
    """Every row decoded once into memory (uint8), served by FiniteSource as the in-memory image
    data sets are."""
    import numpy as np
    import pyarrow.parquet as pq
    from interpgen_plugins.datasets.assemble import image_source
    from interpgen_plugins.datasets.stream_rows import decode_image

    files = sorted(folder.glob("*.parquet"))
    total = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    pixels = np.empty((total, 1, 25, 25), dtype=np.uint8)
    labels = np.empty(total, dtype=np.int64)
    row = 0
    for f in files:
        shard = pq.ParquetFile(f)
        for g in range(shard.metadata.num_row_groups):
            table = shard.read_row_group(g)
            for data in table.column("image").to_pylist():
                pixels[row] = decode_image(data, None, mode="L", size=None, name=str(f))
                row += 1
            labels[row - table.num_rows:row] = table.column("label").to_numpy()
    return image_source("in memory", pixels, labels, low=0.0, high=255.0, holdout=0.1, split_seed=0, flip=True,
                        num_classes=2)


def measure(args: argparse.Namespace) -> dict:
    """One measurement, in this (fresh) process."""
    import resource

    import torch

    import interpgen as ig
    from interpgen.train import read_metrics
    from interpgen.train.batches import batch_stream

    torch.set_num_threads(1)
    started = time.perf_counter()
    if args.mode == "memory":
        source = in_memory_source(Path(args.folder))
        data = source
    else:
        data = ig.part("dataset", "shards", path=args.folder, label_column="label", num_classes=2, mode="L",
                       flip=True, num_workers=args.workers, shuffle_window=10_000)
        source = ig.registry().create("dataset", "shards", data)
    built = time.perf_counter() - started
    stream = batch_stream(source, args.batch, generator=torch.Generator().manual_seed(0))
    for _ in range(10):
        next(stream)
    t0 = time.perf_counter()
    for _ in range(args.batches):
        next(stream)
    loader = args.batches * args.batch / (time.perf_counter() - t0)
    stream.close()
    pipe = ig.Pipeline(data=data, network=ig.part("network", "mlp", hidden=64, depth=2))
    run = Path(tempfile.mkdtemp(prefix="run-", dir=Path(args.folder).parent))
    pipe.fit(ig.Train(steps=args.train_steps, batch_size=args.batch, ema_decay=0.0, log_every=args.log_every,
                      checkpoint_every=10 * args.train_steps, sample_every=0, pictures=False, pair_ahead=False),
             run_dir=run, progress=False)
    rates = sorted(r["samples_per_second"] for r in read_metrics(run)[1:])  # the first window starts the workers
    trained = rates[len(rates) // 2]
    shutil.rmtree(run)
    del stream, pipe
    status = Path("/proc/self/status").read_text()
    peak = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"load_average": os.getloadavg()[0], "build_seconds": built, "loader_samples_per_second": loader,
            "train_samples_per_second": trained,
            "peak_rss_mb": peak / 1024, "worker_peak_rss_mb": children / 1024 if args.workers else None,
            "rows": len(source)}


def baseline_rss() -> float:
    """VmHWM of a process that imports torch and interpgen and loads the plugins, nothing else."""
    code = ("import interpgen as ig, pathlib; ig.registry(); s = pathlib.Path('/proc/self/status').read_text();"
            "print(next(l.split()[1] for l in s.splitlines() if l.startswith('VmHWM')))")
    return int(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.5, 2.0], help="GB of shards")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--train-steps", type=int, default=200)
    parser.add_argument("--log-every", type=int, default=25)
    parser.add_argument("--workdir", default=tempfile.gettempdir())
    parser.add_argument("--repeats", type=int, default=3, help="runs of each streamed setting (medians)")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--skip-memory-above", type=float, default=2.0, help="no in-memory run above this size")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args)))
        return
    root = Path(tempfile.mkdtemp(prefix="interpgen-streaming-", dir=args.workdir))
    rows, sets = [], {}
    try:
        for size in args.sizes:
            folder = root / f"{size:g}GB"
            sets[size] = write_shards(folder, size)
            print(f"wrote {sets[size]['bytes'] / 1e9:.2f} GB, {sets[size]['rows']} rows", flush=True)
            runs = [("stream", 0), ("stream", 2)] * args.repeats
            runs += [("memory", 0)] if size <= args.skip_memory_above else []
            measured: dict[tuple[str, int], list[dict]] = {}
            for mode, workers in runs:  # the streamed runs alternate, so the machine's load hits both alike
                measured.setdefault((mode, workers), []).append(run_one(args, mode, folder, workers))
                print(json.dumps({"size_gb": size, "mode": mode, "workers": workers,
                                  **measured[(mode, workers)][-1]}), flush=True)
            for (mode, workers), results in measured.items():
                rows.append({"size_gb": size, "data_bytes": sets[size]["bytes"], "mode": mode, "workers": workers,
                             **summarise(results), "repeats": results})
            if not args.keep:
                shutil.rmtree(folder)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    report = {"rows": rows, "sets": {str(k): v for k, v in sets.items()}, "baseline_rss_mb": baseline_rss(),
              "batch": args.batch, "batches": args.batches, "train_steps": args.train_steps,
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "streaming.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["| data | source | workers | loader samples/s | training samples/s | peak RSS, training process (MB) | "
             "peak RSS, one worker (MB) | build (s) | load average |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        worker = f"{r['worker_peak_rss_mb']:.0f}" if r["worker_peak_rss_mb"] else "-"
        lines.append(f"| {r['data_bytes'] / 1e9:.2f} GB ({r['rows']:,} training rows) | {r['mode']} | {r['workers']} | "
                     f"{r['loader_samples_per_second']:,.0f} | {r['train_samples_per_second']:,.0f} | "
                     f"{r['peak_rss_mb']:,.0f} | {worker} | {r['build_seconds']:.1f} | {r['load_average']:.1f} |")
    lines.append(f"\nRates are medians over {args.repeats} alternating runs (in memory: one run); peak RSS is the "
                 f"largest. A process that only imports interpgen and loads its plugins peaks at "
                 f"{report['baseline_rss_mb']:.0f} MB.")
    (RESULTS / "streaming.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def run_one(args: argparse.Namespace, mode: str, folder: Path, workers: int) -> dict:
    """One measurement in a fresh process."""
    cmd = [sys.executable, __file__, "--measure", "--mode", mode, "--folder", str(folder), "--workers", str(workers),
           "--batch", str(args.batch), "--batches", str(args.batches), "--train-steps", str(args.train_steps),
           "--log-every", str(args.log_every)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarise(results: list[dict]) -> dict:
    """Median rates, largest peak memory, over repeated measurements."""
    def median(key: str) -> float:
        values = sorted(r[key] for r in results)
        return values[len(values) // 2]

    workers = [r["worker_peak_rss_mb"] for r in results if r["worker_peak_rss_mb"]]
    return {"rows": results[0]["rows"], "loader_samples_per_second": median("loader_samples_per_second"),
            "train_samples_per_second": median("train_samples_per_second"), "build_seconds": median("build_seconds"),
            "load_average": median("load_average"), "peak_rss_mb": max(r["peak_rss_mb"] for r in results),
            "worker_peak_rss_mb": max(workers) if workers else None}


if __name__ == "__main__":
    main()
