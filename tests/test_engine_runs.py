"""The engine on Accelerate's own machinery: exact resume with a coupling that draws from its own
generator (paired ahead in a thread), trackers from train.log_with, the LambdaLR schedule in the
checkpoint, precisions changing within one process, the run-directory lock, and a checkpoint of a
differently shaped model."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

import interpgen as ig
from interpgen.cli import main
from interpgen.train import LaunchError, guard
from interpgen.train import run_dir as rd
from interpgen.train.checkpoint import read_state
from interpgen.train.loop import lr_factor


def pipe_of(hidden: int = 32, **kw) -> ig.Pipeline:
    return ig.Pipeline(data=ig.part("dataset", "moons"), network=ig.part("network", "mlp", hidden=hidden, depth=2), **kw)


def quiet(**kw) -> ig.Train:
    return ig.Train(**{"batch_size": 16, "sample_every": 0, "pictures": False, "log_every": 2, **kw})


@pytest.mark.slow
def test_resume_is_exact_with_a_coupling_that_keeps_its_own_generator(tmp_path):
    """sinkhorn draws from the plan with its own generator, in the pair-ahead thread: the
    checkpoint carries the generator's state as of the batches trained, not of the one ahead."""
    coupling = ig.part("coupling", "sinkhorn", reg=0.5)
    cfg = quiet(steps=8, checkpoint_every=4, seed=4)
    straight = pipe_of(coupling=coupling)
    straight.fit(cfg, run_dir=tmp_path / "a", progress=False)
    first = pipe_of(coupling=coupling)
    first.fit(quiet(steps=4, checkpoint_every=4, seed=4), run_dir=tmp_path / "b", progress=False)
    saved = read_state(rd.latest_checkpoint(tmp_path / "b") / "trainer_0.safetensors")
    assert set(saved["generators"]) == {"coupling.generator"}
    resumed = pipe_of(coupling=coupling)
    resumed.fit(cfg, run_dir=tmp_path / "b", resume=True, progress=False)
    for p, q in zip(straight.network.parameters(), resumed.network.parameters(), strict=True):
        assert torch.equal(p, q)
    assert [r["loss"] for r in rd.read_metrics(tmp_path / "a")] == [r["loss"] for r in rd.read_metrics(tmp_path / "b")]


def test_unknown_and_missing_trackers_are_refused_with_the_list():
    with pytest.raises(LaunchError, match=r"train.log_with: unknown tracker 'tensorbored'; Accelerate knows "
                                          r"aim, clearml, comet_ml, dvclive, mlflow, .*tensorboard.*wandb"):
        pipe_of().fit(quiet(steps=1, log_with=("tensorbored",)))
    with pytest.raises(LaunchError, match=r"tracker 'aim' is not installed \(install aim\); installed: .*"
                                          r"\(metrics.jsonl is always written\)"):
        pipe_of().fit(quiet(steps=1, log_with=("aim",)))


def test_tensorboard_tracker_writes_events_beside_metrics_jsonl(tmp_path):
    pytest.importorskip("tensorboard")
    pipe_of().fit(quiet(steps=4, log_with=("tensorboard",)), run_dir=tmp_path, progress=False)
    events = list((tmp_path / rd.TRACKERS).rglob("events.out.tfevents.*"))
    assert events and sum(e.stat().st_size for e in events) > 0
    assert [r["step"] for r in rd.read_metrics(tmp_path)] == [2, 4]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars = EventAccumulator(str(tmp_path / rd.TRACKERS / "interpgen")).Reload()
    assert [e.step for e in scalars.Scalars("loss")] == [2, 4]


def test_the_schedule_is_a_checkpointed_lambda_lr_recomputed_for_a_longer_run(tmp_path):
    cfg = quiet(steps=10, warmup_steps=3, lr_schedule="cosine", checkpoint_every=5, log_every=1)
    pipe_of().fit(cfg, run_dir=tmp_path, progress=False)
    scheduler = torch.load(rd.latest_checkpoint(tmp_path) / "scheduler.bin", weights_only=True)
    assert scheduler["last_epoch"] == 10
    lrs = [r["lr"] for r in rd.read_metrics(tmp_path)]
    assert lrs == pytest.approx([cfg.lr * lr_factor(cfg, k) for k in range(10)])
    longer = ig.Train(**{**{f: getattr(cfg, f) for f in ("batch_size", "warmup_steps", "lr_schedule", "log_every",
                                                         "sample_every", "pictures", "checkpoint_every")}, "steps": 20})
    pipe_of().fit(longer, run_dir=tmp_path, resume=True, progress=False)
    lrs = [r["lr"] for r in rd.read_metrics(tmp_path)][10:]
    assert lrs == pytest.approx([cfg.lr * lr_factor(longer, k) for k in range(10, 20)])


def test_precisions_change_between_runs_in_one_process():
    seen: list[torch.dtype] = []
    for precision in ("bf16", "no", "bf16"):
        pipe = pipe_of()
        handle = pipe.network.register_forward_hook(lambda m, a, out: seen.append(out.dtype))
        pipe.fit(quiet(steps=1, mixed_precision=precision), progress=False)
        handle.remove()
    assert seen == [torch.bfloat16, torch.float32, torch.bfloat16]
    assert all(p.dtype == torch.float32 for p in pipe.network.parameters())


def _lock(run, pid: int, host: str | None = None) -> None:
    run.mkdir(parents=True, exist_ok=True)
    (run / guard.LOCK).write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(),
                                              "started": guard._started(pid), "since": "earlier"}))


def test_a_second_writer_is_refused_and_a_dead_ones_lock_is_taken_over(tmp_path, capsys):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _lock(tmp_path / "run", holder.pid)
        with pytest.raises(ValueError, match=rf"is in use by process {holder.pid} on host {socket.gethostname()} "
                                             rf"\(since earlier\); wait for it to finish, or delete .*\.lock"):
            pipe_of().fit(quiet(steps=2), run_dir=tmp_path / "run", progress=False)
        _lock(tmp_path / "far", holder.pid, host="another-host")  # another host: cannot be seen, so it holds
        with pytest.raises(ValueError, match="in use by process .* on host another-host"):
            pipe_of().fit(quiet(steps=2), run_dir=tmp_path / "far", progress=False)
    finally:
        holder.kill()
        holder.wait()
    capsys.readouterr()
    pipe_of().fit(quiet(steps=2), run_dir=tmp_path / "run", progress=False, resume=True)  # holder gone
    assert f"was held by process {holder.pid}" in capsys.readouterr().err
    assert not (tmp_path / "run" / guard.LOCK).exists() and (tmp_path / "run" / rd.RECIPE).exists()


def test_a_checkpoint_of_a_differently_shaped_model_is_named(tmp_path, capsys):
    pipe_of(32).fit(quiet(steps=2), run_dir=tmp_path, progress=False)
    wider = pipe_of(64)
    (tmp_path / rd.RECIPE).write_text(wider.run_files(quiet(steps=4))[rd.RECIPE])
    with pytest.raises(rd.CheckpointError, match=r"checkpoint .*step_00000002: the checkpoint does not fit this "
                                                 r"model: .*size mismatch"):
        wider.fit(quiet(steps=4), run_dir=tmp_path, resume=True, progress=False)
    assert main(["sample", str(tmp_path), "--num", "4", "--output", str(tmp_path / "x.npy")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "does not fit this model" in err and err.count("\n") == 1


def test_an_unwritable_metrics_file_is_one_message(tmp_path):
    pipe_of().fit(quiet(steps=2), run_dir=tmp_path, progress=False)
    os.remove(tmp_path / rd.METRICS)
    os.mkdir(tmp_path / rd.METRICS)  # a folder where the file goes: every write fails
    with pytest.raises(rd.CheckpointError, match=r"cannot write .*metrics.jsonl: Is a directory"):
        pipe_of().fit(quiet(steps=4), run_dir=tmp_path, progress=False, resume=True)
