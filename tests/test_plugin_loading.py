"""Plugin discovery: entry points one at a time, broken plugins skipped or fatal, disable list,
duplicate names, misspelt hooks, and the ``interpgen plugins`` report."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from interpgen.plugin_manager import PluginLoadError, PluginLoadWarning, load_plugins
from interpgen.registry import RegistryError

GOOD = """
import attrs
from interpgen import hookimpl

@attrs.frozen(kw_only=True)
class Thing:
    '''A test part.'''
    size: int = 1

@hookimpl
def interpgen_register(registry):
    registry.add("widget", "thing", Thing)
"""


def test_builtins_load_with_owner_and_distribution():
    loaded = load_plugins(strict=True)
    assert loaded.failed == []
    entry = loaded.registry.get("interpolant", "linear")
    assert entry.plugin == "si" and entry.distribution == "interpgen"
    for kind in ("interpolant", "prior", "coupling", "autoencoder", "sampler", "network", "dataset"):
        assert loaded.registry.names(kind), kind


def test_broken_plugin_is_skipped_with_a_warning_naming_it(fake_distribution):
    fake_distribution("broken-dist", {"broken": "ig_testplugin_missing_module"})
    fake_distribution("good-dist", {"good": "ig_testplugin_good"}, {"ig_testplugin_good.py": GOOD})
    with pytest.warns(PluginLoadWarning, match=r"'broken' \(distribution 'broken-dist'\).*ModuleNotFoundError"):
        loaded = load_plugins(strict=False)
    assert [(f.name, f.distribution) for f in loaded.failed] == [("broken", "broken-dist")]
    assert "ig_testplugin_missing_module" in loaded.failed[0].error
    # every other plugin keeps working, a new kind included
    assert loaded.registry.get("widget", "thing").distribution == "good-dist"
    assert "linear" in loaded.registry.names("interpolant")


def test_strict_mode_makes_a_broken_plugin_an_error(fake_distribution, monkeypatch):
    fake_distribution("broken-dist", {"broken": "ig_testplugin_missing_module"})
    monkeypatch.setenv("INTERPGEN_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match="'broken' \\(distribution 'broken-dist'\\)"):
        load_plugins()


def test_plugin_whose_hook_raises_is_skipped_and_leaves_nothing_behind(fake_distribution):
    source = GOOD + """
@hookimpl
def interpgen_register_priors(registry):
    raise RuntimeError("cannot reach the moon")
"""
    fake_distribution("half-dist", {"half": "ig_testplugin_half"}, {"ig_testplugin_half.py": source})
    with pytest.warns(PluginLoadWarning, match="cannot reach the moon"):
        loaded = load_plugins(strict=False)
    assert "widget" not in loaded.registry.kinds() or loaded.registry.names("widget") == []
    assert [f.name for f in loaded.failed] == ["half"]


def test_disable_list_switches_plugins_off(monkeypatch):
    monkeypatch.setenv("INTERPGEN_DISABLE_PLUGINS", "priors, couplings")
    loaded = load_plugins(strict=True)
    assert loaded.registry.names("prior") == []
    assert loaded.registry.names("coupling") == []
    assert loaded.registry.names("interpolant")


def test_a_name_registered_twice_names_both_owners(fake_distribution):
    source = """
import attrs
from interpgen import hookimpl

@attrs.frozen(kw_only=True)
class MyLinear:
    pass

@hookimpl
def interpgen_register_interpolants(registry):
    registry.add("interpolant", "linear", MyLinear)
"""
    fake_distribution("dupe-dist", {"dupe": "ig_testplugin_dupe"}, {"ig_testplugin_dupe.py": source})
    with pytest.raises(RegistryError) as info:
        load_plugins(strict=False)
    message = str(info.value)
    assert "'linear' is registered twice" in message
    assert "plugin 'si' (distribution 'interpgen')" in message
    assert "plugin 'dupe' (distribution 'dupe-dist')" in message


def test_misspelt_hook_is_reported(fake_distribution):
    source = """
from interpgen import hookimpl

@hookimpl
def interpgen_register_interpolant(registry):
    pass
"""
    fake_distribution("typo-dist", {"typo": "ig_testplugin_typo"}, {"ig_testplugin_typo.py": source})
    with pytest.raises(PluginLoadError, match="interpgen_register_interpolant"):
        load_plugins(strict=False)


def test_hookimpl_with_an_argument_the_spec_lacks_fails_that_plugin(fake_distribution):
    source = """
from interpgen import hookimpl

@hookimpl
def interpgen_register(registry, colour):
    pass
"""
    fake_distribution("args-dist", {"args": "ig_testplugin_args"}, {"ig_testplugin_args.py": source})
    with pytest.warns(PluginLoadWarning, match="colour"):
        loaded = load_plugins(strict=False)
    assert [f.name for f in loaded.failed] == ["args"]


def test_plugins_json_lists_every_kind_and_failures(fake_distribution, tmp_path):
    root = fake_distribution("broken-dist", {"broken": "ig_testplugin_missing_module"})
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-m", "interpgen.cli", "plugins", "--json"], env=env,
                         capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    for kind in ("interpolant", "prior", "coupling", "autoencoder", "sampler"):
        assert report[kind], kind
        assert {"name", "plugin", "distribution"} <= set(report[kind][0])
    assert {"linear", "trig", "gvp", "vp"} <= {e["name"] for e in report["interpolant"]}
    assert report["failed"] == [{"name": "broken", "distribution": "broken-dist",
                                 "error": report["failed"][0]["error"]}]
    assert "ModuleNotFoundError" in report["failed"][0]["error"]
    table = subprocess.run([sys.executable, "-m", "interpgen.cli", "plugins"], env=env,
                           capture_output=True, text=True, check=True).stdout
    assert "interpolant" in table and "linear" in table and "FAILED  broken (broken-dist)" in table


def test_a_plugin_can_teach_the_recipe_converter(fake_distribution):
    source = """
import attrs
from interpgen import hookimpl


class Colour(str):
    pass


@attrs.frozen(kw_only=True)
class Paint:
    colour: Colour = Colour("red")


@hookimpl
def interpgen_register(registry):
    registry.add("paint", "paint", Paint)


@hookimpl
def interpgen_configure_converter(converter):
    def structure(value, _):
        if value not in ("red", "green"):
            raise ValueError(f"no such colour {value!r}")
        return Colour(value)
    converter.register_structure_hook(Colour, structure)
"""
    fake_distribution("paint-dist", {"paint": "ig_testplugin_paint"}, {"ig_testplugin_paint.py": source})
    from interpgen.config import RecipeConverter, RecipeError

    loaded = load_plugins(strict=True)
    conv = RecipeConverter(loaded.registry)
    assert conv.structure_part("paint", {"name": "paint", "colour": "green"}).colour == "green"
    with pytest.raises(RecipeError, match="no such colour 'blue' @ paint.colour"):
        conv.structure_part("paint", {"name": "paint", "colour": "blue"}, path="paint")
