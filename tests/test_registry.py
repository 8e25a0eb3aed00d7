"""The registry: registration rules, lookups and the errors users see."""

from __future__ import annotations

import attrs
import pytest

from interpgen.registry import Registry, RegistryError, UnknownNameError


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
