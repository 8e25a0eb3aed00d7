"""Checkpoints that survive faults: damaged, truncated, foreign and missing files each named; a
save that fails (full disk) or is killed with SIGKILL keeps the last good checkpoint; resume after
it is exact; `latest` cannot point out of its run; old single-file checkpoints are refused."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import interpgen as ig
from interpgen.cli import main
from interpgen.train import run_dir as rd
from interpgen.train.checkpoint import MANIFEST, load_checkpoint, read_state, verify

RECIPE = """
[data]
name = "moons"

[network]
name = "mlp"
hidden = 32
depth = 2

[train]
steps = 30
batch_size = 32
log_every = 5
checkpoint_every = 10
sample_every = 0
pictures = false
seed = 3
"""


def _fit(run: Path, steps: int = 20, **kw) -> ig.Pipeline:
    pipe = ig.Pipeline(data=ig.part("dataset", "moons"), network=ig.part("network", "mlp", hidden=32, depth=2))
    pipe.fit(ig.Train(steps=steps, batch_size=16, log_every=5, checkpoint_every=10, keep_checkpoints=3,
                      sample_every=0, pictures=False, **kw), run_dir=run, progress=False, resume=run.exists())
    return pipe


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("trained") / "run"
    _fit(run)
    return run


def _copy(trained: Path, tmp_path: Path) -> Path:
    shutil.copytree(trained, tmp_path / "run")
    return tmp_path / "run"


def test_checkpoint_layout_and_pipeline_load_without_pickle(trained):
    newest = rd.latest_checkpoint(trained)
    assert newest.name == "step_00000020" and newest.is_dir()
    names = {p.name for p in newest.iterdir()}
    assert {"model.safetensors", "trainable.safetensors", "trainer_0.safetensors", "optimizer.bin",
            "scheduler.bin", MANIFEST} <= names
    manifest = json.loads((newest / MANIFEST).read_text())
    assert set(manifest["files"]) == names - {MANIFEST} and manifest["step"] == 20
    assert (trained / "weights.safetensors").is_file()
    # Pipeline.load reads safetensors only: make unpickling impossible while it runs
    real = torch.load
    torch.load = lambda *a, **k: pytest.fail("Pipeline.load unpickled something")
    try:
        pipe = ig.Pipeline.load(trained)
        shutil.rmtree(trained.parent / "export", ignore_errors=True)
        export = trained.parent / "export"
        export.mkdir()
        shutil.copy(trained / rd.RECIPE, export)
        shutil.copy(trained / "weights.safetensors", export)
        exported = ig.Pipeline.load(export)  # the export and the recipe alone are a loadable model
    finally:
        torch.load = real
    assert pipe.step == exported.step == 20
    for a, b in zip(pipe.ema.parameters(), exported.ema.parameters(), strict=True):
        assert torch.equal(a, b)


def test_damaged_truncated_missing_and_foreign_files_are_named(trained, tmp_path):
    run = _copy(trained, tmp_path)
    newest = rd.latest_checkpoint(run)
    model = newest / "model.safetensors"
    model.write_bytes(model.read_bytes()[:100])
    with pytest.raises(rd.CheckpointError, match=r"step_00000020 is damaged: model.safetensors is truncated or grown "
                                                 r"\(100 of \d+ bytes\)"):
        verify(newest)
    with pytest.raises(rd.CheckpointError, match="model.safetensors is truncated"):
        ig.Pipeline.load(run)
    shutil.copy(trained / "checkpoints/step_00000020/model.safetensors", model)
    optimizer = newest / "optimizer.bin"
    data = bytearray(optimizer.read_bytes())
    data[len(data) // 2] ^= 0x01
    optimizer.write_bytes(bytes(data))
    with pytest.raises(rd.CheckpointError, match=r"optimizer.bin does not match its SHA-256 in manifest.json"):
        verify(newest)
    (newest / "scheduler.bin").unlink()
    with pytest.raises(rd.CheckpointError, match=r"is damaged: optimizer.bin does not match|scheduler.bin is missing"):
        verify(newest)
    with pytest.raises(rd.CheckpointError, match=r"scheduler.bin is missing"):
        verify(newest, ["scheduler.bin"])
    foreign = run / rd.CHECKPOINT_DIR / "step_00000030"
    foreign.mkdir()
    (foreign / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(rd.CheckpointError, match=r"step_00000030 is incomplete or not an interpgen checkpoint "
                                                 r"\(no manifest.json\)"):
        verify(foreign)
    (foreign / MANIFEST).write_text(json.dumps({"format": "something else"}))
    with pytest.raises(rd.CheckpointError, match=r"is not an interpgen checkpoint \(manifest.json says "
                                                 r"'something else'"):
        verify(foreign)
    state = newest / "trainable.safetensors"  # altered inside, manifest updated too: its own digest catches it
    data = bytearray(state.read_bytes())
    data[-3] ^= 0x01
    state.write_bytes(bytes(data))
    with pytest.raises(rd.CheckpointError, match="tensors do not match the SHA-256 in its header"):
        read_state(state)


def test_resume_from_a_damaged_checkpoint_names_the_fallback(trained, tmp_path):
    run = _copy(trained, tmp_path)
    newest = rd.latest_checkpoint(run)
    trainer = newest / "trainer_0.safetensors"
    trainer.write_bytes(trainer.read_bytes()[:-5])
    with pytest.raises(rd.CheckpointError, match=r"cannot resume: checkpoint .*step_00000020 is damaged: "
                                                 r"trainer_0.safetensors is truncated .*; delete it to resume from "
                                                 r"step_00000010, the previous checkpoint"):
        rd.load_for_resume(run)
    shutil.rmtree(newest)  # the pointer now names a missing checkpoint: the newest complete one is used
    assert rd.load_for_resume(run).name == "step_00000010"
    assert rd.load_for_resume(tmp_path / "nothing") is None


def test_latest_cannot_name_a_file_outside_its_run(trained, tmp_path):
    run = _copy(trained, tmp_path)
    (run / rd.CHECKPOINT_DIR / rd.LATEST).write_text("../../other/checkpoints/step_00000300")
    with pytest.raises(rd.CheckpointError, match=r"names '../../other/checkpoints/step_00000300', which is not a "
                                                 r"checkpoint of this run .* delete .*latest to use the newest"):
        rd.latest_checkpoint(run)
    (run / rd.CHECKPOINT_DIR / rd.LATEST).unlink()
    outside = tmp_path / "outside"
    shutil.copytree(rd.latest_checkpoint(run), outside)
    (run / rd.CHECKPOINT_DIR / "step_00000099").symlink_to(outside, target_is_directory=True)
    assert rd.latest_checkpoint(run).name == "step_00000020"  # a link is not a checkpoint of this run


def test_old_single_file_checkpoints_are_refused_with_what_to_do(tmp_path, capsys):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    run = tmp_path / "old"
    assert main(["train", str(recipe), "--output", str(run), "--quiet", "--set", "train.steps=10"]) == 0
    shutil.rmtree(run / rd.CHECKPOINT_DIR)
    (run / "weights.safetensors").unlink()
    (run / rd.CHECKPOINT_DIR).mkdir()
    (run / rd.CHECKPOINT_DIR / "step_00000010.pt").write_bytes(b"INTERPGEN-CHECKPOINT 2\n...")
    capsys.readouterr()
    assert main(["train", str(recipe), "--output", str(run), "--quiet", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "step_00000010.pt is a checkpoint of the old single-file format" in err
    assert "train the run again with --overwrite, or sample from it with interpgen 0.1" in err
    with pytest.raises(rd.CheckpointError, match="old single-file format"):
        ig.Pipeline.load(run)


def test_a_failed_save_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    run = tmp_path / "run"
    real = rd.write_manifest

    def full_disk(folder, step):
        if step == 20:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(folder, step)

    monkeypatch.setattr(rd, "write_manifest", full_disk)
    assert main(["train", str(recipe), "--output", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "cannot save the checkpoint" in err and "step_00000020: No space left on device" in err
    assert [p.name for p in rd.list_checkpoints(run)] == ["step_00000010"]
    assert rd.latest_checkpoint(run).name == "step_00000010"
    assert not list((run / rd.CHECKPOINT_DIR).glob(".*"))  # no half-written folder left
    assert not (run / ".lock").exists()  # the lock went with the failed run


def test_a_read_only_run_folder_is_one_message(tmp_path, monkeypatch, capsys):
    from interpgen.train import guard

    def read_only(run):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(Path(run) / guard.LOCK))

    monkeypatch.setattr(guard, "acquire", read_only)
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    assert main(["train", str(recipe), "--output", str(tmp_path / "ro"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot create ") and "ro/.lock: Read-only file system" in err


def _train_cmd(recipe: Path, run: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "interpgen", "train", str(recipe), "--output", str(run), "--quiet", *extra]


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def _wait_for(condition, proc: subprocess.Popen, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.mark.slow
def test_sigkill_during_save_keeps_the_last_good_checkpoint_and_resume_is_exact(tmp_path, capsys):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    run = tmp_path / "run"
    env = {**ENV, rd.PAUSE_ENV: "20:120"}
    proc = subprocess.Popen(_train_cmd(recipe, run), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    folder = run / rd.CHECKPOINT_DIR
    try:  # the save of step 20 is under way: its folder is complete but not yet renamed
        _wait_for(lambda: (folder / ".step_00000020.tmp" / MANIFEST).exists(), proc, "the save of step 20 never started")
        # a second writer is refused while the first one runs, with its process id and host
        assert main(["train", str(recipe), "--output", str(run), "--quiet", "--resume"]) == 2
        err = capsys.readouterr().err
        assert f"is in use by process {proc.pid} on host {os.uname().nodename}" in err
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert [p.name for p in rd.list_checkpoints(run)] == ["step_00000010"]
    assert load_checkpoint(rd.latest_checkpoint(run))["step"] == 10
    assert list(folder.glob(".*.tmp"))  # the half-done save is left behind ...
    assert main(["train", str(recipe), "--output", str(run), "--quiet", "--resume"]) == 0
    assert "was held by process" in capsys.readouterr().err  # the dead writer's lock was taken over
    assert not list(run.rglob("*.tmp"))  # ... and swept away on resume
    assert [p.name for p in rd.list_checkpoints(run)] == ["step_00000020", "step_00000030"]
    assert [r["step"] for r in rd.read_metrics(run)] == [5, 10, 15, 20, 25, 30]
    straight = tmp_path / "straight"
    assert main(["train", str(recipe), "--output", str(straight), "--quiet"]) == 0
    resumed, reference = (load_checkpoint(rd.latest_checkpoint(r)) for r in (run, straight))
    for key in ("network", "ema"):
        for name, value in reference[key].items():
            assert torch.equal(resumed[key][name], value), (key, name)
    assert [r["loss"] for r in rd.read_metrics(run)] == [r["loss"] for r in rd.read_metrics(straight)]


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_save_the_current_step_and_exit_with_one_line(tmp_path, signum, code):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE.replace("steps = 30", "steps = 1000000").replace("checkpoint_every = 10",
                                                                             "checkpoint_every = 100000"))
    run = tmp_path / "run"
    proc = subprocess.Popen(_train_cmd(recipe, run), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        _wait_for(lambda: len(rd.read_metrics(run)) >= 2, proc, "training never logged")
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    assert "Traceback" not in err and err.count("\n") == 1
    saved = rd.latest_checkpoint(run)
    step = int(saved.name.split("_")[1])
    name = "SIGTERM" if signum == signal.SIGTERM else "SIGINT"
    assert err == f"interpgen: stopped by {name} at step {step}; saved {saved}; continue with --resume\n"
    assert step > 10 and load_checkpoint(saved)["step"] == step
    assert not (run / ".lock").exists()
    assert main(["train", str(recipe), "--output", str(run), "--quiet", "--resume",
                 "--set", f"train.steps={step + 3}"]) == 0
    assert load_checkpoint(rd.latest_checkpoint(run))["step"] == step + 3


def test_cli_resume_reports_a_damaged_checkpoint(tmp_path, capsys):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE.replace("steps = 30", "steps = 20"))
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--output", str(run), "--quiet"]) == 0
    newest = rd.latest_checkpoint(run) / "model.safetensors"
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    newest.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["train", str(recipe), "--output", str(run), "--quiet", "--resume", "--set", "train.steps=30"]) == 2
    err = capsys.readouterr().err
    assert "step_00000020 is damaged: model.safetensors does not match its SHA-256" in err
    assert "delete it to resume from step_00000010" in err
    shutil.rmtree(newest.parent)
    assert main(["train", str(recipe), "--output", str(run), "--quiet", "--resume", "--set", "train.steps=30"]) == 0
    assert [p.name for p in rd.list_checkpoints(run)] == ["step_00000020", "step_00000030"]
