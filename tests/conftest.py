"""Shared test setup: never touch the network; give each test a fresh plugin set when asked."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# The test models are tiny: one intra-op thread is faster than two, and far faster on a busy
# 2-core machine, where two threads spin against each other.
torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _own_cache_folder(tmp_path_factory):
    """The command line remembers the plugins' commands under ``$XDG_CACHE_HOME/interpgen``
    (interpgen/cli/cache.py): tests write there, not to the user's cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg_cache")))
        yield


@pytest.fixture(scope="module")
def registry():
    """The registry of every installed plugin (a module may override this with its own)."""
    from interpgen.plugin_manager import reload_plugins

    return reload_plugins().registry


@pytest.fixture(scope="module")
def linear(registry):
    return registry.create("interpolant", "linear")


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """Make a distribution with entry points in the ``interpgen`` group visible to
    ``importlib.metadata``: ``fake_distribution("name", {"ep": "module"}, {"module.py": "source"})``."""

    def make(dist: str, entry_points: dict[str, str], modules: dict[str, str] | None = None) -> Path:
        root = tmp_path / f"site_{dist}"
        info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
        (info / "entry_points.txt").write_text(f"[interpgen]\n{lines}\n")
        for name, source in (modules or {}).items():
            (root / name).write_text(textwrap.dedent(source))
        monkeypatch.syspath_prepend(str(root))
        return root

    yield make
    for name in [m for m in sys.modules if m.startswith("ig_testplugin_")]:
        del sys.modules[name]
