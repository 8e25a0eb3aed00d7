"""The registry: registration rules, lookups and the errors users see."""

from __future__ import annotations

import argparse

import attrs
import pytest

from interpgen.registry import FailedPlugin, Registry, RegistryError, UnknownNameError


@attrs.frozen(kw_only=True)
class Alpha:
    """First line of the description.

    More text.
    """

    size: int = 2


@attrs.frozen(kw_only=True)
class Beta:
    pass


def test_add_get_create_and_owner():
    reg = Registry()
    reg.set_owner("myplugin", "my-dist")
    entry = reg.add("prior", "alpha", Alpha, build=lambda p, scale=1, **ctx: p.size * scale)
    assert reg.get("prior", "alpha") is entry
    assert (entry.plugin, entry.distribution, entry.description) == ("myplugin", "my-dist", "First line of the description.")
    assert reg.create("prior", "alpha", Alpha(size=3), scale=2, unused=None) == 6
    assert reg.entry_for(Alpha()) is entry and reg.entry_for(object()) is None


def test_params_object_is_the_part_without_build():
    reg = Registry()
    reg.add("sampler", "beta", Beta)
    assert reg.create("sampler", "beta") == Beta()


def test_unknown_name_lists_what_is_installed():
    reg = Registry()
    reg.add("prior", "alpha", Alpha)
    reg.add("prior", "beta", Beta)
    with pytest.raises(UnknownNameError, match=r"unknown prior 'gamma'; installed: alpha, beta"):
        reg.get("prior", "gamma")
    with pytest.raises(RegistryError, match="unknown kind 'priors'"):
        reg.get("priors", "alpha")


def test_new_kinds_and_bad_registrations():
    reg = Registry()
    reg.add("widget", "alpha", Alpha)
    assert "widget" in reg.kinds() and reg.names("widget") == ["alpha"]
    with pytest.raises(RegistryError, match="must be an attrs class"):
        reg.add("prior", "plain", dict)
    with pytest.raises(RegistryError, match="already registered as widget 'alpha'"):
        reg.add("prior", "again", Alpha)
    with pytest.raises(RegistryError, match="non-empty string"):
        reg.add("prior", " padded", Beta)


def test_objective_is_a_core_kind_and_commands_are_not_a_kind():
    reg = Registry()
    assert "objective" in reg.kinds() and reg.names("objective") == []
    assert "command" not in reg.kinds()
    reg.add_command("report", lambda args: 0)
    assert "command" not in reg.kinds() and list(reg) == []


def test_create_hands_the_registry_to_the_build_context():
    reg = Registry()
    reg.add("prior", "alpha", Alpha, build=lambda p, *, registry, **ctx: registry)
    assert reg.create("prior", "alpha") is reg
    other = Registry()
    assert reg.create("prior", "alpha", registry=other) is other


def test_add_command_records_owner_help_and_callables():
    reg = Registry()
    reg.set_owner("reports", "reports-dist")

    def configure(parser):
        parser.add_argument("--n", type=int, default=1)

    def run(args):
        return args.n + 1

    command = reg.add_command("report", run, configure=configure, help="print a report")
    assert reg.commands() == {"report": command} and reg.command("report") is command
    assert (command.plugin, command.distribution, command.help) == ("reports", "reports-dist", "print a report")
    parser = argparse.ArgumentParser()
    command.configure(parser)
    assert command.run(parser.parse_args(["--n", "4"])) == 5
    with pytest.raises(UnknownNameError, match=r"unknown command 'reprt'; installed: report"):
        reg.command("reprt")


def test_a_command_registered_twice_names_both_owners():
    reg = Registry()
    reg.set_owner("first", "first-dist")
    reg.add_command("report", lambda args: 0)
    reg.set_owner("second", "second-dist")
    with pytest.raises(RegistryError, match=r"command 'report' is registered twice: by plugin 'first' "
                                            r"\(distribution 'first-dist'\) and by plugin 'second' "
                                            r"\(distribution 'second-dist'\)"):
        reg.add_command("report", lambda args: 1)
    assert reg.command("report").plugin == "first"


@pytest.mark.parametrize("name", ["train", "sample", "recipe", "plugins"])
def test_kernel_command_names_are_refused(name):
    reg = Registry()
    reg.set_owner("greedy", "greedy-dist")
    with pytest.raises(RegistryError, match=rf"command '{name}' belongs to the interpgen kernel .*plugin 'greedy' "
                                            r"\(distribution 'greedy-dist'\) must choose another name"):
        reg.add_command(name, lambda args: 0)
    assert reg.commands() == {}


def test_bad_commands_are_refused():
    reg = Registry()
    with pytest.raises(RegistryError, match="must be callable"):
        reg.add_command("report", "not a function")
    with pytest.raises(RegistryError, match="configure must be callable or None"):
        reg.add_command("report", lambda args: 0, configure=3)
    with pytest.raises(RegistryError, match="must not start with '-'"):
        reg.add_command("--report", lambda args: 0)
    with pytest.raises(RegistryError, match="non-empty string"):
        reg.add_command("", lambda args: 0)


def test_drop_plugin_forgets_parts_and_commands_of_that_distribution_only():
    reg = Registry()
    reg.set_owner("si", "other-dist")
    reg.add("widget", "alpha", Alpha)
    reg.add_command("report", lambda args: 0)
    reg.set_owner("si", "interpgen")
    reg.add("widget", "beta", Beta)
    assert reg.drop_plugin("si", "other-dist") == [("widget", "alpha"), ("command", "report")]
    assert reg.names("widget") == ["beta"] and reg.commands() == {}
    assert reg.entry_for(Alpha()) is None
    assert reg.attempted("si", "other-dist") == [("widget", "alpha"), ("command", "report")]


def test_unknown_names_mention_plugins_that_failed():
    reg = Registry()
    reg.add("prior", "alpha", Alpha)
    reg.failed = [FailedPlugin(name="moon", distribution="moon-dist", error="RuntimeError: no air",
                               provided=(("prior", "moon"), ("command", "orbit"))),
                  FailedPlugin(name="sun", distribution="sun-dist", error="ImportError: too hot")]
    with pytest.raises(UnknownNameError, match=r"^unknown prior 'moon'; installed: alpha; plugin 'moon' "
                                               r"\(distribution 'moon-dist'\) would have provided it but failed: "
                                               r"RuntimeError: no air$"):
        reg.get("prior", "moon")
    with pytest.raises(UnknownNameError, match=r"plugin 'moon' \(distribution 'moon-dist'\) would have provided it"):
        reg.command("orbit")
    with pytest.raises(UnknownNameError, match=r"^unknown prior 'mars'; installed: alpha; note: plugin\(s\) 'moon' "
                                               r"\(distribution 'moon-dist'\), 'sun' \(distribution 'sun-dist'\) "
                                               r"failed to load, and one of them may provide it$"):
        reg.get("prior", "mars")
    with pytest.raises(RegistryError, match=r"unknown kind 'planet'.*'sun' \(distribution 'sun-dist'\)"):
        reg.get("planet", "mars")
