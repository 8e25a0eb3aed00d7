"""Two CPU processes through ``accelerate launch`` (gloo), as the multi-process tests start them
(docs/training.md, "Several processes"; recipes/accelerate/README.md)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

#: Moons, a small MLP, 20 steps on two processes, checkpoints at 10 and 20.
TWO_PROCESS_RECIPE = """
[data]
name = "moons"

[network]
name = "mlp"
hidden = 32
depth = 2

[train]
steps = 20
batch_size = 32
log_every = 5
checkpoint_every = 10
sample_every = 0
pictures = false
num_processes = 2
seed = 1
"""


def free_port() -> int:
    """A free port of 127.0.0.1 (29500, Accelerate's default, collides between parallel runs)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_env() -> dict[str, str]:
    """CPU processes, one thread each, offline."""
    return {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1"}


def launch_two(recipe: str | Path, run: str | Path, *extra: str) -> subprocess.CompletedProcess:
    """``interpgen train RECIPE --output RUN --quiet EXTRA...`` on two CPU processes of one launch."""
    cmd = ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()),
           "-m", "interpgen", "train", str(recipe), "--output", str(run), "--quiet", *extra]
    return subprocess.run(cmd, env=launch_env(), capture_output=True, text=True, timeout=300)
