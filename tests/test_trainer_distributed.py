"""Two CPU processes through `accelerate launch` (gloo): the run finishes, both processes end
with identical weights, and a two-process run resumes exactly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from interpgen.train import run_dir as rd
from interpgen.train.checkpoint import load_checkpoint
from launch import TWO_PROCESS_RECIPE as RECIPE, launch_two as _launch

pytestmark = pytest.mark.skipif(shutil.which("accelerate") is None, reason="the accelerate command is not installed")


def _weights(run: Path) -> dict:
    return load_checkpoint(rd.latest_checkpoint(run))


@pytest.mark.slow
def test_two_processes_finish_in_sync_and_resume_exactly(tmp_path):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    straight = tmp_path / "straight"
    done = _launch(recipe, straight)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("trained 20 steps") == 1  # only the main process reports
    processes = json.loads((straight / rd.PROCESSES).read_text())
    assert processes["world_size"] == 2 and processes["step"] == 20
    first, second = processes["weights_sha256"]
    assert first == second
    assert [r["step"] for r in rd.read_metrics(straight)] == [5, 10, 15, 20]
    assert rd.read_metrics(straight)[0]["samples_per_second"] == pytest.approx(
        rd.read_metrics(straight)[0]["steps_per_second"] * 64)

    # as if killed after the checkpoint of step 10: resuming with two processes retraces the run
    resumed = tmp_path / "resumed"
    shutil.copytree(straight, resumed)
    shutil.rmtree(resumed / rd.CHECKPOINT_DIR / "step_00000020")
    more = _launch(recipe, resumed, "--resume")
    assert more.returncode == 0, more.stderr[-3000:]
    a, b = load_checkpoint(straight / rd.CHECKPOINT_DIR / "step_00000020"), _weights(resumed)
    assert a["step"] == b["step"] == 20
    assert {p.name for p in (straight / rd.CHECKPOINT_DIR / "step_00000020").glob("trainer_*")} == {
        "trainer_0.safetensors", "trainer_1.safetensors"}
    for key in ("network", "ema"):
        for name, value in a[key].items():
            assert torch.equal(b[key][name], value), (key, name)
    assert [r["loss"] for r in rd.read_metrics(resumed)] == [r["loss"] for r in rd.read_metrics(straight)]


def test_ddp_is_told_about_unused_parameters_only_when_asked():
    from interpgen.train.distributed import make_accelerator

    assert make_accelerator("no", find_unused_parameters=True).ddp_handler.find_unused_parameters
    assert make_accelerator("no").ddp_handler is None
