"""The plugin surface: entry points told apart by (distribution, name), hooks called through pluggy's
hook caller (tryfirst, trylast, wrappers), ownership inside wrappers, engine events, and what
``interpgen`` exports for plugin authors."""

from __future__ import annotations

import importlib.metadata
import warnings
from pathlib import Path

import attrs
import pytest

from interpgen.plugin_manager import PluginLoadWarning, load_plugins

PART = """
import attrs
from interpgen import hookimpl

@attrs.frozen(kw_only=True)
class Thing:
    size: int = 1
"""


def _plugin(register_body: str, *, opts: str = "") -> str:
    body = "\n".join("    " + line for line in register_body.strip().splitlines())
    return PART + f"\n@hookimpl{opts}\ndef interpgen_register(registry):\n{body}\n"


def _load(**kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_plugins(strict=False, **kwargs)
    return loaded, [str(w.message) for w in caught if issubclass(w.category, PluginLoadWarning)]


def test_two_distributions_may_both_name_an_entry_point_si(fake_distribution, monkeypatch):
    fake_distribution("other-dist", {"si": "ig_testplugin_si"},
                      {"ig_testplugin_si.py": _plugin('registry.add("widget", "other", Thing)')})
    loaded = load_plugins(strict=True)
    # both load: the built-in si keeps its interpolants, the other si adds its part
    assert {"linear", "trig", "gvp", "vp"} <= set(loaded.registry.names("interpolant"))
    assert loaded.registry.get("interpolant", "linear").distribution == "interpgen"
    other = loaded.registry.get("widget", "other")
    assert (other.plugin, other.distribution) == ("si", "other-dist")
    assert {"interpgen:si", "other-dist:si"} <= set(loaded.distributions)
    # dist:name switches one off, the bare name every distribution's
    monkeypatch.setenv("INTERPGEN_DISABLE_PLUGINS", "other-dist:si")
    loaded = load_plugins(strict=True)
    assert "linear" in loaded.registry.names("interpolant") and loaded.registry.names("widget") == []
    monkeypatch.setenv("INTERPGEN_DISABLE_PLUGINS", "si")
    loaded = load_plugins(strict=True)
    assert "linear" not in loaded.registry.names("interpolant") and loaded.registry.names("widget") == []


def test_a_failing_plugin_sharing_a_name_is_switched_off_by_distribution(fake_distribution):
    fake_distribution("other-dist", {"si": "ig_testplugin_si"}, {"ig_testplugin_si.py": _plugin("1 / 0")})
    loaded, messages = _load()
    assert len(messages) == 1 and messages[0].endswith("INTERPGEN_DISABLE_PLUGINS=other-dist:si")
    assert "linear" in loaded.registry.names("interpolant")
    assert [(f.name, f.distribution) for f in loaded.failed] == [("si", "other-dist")]


def test_the_same_distribution_and_name_seen_twice_loads_once(monkeypatch):
    real = importlib.metadata.entry_points
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: list(real(**kw)) * 2)
    loaded = load_plugins(strict=True)  # a second registration of any plugin would be an error here
    assert loaded.failed == []
    assert sum(key == "interpgen:si" for key in loaded.distributions) == 1


def test_tryfirst_and_trylast_decide_who_registers_first(fake_distribution):
    # by entry-point name "a_late" would run before "z_early"; the markers reverse that
    fake_distribution("late-dist", {"a_late": "ig_testplugin_late"},
                      {"ig_testplugin_late.py": _plugin('registry.add("widget", "x", Thing)', opts="(trylast=True)")})
    fake_distribution("early-dist", {"z_early": "ig_testplugin_early"},
                      {"ig_testplugin_early.py": _plugin('registry.add("widget", "x", type("T2", (Thing,), {}))',
                                                         opts="(tryfirst=True)")})
    loaded, messages = _load()
    assert loaded.registry.get("widget", "x").plugin == "z_early"
    assert [f.name for f in loaded.failed] == ["a_late"]
    assert len(messages) == 1 and ("widget 'x' is registered twice: by plugin 'z_early' (distribution "
                                   "'early-dist') and by plugin 'a_late' (distribution 'late-dist')") in messages[0]


WRAPPER = PART + """
SEEN = []

@hookimpl(wrapper=True)
def interpgen_register(registry):
    registry.add("widget", "before", Thing)
    result = yield
    SEEN.extend(registry.names("interpolant"))
    registry.add("widget", "after", type("After", (Thing,), {}))
    return result
"""

OLD_STYLE = PART + """
@hookimpl(hookwrapper=True)
def interpgen_register(registry):
    outcome = yield
    outcome.get_result()
    registry.add("widget", "old_style", Thing)
"""


def test_hook_wrappers_run_around_every_plugin_and_own_what_they_add(fake_distribution):
    fake_distribution("wrap-dist", {"wrap": "ig_testplugin_wrap"}, {"ig_testplugin_wrap.py": WRAPPER})
    fake_distribution("old-dist", {"old": "ig_testplugin_old"}, {"ig_testplugin_old.py": OLD_STYLE})
    import ig_testplugin_wrap

    loaded = load_plugins(strict=True)
    # the wrapper's second half ran after every plain implementation: it saw the built-in interpolants
    assert {"linear", "trig", "lsi_bridge"} <= set(ig_testplugin_wrap.SEEN)
    for name, plugin in (("before", "wrap"), ("after", "wrap"), ("old_style", "old")):
        assert loaded.registry.get("widget", name).plugin == plugin
    assert loaded.registry.get("interpolant", "linear").plugin == "si"


def test_a_wrapper_failing_after_its_yield_fails_its_plugin_only(fake_distribution):
    source = WRAPPER.replace("    return result", "    raise KeyError('lost')")
    fake_distribution("wrap-dist", {"wrap": "ig_testplugin_wrap"}, {"ig_testplugin_wrap.py": source})
    loaded, messages = _load()
    assert len(messages) == 1
    assert "plugin 'wrap' (distribution 'wrap-dist') skipped: its interpgen_register hook raised KeyError" in messages[0]
    assert loaded.registry.names("widget") == []
    assert loaded.failed[0].provided == (("widget", "before"), ("widget", "after"))
    assert "linear" in loaded.registry.names("interpolant")


def test_engine_events_reach_plugins_through_pluggy(fake_distribution, tmp_path):
    source = """
from interpgen import hookimpl
EVENTS = []

@hookimpl
def interpgen_train_event(event):
    EVENTS.append((event.kind, event.step, event.record))
"""
    fake_distribution("ev-dist", {"ev": "ig_testplugin_ev"}, {"ig_testplugin_ev.py": source})
    import ig_testplugin_ev
    from interpgen import TrainEvent

    loaded = load_plugins(strict=True)
    event = TrainEvent(kind="log", step=3, pipe=None, run_dir=tmp_path, train=None, record={"loss": 0.5})
    loaded.manager.hook.interpgen_train_event(event=event)
    assert ig_testplugin_ev.EVENTS == [("log", 3, {"loss": 0.5})]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.step = 4
    with pytest.raises(ValueError, match="'kind' must be in"):
        TrainEvent(kind="logged", step=0, pipe=None, run_dir=None, train=None)


def test_a_plugin_whose_event_hook_raises_is_retired_with_one_warning(fake_distribution):
    source = """
from interpgen import hookimpl
CALLS = []

@hookimpl
def interpgen_train_event(event):
    CALLS.append(event.step)
    raise RuntimeError("disk full")
"""
    fake_distribution("ev-dist", {"ev": "ig_testplugin_ev"}, {"ig_testplugin_ev.py": source})
    import ig_testplugin_ev
    from interpgen import TrainEvent

    loaded = load_plugins(strict=False)
    assert loaded.failed == []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for step in (1, 2):
            loaded.manager.hook.interpgen_train_event(
                event=TrainEvent(kind="checkpoint", step=step, pipe=None, run_dir=Path("."), train=None))
    assert ig_testplugin_ev.CALLS == [1]
    assert len(caught) == 1 and issubclass(caught[0].category, PluginLoadWarning)
    assert ("plugin 'ev' (distribution 'ev-dist') switched off: its interpgen_train_event hook raised "
            "RuntimeError: disk full") in str(caught[0].message)
    assert [f.name for f in loaded.failed] == ["ev"]


def test_extra_plugins_from_python_and_the_exported_surface():
    from interpgen import Registry, TrainEvent, hookimpl  # what a plugin author imports
    from interpgen.hookspecs import TrainEvent as SpecEvent

    assert TrainEvent is SpecEvent and callable(hookimpl)

    @attrs.frozen(kw_only=True)
    class Gizmo:
        pass

    class Plugin:
        @hookimpl
        def interpgen_register(self, registry: Registry) -> None:
            registry.add("widget", "gizmo", Gizmo)
            registry.add_command("gizmo", lambda args: 0, help="make a gizmo")

    loaded = load_plugins(strict=True, extra={"mine": Plugin()})
    assert loaded.registry.get("widget", "gizmo").distribution == "<python>"
    command = loaded.registry.commands()["gizmo"]
    assert (command.plugin, command.help, command.run(None)) == ("mine", "make a gizmo", 0)
