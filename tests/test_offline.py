"""Offline by default (plugins/datasets/arrow.py): with ``HF_HUB_OFFLINE`` and ``HF_DATASETS_OFFLINE``
unset, training on a CSV table, on an image folder (in memory and streamed) and ``interpgen eval``
attempt no network connection. Each command runs in a fresh process whose socket functions raise
and log every attempt (a socket guard: DNS look-ups and internet connections; local Unix sockets,
which DataLoader workers use, stay allowed). A control run shows the guard sees what ``datasets``
does on its own."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

GUARD = """
import os, socket
LOG = os.environ["GUARD_LOG"]

def _blocked(*args):
    with open(LOG, "a") as log:
        log.write(repr(args[:2]) + "\\n")
    raise OSError("network access blocked by the test's socket guard")

_connect = socket.socket.connect

def _guarded_connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _blocked(address)
    return _connect(self, address)

socket.getaddrinfo = lambda *a, **k: _blocked(*a)
socket.socket.connect = _guarded_connect
socket.socket.connect_ex = lambda self, address: _blocked(address)
"""

TRAIN = """
[network]
name = "mlp"
hidden = 16
depth = 1

[train]
steps = 4
batch_size = 8
log_every = 2
checkpoint_every = 4
sample_every = 0
pictures = false

[sample]
sampler = { name = "euler", steps = 2 }
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("offline")
    (root / "guard.py").write_text(GUARD)
    rows = "\n".join(f"{i},{(i * i) % 7},{i % 3}" for i in range(40))
    (root / "table.csv").write_text("a,b,c\n" + rows + "\n")
    (root / "images").mkdir()
    for i in range(24):
        Image.fromarray(np.full((8, 8), 10 * i, np.uint8)).save(root / "images" / f"img_{i:02d}.png")
    (root / "table.toml").write_text('[data]\nname = "table"\npath = "table.csv"\n' + TRAIN)
    (root / "images.toml").write_text('[data]\nname = "image_folder"\npath = "images"\nmode = "L"\nholdout = 6\n'
                                      + TRAIN)
    return root


def _run(root: Path, code: str, name: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    log = root / f"{name}.log"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    env.update(GUARD_LOG=str(log), HF_HOME=str(root / "hf_home"), PYTHONPATH=str(root))
    script = "import guard\n" + textwrap.dedent(code)
    done = subprocess.run([sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True,
                          timeout=600)
    return done, (log.read_text().splitlines() if log.exists() else [])


def _cli(root: Path, argv: list[str], name: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    return _run(root, f"import sys\nfrom interpgen.cli import main\nsys.exit(main({argv!r}))\n", name)


def test_the_guard_sees_the_request_datasets_makes_on_its_own(world):
    done, attempts = _run(world, """
        import datasets
        datasets.load_dataset("csv", data_files="table.csv", split="train")
    """, "control")
    assert done.returncode == 0, done.stderr
    assert attempts, "the socket guard saw no connection attempt: it would not catch one either"


@pytest.mark.parametrize("name, argv", [
    ("table", ["train", "table.toml", "--output", "run_table"]),
    ("images", ["train", "images.toml", "--output", "run_images"]),
    ("streamed", ["train", "images.toml", "--output", "run_streamed", "--set", "data.streaming=true",
                  "--set", "data.num_workers=1"]),
])
def test_training_attempts_no_connection(world, name, argv):
    done, attempts = _cli(world, argv, name)
    assert done.returncode == 0, done.stderr
    assert attempts == [], f"{name}: network connections attempted: {attempts}"
    assert (world / argv[3] / "recipe.toml").is_file()


def test_eval_attempts_no_connection(world):
    done, _ = _cli(world, ["train", "images.toml", "--output", "run_eval"], "eval_train")
    assert done.returncode == 0, done.stderr
    done, attempts = _cli(world, ["eval", "run_eval", "--num", "6"], "eval")
    assert done.returncode == 0, done.stderr
    assert attempts == [], f"eval: network connections attempted: {attempts}"
    assert "sliced_wasserstein" in done.stdout
