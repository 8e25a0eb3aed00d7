"""Plugin discovery and failure handling: entry points one at a time; a plugin that fails in any way
(import, hook raising, misspelt or removed hook, an argument the spec lacks, a duplicate name) is
skipped with one warning, or is an error in strict mode; the disable list; ``interpgen plugins``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import pytest

from interpgen.plugin_manager import PluginLoadError, PluginLoadWarning, load_plugins
from interpgen.registry import UnknownNameError

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

TYPO = """
from interpgen import hookimpl

@hookimpl
def interpgen_register_interpolant(registry):
    pass
"""


def _load_with_one_warning(**kwargs):
    """Load non-strictly; return the plugin set and the one PluginLoadWarning's text."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_plugins(strict=False, **kwargs)
    messages = [str(w.message) for w in caught if issubclass(w.category, PluginLoadWarning)]
    assert len(messages) == 1, messages
    return loaded, messages[0]


def test_builtins_load_with_owner_and_distribution():
    loaded = load_plugins(strict=True)
    assert loaded.failed == []
    entry = loaded.registry.get("interpolant", "linear")
    assert entry.plugin == "si" and entry.distribution == "interpgen"
    for kind in ("interpolant", "prior", "coupling", "autoencoder", "sampler", "network", "dataset"):
        assert loaded.registry.names(kind), kind
    assert "objective" in loaded.registry.kinds()
    assert loaded.manager.get_plugin("interpgen:si") is not None


def test_broken_plugin_is_skipped_with_a_warning_naming_it(fake_distribution):
    fake_distribution("broken-dist", {"broken": "ig_testplugin_missing_module"})
    fake_distribution("good-dist", {"good": "ig_testplugin_good"}, {"ig_testplugin_good.py": GOOD})
    loaded, message = _load_with_one_warning()
    assert ("plugin 'broken' (distribution 'broken-dist') skipped: loading its entry point raised "
            "ModuleNotFoundError") in message
    assert message.endswith("switch this one off with INTERPGEN_DISABLE_PLUGINS=broken")
    assert [(f.name, f.distribution) for f in loaded.failed] == [("broken", "broken-dist")]
    assert "ig_testplugin_missing_module" in loaded.failed[0].error
    # every other plugin keeps working, a new kind included
    assert loaded.registry.get("widget", "thing").distribution == "good-dist"
    assert "linear" in loaded.registry.names("interpolant")


def test_strict_mode_makes_a_broken_plugin_an_error(fake_distribution, monkeypatch):
    fake_distribution("broken-dist", {"broken": "ig_testplugin_missing_module"})
    monkeypatch.setenv("INTERPGEN_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match=r"'broken' \(distribution 'broken-dist'\) failed to load: "
                                              r"loading its entry point raised ModuleNotFoundError.*INTERPGEN_DISABLE_PLUGINS=broken"):
        load_plugins()


def test_plugin_whose_hook_raises_is_skipped_and_leaves_nothing_behind(fake_distribution):
    source = GOOD.replace('registry.add("widget", "thing", Thing)',
                          'registry.add("widget", "thing", Thing)\n    raise RuntimeError("cannot reach the moon")')
    fake_distribution("half-dist", {"half": "ig_testplugin_half"}, {"ig_testplugin_half.py": source})
    loaded, message = _load_with_one_warning()
    assert ("plugin 'half' (distribution 'half-dist') skipped: its interpgen_register hook raised "
            "RuntimeError: cannot reach the moon") in message
    assert "INTERPGEN_DISABLE_PLUGINS=half" in message
    assert loaded.registry.names("widget") == []
    assert [(f.name, f.provided) for f in loaded.failed] == [("half", (("widget", "thing"),))]
    assert loaded.manager.get_plugin("half-dist:half") is None
    # a part the failed plugin would have provided says so
    with pytest.raises(UnknownNameError, match=r"unknown widget 'thing'; installed: \(none\); plugin 'half' "
                                               r"\(distribution 'half-dist'\) would have provided it but failed: "
                                               r"its interpgen_register hook raised RuntimeError: cannot reach"):
        loaded.registry.get("widget", "thing")
    # any other unknown name notes that a plugin failed and might have provided it
    with pytest.raises(UnknownNameError, match=r"unknown interpolant 'powr'; installed: .*; note: plugin\(s\) "
                                               r"'half' \(distribution 'half-dist'\) failed to load"):
        loaded.registry.get("interpolant", "powr")


def test_a_recipe_naming_a_part_of_a_failed_plugin_says_so(fake_distribution):
    from interpgen.recipe import structure_recipe
    from interpgen.config import RecipeError

    source = GOOD.replace("class Thing", "class Power").replace('"widget", "thing", Thing)',
                                                                '"interpolant", "pow", Power)\n    1 / 0')
    fake_distribution("pow-dist", {"pow": "ig_testplugin_pow"}, {"ig_testplugin_pow.py": source})
    loaded, _ = _load_with_one_warning()
    with pytest.raises(RecipeError, match=r"unknown interpolant 'pow'.*plugin 'pow' \(distribution 'pow-dist'\) "
                                          r"would have provided it but failed: .*ZeroDivisionError.*@ interpolant"):
        structure_recipe({"data": {"name": "moons"}, "interpolant": {"name": "pow"}}, loaded.registry)


def test_disable_list_switches_plugins_off(monkeypatch):
    monkeypatch.setenv("INTERPGEN_DISABLE_PLUGINS", "priors, interpgen:couplings")
    loaded = load_plugins(strict=True)
    assert all(e.plugin != "priors" for e in loaded.registry), "entry point 'priors' was not switched off"
    assert all(e.plugin != "couplings" or e.distribution != "interpgen" for e in loaded.registry)
    assert "gaussian" not in loaded.registry.names("prior") and "exact_ot" not in loaded.registry.names("coupling")
    assert loaded.registry.names("interpolant")


def test_a_duplicate_name_skips_the_second_plugin_naming_both_owners(fake_distribution):
    source = GOOD.replace('registry.add("widget", "thing", Thing)', """registry.add("widget", "thing", Thing)
    registry.add("interpolant", "linear", type("MyLinear", (Thing,), {}))""")
    fake_distribution("dupe-dist", {"dupe": "ig_testplugin_dupe"}, {"ig_testplugin_dupe.py": source})
    loaded, message = _load_with_one_warning()
    assert "plugin 'dupe' (distribution 'dupe-dist') skipped" in message
    assert ("interpolant 'linear' is registered twice: by plugin 'si' (distribution 'interpgen') and by plugin "
            "'dupe' (distribution 'dupe-dist')") in message
    assert "INTERPGEN_DISABLE_PLUGINS=dupe" in message
    # the first owner keeps its name, the second plugin leaves nothing behind
    assert loaded.registry.get("interpolant", "linear").plugin == "si"
    assert loaded.registry.names("widget") == []
    assert loaded.failed[0].provided == (("widget", "thing"), ("interpolant", "linear"))
    with pytest.raises(PluginLoadError, match="'linear' is registered twice"):
        load_plugins(strict=True)


def test_misspelt_hook_skips_only_that_plugin(fake_distribution):
    fake_distribution("typo-dist", {"typo": "ig_testplugin_typo"}, {"ig_testplugin_typo.py": TYPO})
    fake_distribution("good-dist", {"good": "ig_testplugin_good"}, {"ig_testplugin_good.py": GOOD})
    loaded, message = _load_with_one_warning()
    assert message.startswith("interpgen plugin 'typo' (distribution 'typo-dist') skipped: it implements "
                              "interpgen_register_interpolant, a hook interpgen does not define "
                              "(did you mean interpgen_register?)")
    assert message.endswith("INTERPGEN_DISABLE_PLUGINS=typo")
    assert [f.name for f in loaded.failed] == ["typo"]
    assert loaded.registry.get("widget", "thing").plugin == "good"
    assert {"linear", "trig", "gvp", "vp"} <= set(loaded.registry.names("interpolant"))
    with pytest.raises(PluginLoadError, match="'typo' \\(distribution 'typo-dist'\\) failed to load: it implements "
                                              "interpgen_register_interpolant, a hook interpgen does not define"):
        load_plugins(strict=True)


def test_a_removed_hook_names_the_replacement(fake_distribution):
    source = TYPO.replace("interpgen_register_interpolant(", "interpgen_register_priors(")
    fake_distribution("old-dist", {"old": "ig_testplugin_old"}, {"ig_testplugin_old.py": source})
    loaded, message = _load_with_one_warning()
    assert ("plugin 'old' (distribution 'old-dist') skipped: it implements interpgen_register_priors, a hook "
            "interpgen no longer has; use the one registration hook interpgen_register(registry) instead, "
            "e.g. registry.add('prior', name, ParamsClass)") in message
    assert [f.name for f in loaded.failed] == ["old"]


def test_hookimpl_with_an_argument_the_spec_lacks_fails_that_plugin(fake_distribution):
    source = """
from interpgen import hookimpl

@hookimpl
def interpgen_register(registry, colour):
    pass
"""
    fake_distribution("args-dist", {"args": "ig_testplugin_args"}, {"ig_testplugin_args.py": source})
    loaded, message = _load_with_one_warning()
    assert ("plugin 'args' (distribution 'args-dist') skipped: its hook interpgen_register takes argument(s) "
            "'colour' that interpgen does not pass; the hook is interpgen_register(registry)") in message
    assert [f.name for f in loaded.failed] == ["args"]


def _cli(*args, env):
    return subprocess.run([sys.executable, "-m", "interpgen.cli", *args], env=env, capture_output=True, text=True)


def test_plugins_json_lists_every_kind_and_failures(fake_distribution, tmp_path):
    root = fake_distribution("broken-dist", {"broken": "ig_testplugin_missing_module"})
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = _cli("plugins", "--json", env=env)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    for kind in ("interpolant", "prior", "coupling", "autoencoder", "sampler"):
        assert report[kind], kind
        assert {"name", "plugin", "distribution"} <= set(report[kind][0])
    assert {"linear", "trig", "gvp", "vp"} <= {e["name"] for e in report["interpolant"]}
    assert report["failed"] == [{"name": "broken", "distribution": "broken-dist",
                                 "error": report["failed"][0]["error"]}]
    assert "ModuleNotFoundError" in report["failed"][0]["error"]
    table = _cli("plugins", env=env).stdout
    assert "interpolant" in table and "linear" in table and "FAILED  broken (broken-dist)" in table


def test_cli_keeps_working_with_a_misspelt_plugin_and_strict_mode_exits_2(fake_distribution):
    root = fake_distribution("typo-dist", {"typo": "ig_testplugin_typo"}, {"ig_testplugin_typo.py": TYPO})
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = _cli("plugins", env=env)
    assert out.returncode == 0 and "linear" in out.stdout
    assert out.stderr.count("PluginLoadWarning") == 1 and "INTERPGEN_DISABLE_PLUGINS=typo" in out.stderr
    out = _cli("plugins", env={**env, "INTERPGEN_STRICT_PLUGINS": "1"})
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith("error: interpgen plugin 'typo' (distribution 'typo-dist') failed to load")
    assert len(out.stderr.strip().splitlines()) == 1
    out = _cli("plugins", env={**env, "INTERPGEN_STRICT_PLUGINS": "1", "INTERPGEN_DISABLE_PLUGINS": "typo"})
    assert out.returncode == 0 and out.stderr == ""


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
