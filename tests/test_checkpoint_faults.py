"""Checkpoints that survive faults: atomic writes, keep-last-k, checksums that catch damaged
files, a training process killed with SIGKILL in the middle of a save, and resuming after it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from interpgen.train import run_dir as rd
from interpgen.cli import main

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


def test_crash_while_saving_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    rd.save_checkpoint(tmp_path, 1, {"x": torch.ones(3)}, keep=3)
    real_replace = os.replace

    def crash(src, dst):
        raise KeyboardInterrupt("killed mid-save")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        rd.save_checkpoint(tmp_path, 2, {"x": torch.zeros(3)}, keep=3)
    monkeypatch.setattr(os, "replace", real_replace)
    latest = rd.latest_checkpoint(tmp_path)
    assert latest.name == "step_00000001.pt"
    torch.testing.assert_close(rd.load_checkpoint(latest)["x"], torch.ones(3))
    assert not list((tmp_path / rd.CHECKPOINT_DIR).glob("*.tmp"))  # no debris


def test_damaged_checkpoints_are_reported(tmp_path):
    path = rd.save_checkpoint(tmp_path, 1, {"x": torch.ones(3)}, keep=3)
    good = path.read_bytes()
    path.write_bytes(good[:100])
    with pytest.raises(rd.CheckpointError, match=r"step_00000001.pt is damaged: truncated \(\d+ of \d+ bytes\)"):
        rd.load_checkpoint(path)
    flipped = bytearray(good)
    flipped[-200] ^= 0x01
    path.write_bytes(bytes(flipped))
    with pytest.raises(rd.CheckpointError, match="is damaged: its contents do not match the checksum"):
        rd.load_checkpoint(path)
    other = tmp_path / "other.pt"
    torch.save({"weights": 1}, other)
    with pytest.raises(rd.CheckpointError, match="is not an interpgen checkpoint \\(format marker missing\\)"):
        rd.load_checkpoint(other)
    with pytest.raises(rd.CheckpointError, match="cannot be read"):
        rd.load_checkpoint(tmp_path / "missing.pt")


def test_resume_from_a_damaged_checkpoint_names_the_fallback(tmp_path):
    rd.save_checkpoint(tmp_path, 10, {"x": torch.ones(1)}, keep=3)
    newest = rd.save_checkpoint(tmp_path, 20, {"x": torch.ones(1)}, keep=3)
    newest.write_bytes(newest.read_bytes()[:-5])
    with pytest.raises(rd.CheckpointError, match=r"cannot resume: checkpoint .*step_00000020.pt is damaged: "
                                                 r"truncated .*; delete it to resume from step_00000010.pt"):
        rd.load_for_resume(tmp_path)
    newest.unlink()  # the pointer now names a missing file: the newest complete one is used
    assert rd.load_for_resume(tmp_path)["step"] == 10
    assert rd.load_for_resume(tmp_path / "nothing") is None


def test_keep_last_k(tmp_path):
    for step in range(1, 6):
        rd.save_checkpoint(tmp_path, step, {}, keep=2)
    assert [p.name for p in rd.list_checkpoints(tmp_path)] == ["step_00000004.pt", "step_00000005.pt"]
    assert rd.latest_checkpoint(tmp_path).name == "step_00000005.pt"


def _train_cmd(recipe: Path, run: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "interpgen", "train", str(recipe), "--output", str(run), "--quiet", *extra]


@pytest.mark.slow
def test_sigkill_during_save_keeps_the_last_good_checkpoint_and_resume_is_exact(tmp_path):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    run = tmp_path / "run"
    env = {**os.environ, rd.PAUSE_ENV: "20:120", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(_train_cmd(recipe, run), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    folder = run / rd.CHECKPOINT_DIR
    deadline = time.monotonic() + 120
    try:
        while not list(folder.glob(".step_00000020.pt.*.tmp")):  # the save of step 20 is under way
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the save of step 20 never started"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert [p.name for p in rd.list_checkpoints(run)] == ["step_00000010.pt"]
    assert rd.load_checkpoint(rd.latest_checkpoint(run))["step"] == 10
    assert list(folder.glob(".*.tmp"))  # the half-done save is left behind ...
    assert main(["train", str(recipe), "--output", str(run), "--quiet", "--resume"]) == 0
    assert not list(run.rglob("*.tmp"))  # ... and swept away on resume
    assert [p.name for p in rd.list_checkpoints(run)] == ["step_00000020.pt", "step_00000030.pt"]
    assert [r["step"] for r in rd.read_metrics(run)] == [5, 10, 15, 20, 25, 30]
    straight = tmp_path / "straight"
    assert main(["train", str(recipe), "--output", str(straight), "--quiet"]) == 0
    resumed, reference = (rd.load_checkpoint(rd.latest_checkpoint(r)) for r in (run, straight))
    for key in ("network", "ema"):
        for name, value in reference[key].items():
            assert torch.equal(resumed[key][name], value), (key, name)
    assert [r["loss"] for r in rd.read_metrics(run)] == [r["loss"] for r in rd.read_metrics(straight)]


def test_cli_resume_reports_a_damaged_checkpoint(tmp_path, capsys):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE.replace("steps = 30", "steps = 20"))
    run = tmp_path / "run"
    assert main(["train", str(recipe), "--output", str(run), "--quiet"]) == 0
    newest = rd.latest_checkpoint(run)
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF
    newest.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["train", str(recipe), "--output", str(run), "--quiet", "--resume", "--set", "train.steps=30"]) == 2
    err = capsys.readouterr().err
    assert "step_00000020.pt is damaged" in err and "delete it to resume from step_00000010.pt" in err
    newest.unlink()
    assert main(["train", str(recipe), "--output", str(run), "--quiet", "--resume", "--set", "train.steps=30"]) == 0
    assert [p.name for p in rd.list_checkpoints(run)] == ["step_00000020.pt", "step_00000030.pt"]
