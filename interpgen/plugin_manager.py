"""Finding and loading plugins.

Plugins come from the ``interpgen`` entry-point group, loaded one entry point at a time (pluggy's
``load_setuptools_entrypoints`` stops at the first plugin that fails to import). A plugin that
fails is skipped with a warning naming the entry point, its distribution and the error, and is
listed under ``failed``; ``INTERPGEN_STRICT_PLUGINS=1`` turns that into an error.
``INTERPGEN_DISABLE_PLUGINS=a,b`` switches entry points off by name.
"""

from __future__ import annotations

import importlib.metadata
import os
import warnings
from typing import Any

import attrs
import pluggy

from interpgen import hookspecs
from interpgen.registry import Registry, RegistryError

ENTRY_POINT_GROUP = "interpgen"
STRICT_ENV = "INTERPGEN_STRICT_PLUGINS"
DISABLE_ENV = "INTERPGEN_DISABLE_PLUGINS"


class PluginLoadError(RuntimeError):
    """A plugin failed to load and strict loading is on."""


class PluginLoadWarning(UserWarning):
    """A plugin failed to load and was skipped."""


@attrs.frozen
class FailedPlugin:
    name: str
    distribution: str
    error: str


@attrs.define
class PluginSet:
    """The loaded plugin manager, the registry it filled, and what failed to load."""

    manager: pluggy.PluginManager
    registry: Registry
    failed: list[FailedPlugin] = attrs.Factory(list)
    distributions: dict[str, str] = attrs.Factory(dict)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _disabled() -> set[str]:
    return {p.strip() for p in os.environ.get(DISABLE_ENV, "").split(",") if p.strip()}


def _fail(result: PluginSet, name: str, dist: str, exc: BaseException, strict: bool) -> None:
    error = f"{type(exc).__name__}: {exc}"
    if strict:
        raise PluginLoadError(
            f"plugin {name!r} (distribution {dist!r}) failed to load: {error} "
            f"[{STRICT_ENV}=1 makes this an error]") from exc
    warnings.warn(f"interpgen plugin {name!r} (distribution {dist!r}) skipped: {error}",
                  PluginLoadWarning, stacklevel=3)
    result.failed.append(FailedPlugin(name=name, distribution=dist, error=error))


def load_plugins(*, strict: bool | None = None, extra: dict[str, Any] | None = None) -> PluginSet:
    """Load every entry point of the ``interpgen`` group (plus ``extra`` plugin objects keyed by
    name, e.g. from a test) and fill a fresh registry from their hooks."""
    strict = _env_flag(STRICT_ENV) if strict is None else strict
    disabled = _disabled()
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    result = PluginSet(manager=pm, registry=Registry())

    eps = sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
    seen: set[str] = set()
    for ep in eps:
        if ep.name in disabled or ep.name in seen:
            continue
        seen.add(ep.name)
        dist = ep.dist.name if ep.dist is not None else "<unknown>"
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except Exception as exc:  # a broken third-party plugin must not take the others down
            _fail(result, ep.name, dist, exc, strict)
            continue
        result.distributions[ep.name] = dist
    for name, plugin in (extra or {}).items():
        if name in disabled:
            continue
        pm.register(plugin, name=name)
        result.distributions[name] = "<python>"
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginLoadError(f"a plugin implements a hook interpgen does not define: {exc}") from exc

    _fill_registry(result, strict)
    return result


def _fill_registry(result: PluginSet, strict: bool) -> None:
    """Call each plugin's register hooks one plugin at a time, so every entry records its owner
    and one plugin's failure is reported against it alone."""
    pm, registry = result.manager, result.registry
    for name in [n for n, _ in pm.list_name_plugin()]:
        dist = result.distributions.get(name, "<unknown>")
        registry.set_owner(name, dist)
        plugin = pm.get_plugin(name)
        try:
            for hook_name in hookspecs.REGISTER_HOOKS:
                for impl in getattr(pm.hook, hook_name).get_hookimpls():
                    if impl.plugin is plugin:
                        impl.function(registry=registry)
            for impl in pm.hook.interpgen_configure_converter.get_hookimpls():
                if impl.plugin is plugin:
                    registry.converter_hooks.append(impl.function)
        except RegistryError:
            raise  # a name registered twice is always an error: it names both owners
        except Exception as exc:
            pm.unregister(plugin)
            _fail(result, name, dist, exc, strict)
            registry.drop_plugin(name)
    registry.set_owner("<python>", "<python>")


_CURRENT: PluginSet | None = None


def plugins() -> PluginSet:
    """The process-wide plugin set, loaded on first use."""
    global _CURRENT
    if _CURRENT is None:
        _CURRENT = load_plugins()
    return _CURRENT


def registry() -> Registry:
    """The process-wide registry (loads plugins on first use)."""
    return plugins().registry


def reload_plugins(**kwargs: Any) -> PluginSet:
    """Forget the loaded plugins and load again (tests, or after installing a plugin)."""
    global _CURRENT
    _CURRENT = load_plugins(**kwargs)
    return _CURRENT
