"""Scale-out launches on a CPU (docs/training.md, "Several processes" and "FSDP"; recipes/accelerate/).

* every code path two CPU processes can take: plain DDP (the reference run), gradient accumulation
  with bf16 autocast, and an LSI run whose autoencoder and learnable prior train with the network and
  whose parameters go unused in some steps (DDP's find_unused_parameters);
* two "machines" on localhost: two ``accelerate launch`` with ``--num_machines 2`` and machine ranks
  0 and 1, one process each, one rendezvous on 127.0.0.1; they train the same weights, bit for bit,
  as the two processes of one launch;
* FSDP: Accelerate does not run its FSDP plugin on a CPU (it keeps MULTI_CPU and would wrap the
  model in DDP), and the trainer refuses that launch. The engine's FSDP code path (FSDP2 fully_shard
  over gloo, sharded save_state / load_state, the EMA and the export gathered whole) runs here through
  a driver that lets Accelerate pick FSDP for a CPU launch as it does for GPUs.

Ports are free ports of 127.0.0.1 (29500, Accelerate's default, collides between parallel runs).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

import interpgen as ig
from interpgen.protocols import CheckpointError
from interpgen.recipe import load_recipe
from interpgen.train import run_dir as rd
from interpgen.train.checkpoint import MANIFEST, load_checkpoint
from launch import TWO_PROCESS_RECIPE as RECIPE, free_port, launch_env

CONFIGS = Path(__file__).resolve().parents[1] / "recipes" / "accelerate"

LSI_RECIPE = """
[data]
name = "digits"
labels = true

[autoencoder]
name = "conv"
channels = 8
latent_channels = 2

[prior]
name = "diagonal_gaussian"
learnable = true

[interpolant]
name = "lsi_bridge"

[objective]
name = "lsi"
encoder_training = "pretrain_then_freeze"   # only the autoencoder trains, then only the network
pretrain_steps = 4
label_dropout = 0.1

[network]
name = "mlp"
hidden = 32
depth = 2

[train]
steps = 8
batch_size = 16
log_every = 4
checkpoint_every = 8
ema_decay = 0.9
sample_every = 0
pictures = false
num_processes = 2
seed = 3
"""

# Accelerate's state selects FSDP only for MULTI_GPU and the other accelerators' kinds; this makes
# it do the same for MULTI_CPU, then runs the command line: nothing of the engine is changed.
FSDP_DRIVER = '''
import sys

from accelerate import state as accelerate_state
from accelerate.utils import DistributedType

original = accelerate_state.AcceleratorState.__init__


def init(self, *args, fsdp_plugin=None, **kwargs):
    original(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
    if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
        self.distributed_type = DistributedType.FSDP
        self.fsdp_plugin = fsdp_plugin
        accelerate_state.PartialState._shared_state["distributed_type"] = DistributedType.FSDP


accelerate_state.AcceleratorState.__init__ = init

from interpgen.cli import main

sys.exit(main(sys.argv[1:]))
'''
# FSDP2 units for every Linear inside the root unit, so the run has nested units (the GPU config's
# NO_WRAP default would make one unit).
NESTED_UNITS = ("--fsdp_auto_wrap_policy", "TRANSFORMER_BASED_WRAP", "--fsdp_transformer_layer_cls_to_wrap", "Linear")

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("accelerate") is None, reason="the accelerate command is not installed")]


def _command(config: str, target: list[str], run: Path, *extra: str, port: int | None = None,
             launch: tuple[str, ...] = ()) -> list[str]:
    """``accelerate launch --config_file recipes/accelerate/CONFIG`` of ``target`` (``-m interpgen`` or
    a script) with ``train ... --output RUN``, on a free port unless ``port`` is given."""
    return ["accelerate", "launch", "--config_file", str(CONFIGS / config), "--main_process_port",
            str(port or free_port()), *launch, *target, "train", *extra, "--output", str(run), "--quiet"]


def _launch(*args: object, **kwargs: object) -> subprocess.CompletedProcess:
    return subprocess.run(_command(*args, **kwargs), env=launch_env(), capture_output=True, text=True, timeout=300)


def _launch_together(commands: list[list[str]], folder: Path, timeout: float = 180) -> list[tuple[int, str]]:
    """Run ``commands`` at once (output to files, not pipes that could fill); when one fails or the
    time is up, the others are killed (their process groups) instead of waiting at the rendezvous."""
    logs = [open(folder / f"launch_{i}.log", "w+") for i in range(len(commands))]
    procs = [subprocess.Popen(cmd, env=launch_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
             for cmd, log in zip(commands, logs)]
    deadline = time.monotonic() + timeout
    while any(p.poll() is None for p in procs):
        if time.monotonic() > deadline or any(p.poll() not in (None, 0) for p in procs):
            for p in procs:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        time.sleep(0.2)
    outputs = []
    for proc, log in zip(procs, logs):
        log.seek(0)
        outputs.append((proc.returncode, log.read()))
        log.close()
    return outputs


def _recipe(folder: Path, text: str, name: str = "recipe.toml") -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


def _in_sync(run: Path, steps: int) -> list[str]:
    processes = json.loads((run / rd.PROCESSES).read_text())
    assert processes["world_size"] == 2 and processes["step"] == steps
    assert len(set(processes["weights_sha256"])) == 1, processes
    return processes["weights_sha256"]


def _weights(run: Path, step: int) -> dict:
    return load_checkpoint(rd.checkpoint_path(run, step))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """RECIPE trained by two CPU processes of one launch (DDP over gloo)."""
    folder = tmp_path_factory.mktemp("ddp")
    run = folder / "run"
    done = _launch("cpu_2_processes.yaml", ["-m", "interpgen"], run, _recipe(folder, RECIPE))
    assert done.returncode == 0, done.stderr[-3000:]
    _in_sync(run, 20)
    return run


def test_every_config_file_is_read_by_accelerate():
    from accelerate.commands.config.config_args import load_config_from_file

    found = {p.name: load_config_from_file(str(p)) for p in sorted(CONFIGS.glob("*.yaml"))}
    assert {"fsdp_gpu_8.yaml", "multi_machine.yaml", "cpu_2_processes.yaml"} <= set(found)
    fsdp = found["fsdp_gpu_8.yaml"]
    assert fsdp.distributed_type == "FSDP" and fsdp.num_processes == 8
    assert fsdp.fsdp_config["fsdp_version"] == 2 and fsdp.fsdp_config["fsdp_state_dict_type"] == "SHARDED_STATE_DICT"
    machines = found["multi_machine.yaml"]
    assert (machines.num_machines, machines.num_processes, machines.machine_rank) == (2, 16, 0)
    assert machines.rdzv_backend == "static" and machines.main_process_ip


def test_two_processes_accumulate_gradients_under_bf16(tmp_path, reference):
    text = RECIPE.replace("seed = 1", 'seed = 1\ngrad_accumulation = 2\nmixed_precision = "bf16"')
    run = tmp_path / "run"
    done = _launch("cpu_2_processes.yaml", ["-m", "interpgen"], run, _recipe(tmp_path, text))
    assert done.returncode == 0, done.stderr[-3000:]
    _in_sync(run, 20)
    records = rd.read_metrics(run)
    assert [r["step"] for r in records] == [5, 10, 15, 20]
    assert records[0]["samples_per_second"] == pytest.approx(records[0]["steps_per_second"] * 32 * 2 * 2)
    plain, mixed = _weights(reference, 20)["network"], _weights(run, 20)["network"]
    assert all(v.dtype == torch.float32 for v in mixed.values())  # weights stay fp32 under autocast
    assert any(not torch.equal(plain[k], mixed[k]) for k in plain)  # another run: twice the data, bf16


def test_two_processes_train_an_autoencoder_and_a_prior_with_unused_parameters(tmp_path):
    run = tmp_path / "run"
    recipe = _recipe(tmp_path, LSI_RECIPE)
    done = _launch("cpu_2_processes.yaml", ["-m", "interpgen"], run, recipe)
    assert done.returncode == 0, done.stderr[-3000:]
    _in_sync(run, 8)
    trained = ig.Pipeline.load(run)
    fresh = ig.Pipeline.from_recipe(load_recipe(recipe, trained.registry))
    assert [type(m).__name__ for m in trained.trainable_modules()] == ["MLP", "ConvAutoencoder",
                                                                       "DiagonalGaussianPrior"]
    for name in ("network", "autoencoder", "prior"):  # each of the three trained
        now, before = getattr(trained, name).state_dict(), getattr(fresh, name).state_dict()
        assert any(not torch.equal(now[k], before[k]) for k in now), name


def test_two_machines_on_localhost_meet_once_and_train_what_one_machine_does(tmp_path, reference):
    recipe, run, port = _recipe(tmp_path, RECIPE), tmp_path / "run", free_port()
    outputs = _launch_together([_command("multi_machine.yaml", ["-m", "interpgen"], run, recipe, port=port, launch=(
        "--num_processes", "2", "--machine_rank", str(rank), "--main_process_ip", "127.0.0.1")) for rank in (0, 1)],
        tmp_path)
    assert [code for code, _ in outputs] == [0, 0], [text[-3000:] for _, text in outputs]
    assert "trained 20 steps" in outputs[0][1] and "trained" not in outputs[1][1]  # global rank 0 reports
    assert _in_sync(run, 20) == _in_sync(reference, 20)  # the same two ranks, the same weights
    a, b = _weights(reference, 20), _weights(run, 20)
    for key in ("network", "ema"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key]), key


def test_fsdp_on_a_cpu_is_refused_with_the_reason(tmp_path):
    run = tmp_path / "run"
    done = _launch("fsdp_gpu_8.yaml", ["-m", "interpgen"], run, _recipe(tmp_path, RECIPE),
                   launch=("--num_processes", "2"))
    assert done.returncode != 0
    assert ("error: FSDP was asked for (ACCELERATE_USE_FSDP=true) but Accelerate chose MULTI_CPU and would train "
            "with DDP") in done.stderr
    assert "never on a CPU" in done.stderr
    assert not run.exists()  # refused before anything was written


@pytest.fixture(scope="module")
def fsdp(tmp_path_factory) -> tuple[Path, Path, str]:
    """RECIPE trained under FSDP by two CPU processes (the driver), nested units."""
    folder = tmp_path_factory.mktemp("fsdp")
    driver, recipe, run = folder / "fsdp_on_cpu.py", _recipe(folder, RECIPE), folder / "run"
    driver.write_text(FSDP_DRIVER)
    done = _launch("fsdp_gpu_8.yaml", [str(driver)], run, recipe, launch=("--num_processes", "2", *NESTED_UNITS))
    assert done.returncode == 0, done.stderr[-3000:]
    return run, driver, recipe


def test_fsdp_trains_what_ddp_trains_and_saves_sharded_state(fsdp, reference):
    run = fsdp[0]
    _in_sync(run, 20)  # the EMA (kept whole on each process) and the gathered weights agree
    folder = rd.checkpoint_path(run, 20)
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert {"pytorch_model_fsdp_0/__0_0.distcp", "pytorch_model_fsdp_0/__1_0.distcp",  # a shard per process
            "optimizer_0/__0_0.distcp", "optimizer_0/__1_0.distcp", "trainable.safetensors"} <= names
    assert rd.MODEL not in names  # no whole model from Accelerate under FSDP: trainable.safetensors has it
    assert names - {MANIFEST} == set(json.loads((folder / MANIFEST).read_text())["files"])
    a, b = _weights(reference, 20), _weights(run, 20)
    for key in ("network", "ema"):
        for name, value in a[key].items():  # whole tensors, the values DDP trained
            assert b[key][name].shape == value.shape
            torch.testing.assert_close(b[key][name], value, rtol=1e-5, atol=1e-6)
    assert [r["loss"] for r in rd.read_metrics(run)] == pytest.approx([r["loss"] for r in rd.read_metrics(reference)])
    exported = load_checkpoint(run / rd.EXPORT)
    assert all(torch.equal(exported["ema"][k], b["ema"][k]) for k in b["ema"])
    pipe = ig.Pipeline.load(run)  # reads safetensors only, no process group
    assert pipe.step == 20 and torch.isfinite(pipe.sample(16, seed=0).x).all()

    damaged = run.parent / "damaged"
    shutil.copytree(run, damaged)
    shard = rd.checkpoint_path(damaged, 20) / "pytorch_model_fsdp_0" / "__1_0.distcp"
    shard.write_bytes(shard.read_bytes()[:-8])
    with pytest.raises(CheckpointError, match=r"pytorch_model_fsdp_0/__1_0.distcp is truncated .* delete it to "
                                              r"resume from step_00000010"):
        rd.load_for_resume(damaged)


def test_fsdp_resumes_from_its_shards_exactly(fsdp):
    straight, driver, recipe = fsdp
    resumed = straight.parent / "resumed"
    shutil.copytree(straight, resumed)
    shutil.rmtree(rd.checkpoint_path(resumed, 20))
    done = _launch("fsdp_gpu_8.yaml", [str(driver)], resumed, recipe, "--resume",
                   launch=("--num_processes", "2", *NESTED_UNITS))
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = _weights(straight, 20), _weights(resumed, 20)
    for key in ("network", "ema"):
        for name, value in a[key].items():
            assert torch.equal(b[key][name], value), (key, name)
    assert [r["loss"] for r in rd.read_metrics(resumed)] == [r["loss"] for r in rd.read_metrics(straight)]


def test_fsdp_refuses_pictures_it_would_draw_from_sharded_modules(tmp_path, fsdp):
    text = RECIPE.replace("pictures = false", "pictures = true\nema_decay = 0.0")
    done = _launch("fsdp_gpu_8.yaml", [str(fsdp[1])], tmp_path / "run", _recipe(tmp_path, text),
                   launch=("--num_processes", "2"))
    assert done.returncode != 0
    assert "error: under FSDP the main process alone draws the pictures, from the EMA" in done.stderr
    assert not (tmp_path / "run").exists()
