"""Start-up: ``interpgen --help`` lists the plugins' commands from a cache without importing torch,
and the kernel's commands import no more than they use (interpgen/cli/cache.py; the timings are
benchmarks/startup.py's, not a test's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# Runs the command line in a fresh interpreter and reports what it printed and imported.
PROBE = """
import contextlib, io, json, sys
from interpgen.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "out": out.getvalue(), "modules": sorted(sys.modules)}))
"""


def _run(*args: str, cache: Path, **env: str) -> dict:
    environ = {**os.environ, "XDG_CACHE_HOME": str(cache), **env}
    environ.pop("INTERPGEN_CACHE", None)
    done = subprocess.run([sys.executable, "-c", PROBE, *args], env=environ, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def _commands(help_text: str) -> list[str]:
    """The command names of the help's ``{train,sample,...}`` line."""
    return help_text.split("{", 1)[1].split("}", 1)[0].split(",")


def test_help_lists_plugin_commands_cold_and_then_without_torch(tmp_path):
    cold = _run("--help", cache=tmp_path)
    assert cold["code"] == 0
    assert {"eval", "reflow"} <= set(_commands(cold["out"]))
    assert "torch" in cold["modules"]  # nothing remembered yet: the plugins loaded for real
    written = list((tmp_path / "interpgen").glob("commands-*.json"))
    assert len(written) == 1
    assert json.loads(written[0].read_text())["eval"].endswith("[plugin eval]")

    warm = _run("--help", cache=tmp_path)
    assert warm["code"] == 0
    assert warm["out"] == cold["out"]  # the same help, each command with its plugin
    assert not {m for m in warm["modules"] if m == "torch" or m.startswith(("torch.", "interpgen_plugins"))}


def test_no_command_lists_them_from_the_cache_too(tmp_path):
    _run("--help", cache=tmp_path)
    bare = _run(cache=tmp_path)
    assert bare["code"] == 2  # argparse: a command is required
    assert "torch" not in bare["modules"]


def test_a_changed_plugin_set_is_not_answered_from_the_old_cache(tmp_path):
    assert "reflow" in _commands(_run("--help", cache=tmp_path)["out"])
    off = _run("--help", cache=tmp_path, INTERPGEN_DISABLE_PLUGINS="reflow")
    assert "reflow" not in _commands(off["out"]) and "eval" in _commands(off["out"])
    assert "torch" in off["modules"]  # another fingerprint: loaded for real, then remembered
    assert len(list((tmp_path / "interpgen").glob("commands-*.json"))) == 2


def test_an_unwritable_or_broken_cache_only_costs_a_real_load(tmp_path):
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    out = _run("--help", cache=blocked)  # $XDG_CACHE_HOME/interpgen cannot be made
    assert out["code"] == 0 and {"eval", "reflow"} <= set(_commands(out["out"]))

    _run("--help", cache=tmp_path)
    for written in (tmp_path / "interpgen").glob("commands-*.json"):
        written.write_text("{not json")
    again = _run("--help", cache=tmp_path)
    assert {"eval", "reflow"} <= set(_commands(again["out"])) and "torch" in again["modules"]
    assert "eval" in json.loads(next((tmp_path / "interpgen").glob("commands-*.json")).read_text())


def test_plugins_and_recipe_do_not_import_the_training_engine(tmp_path):
    """The engine (interpgen.train: checkpoints, safetensors, the training loop) is for train and
    the commands that read runs, not for listing plugins or printing a recipe."""
    for args in (("plugins", "--json"), ("recipe", "--set", "train.steps=5")):
        out = _run(*args, cache=tmp_path)
        assert out["code"] == 0
        assert not [m for m in out["modules"] if m == "interpgen.train" or m.startswith("interpgen.train.")], args
    assert "steps = 5" in out["out"]
