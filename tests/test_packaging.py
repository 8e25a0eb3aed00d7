"""The distribution lists every package folder and registers every built-in plugin by entry point."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_package_folder_is_listed():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    found = set()
    for top, name in (("interpgen", "interpgen"), ("plugins", "interpgen_plugins")):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top)
            found.add(".".join([name, *rel.parts]))
    assert found - listed == set(), f"add these to [tool.setuptools] packages: {sorted(found - listed)}"


def test_builtin_plugins_are_entry_points():
    declared = _pyproject()["project"]["entry-points"]["interpgen"]
    installed = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="interpgen")}
    for name, target in declared.items():
        assert installed.get(name) == target
    folders = {p.name for p in (ROOT / "plugins").iterdir() if (p / "__init__.py").exists()}
    assert folders == set(declared)
