"""Checkpoint save and load: the old single-file format (interpgen 0.1: a header with SHA-256 and
length, then one ``torch.save`` pickle, read with ``weights_only``) against the new folder (Accelerate's
``save_state``/``load_state`` with safetensors weights, our safetensors states, a SHA-256 manifest).

    python benchmarks/checkpoint_format.py --repeats 5

Both hold the same things: weights, EMA, AdamW state (after a few steps), step, data normalisation.
Save: the whole write, fsync and rename; load: checking every file's SHA-256 and reading the
state back into the pipeline and optimiser. One torch thread; the median of the repeats.
Models: the digits U-Net (recipes/images/digits.toml) and the 2D MLP (recipes/2d/moons.toml).
Results go to benchmarks/results/checkpoint_format.{json,md}.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

import interpgen as ig
from interpgen.plugin_manager import registry
from interpgen.recipe import load_recipe
from interpgen.train import run_dir as rd
from interpgen.train.checkpoint import TRAINABLE, read_state, trainer_file, verify
from interpgen.train.distributed import TrainingModel, make_accelerator

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
MAGIC = b"INTERPGEN-CHECKPOINT 2\n"


def old_save(path: Path, state: dict) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    rd.atomic_write_bytes(path, MAGIC + f"{hashlib.sha256(payload).hexdigest()} {len(payload)}\n".encode() + payload)


def old_load(path: Path, pipe: ig.Pipeline, optimizer: torch.optim.Optimizer) -> None:
    data = path.read_bytes()
    end = data.find(b"\n", len(MAGIC))
    digest, length = data[len(MAGIC):end].decode().split(" ")
    payload = data[end + 1:]
    assert len(payload) == int(length) and hashlib.sha256(payload).hexdigest() == digest
    state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    pipe.load_state_dict(state)
    optimizer.load_state_dict(state["optimizer"])


def measure(recipe_path: Path, repeats: int) -> dict:
    recipe = load_recipe(recipe_path, registry(), overrides=["train.batch_size=32"])
    pipe = ig.Pipeline.from_recipe(recipe, root=recipe_path.parent)
    pipe.init_ema()
    acc = make_accelerator()
    optimizer = torch.optim.AdamW(pipe.network.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: 1.0)
    model, optimizer, schedule = acc.prepare(TrainingModel(pipe), optimizer, schedule)
    batches = iter(pipe.data.batches(32, generator=torch.Generator().manual_seed(0)))
    for _ in range(3):  # optimiser state exists
        loss = model(ig.protocols.Batch(*next(batches)), torch.Generator().manual_seed(1))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    params = sum(p.numel() for p in pipe.network.parameters())
    times: dict[str, list[float]] = {k: [] for k in ("old_save", "old_load", "new_save", "new_load")}
    sizes = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for i in range(repeats):
            run = tmp / f"new{i}"
            state = {**pipe.state_dict(), "optimizer": optimizer.state_dict(), "loss_window": [0.0, 0]}
            started = time.perf_counter()
            old_save(tmp / f"old{i}.pt", state)
            times["old_save"].append(time.perf_counter() - started)
            started = time.perf_counter()
            old_load(tmp / f"old{i}.pt", pipe, optimizer)
            times["old_load"].append(time.perf_counter() - started)
            sizes["old"] = (tmp / f"old{i}.pt").stat().st_size
            started = time.perf_counter()
            folder = rd.save_checkpoint(acc, run, 3, pipe.state_dict(), {"step": 3, "world_size": 1,
                                        "loss_window": [0.0, 0], "scaler": None, "data": None, "generators": {}},
                                        model=acc.unwrap_model(model).state_dict(), keep=1)
            times["new_save"].append(time.perf_counter() - started)
            started = time.perf_counter()
            verify(folder)
            pipe.load_state_dict(read_state(folder / TRAINABLE, model=folder / rd.MODEL))
            read_state(folder / trainer_file(0))
            acc.load_state(str(folder))
            times["new_load"].append(time.perf_counter() - started)
            sizes["new"] = sum(p.stat().st_size for p in folder.iterdir())
            shutil.rmtree(run)
    return {"recipe": str(recipe_path.relative_to(ROOT)), "network_parameters": params, "bytes": sizes,
            "seconds": {k: statistics.median(v) for k, v in times.items()}, "all_seconds": times}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = [measure(ROOT / "recipes/images/digits.toml", args.repeats),
               measure(ROOT / "recipes/2d/moons.toml", args.repeats)]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "checkpoint_format.json").write_text(json.dumps(results, indent=2))
    lines = [f"# Checkpoint save and load, old single file against the new folder (median of {args.repeats}, "
             "1 thread)", "", "| model | parameters | old size | new size | old save | new save | old load | new load |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        s, b = r["seconds"], r["bytes"]
        lines.append(f"| {r['recipe']} | {r['network_parameters']:,} | {b['old'] / 1e6:.2f} MB | {b['new'] / 1e6:.2f} MB "
                     f"| {s['old_save'] * 1e3:.1f} ms | {s['new_save'] * 1e3:.1f} ms | {s['old_load'] * 1e3:.1f} ms "
                     f"| {s['new_load'] * 1e3:.1f} ms |")
    (RESULTS / "checkpoint_format.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
