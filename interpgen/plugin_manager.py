"""Finding and loading plugins.

Plugins come from the ``interpgen`` entry-point group, told apart by (distribution, entry-point
name): two distributions may both call an entry point ``si`` and both load (pluggy knows them as
``"interpgen:si"`` and ``"other-dist:si"``); the same pair seen twice loads once. Entry points are
loaded one at a time (pluggy's ``load_setuptools_entrypoints`` stops at the first that fails), and the
hooks are called through pluggy's hook caller, so ``tryfirst``, ``trylast`` and wrappers work.

Each hook implementation runs inside a guard that makes the registry record its plugin as the owner
of what it adds, and turns a failure into that plugin's failure alone. A plugin that fails in any way
-- it does not import, a hook raises, it implements a hook interpgen does not define (a misspelt or a
removed one), a hook takes an argument the specification lacks, or it registers a name another plugin
already has -- is skipped with one :class:`PluginLoadWarning` that names its entry point, its
distribution, the problem and how to switch it off; what it had registered is dropped and every other
plugin keeps working. It is listed in :attr:`PluginSet.failed`, and an unknown part it would have
provided says so. ``INTERPGEN_STRICT_PLUGINS=1`` (or ``strict=True``) makes each failure a
:class:`PluginLoadError`. ``INTERPGEN_DISABLE_PLUGINS=a,dist:b`` switches entry points off, by name
(every distribution's) or by ``distribution:name``.
"""

from __future__ import annotations

import collections
import contextlib
import difflib
import importlib.metadata
import os
import re
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pluggy

from interpgen import hookspecs
from interpgen.registry import PYTHON_OWNER, FailedPlugin, Registry

__all__ = ["DISABLE_ENV", "ENTRY_POINT_GROUP", "STRICT_ENV", "FailedPlugin", "PluginLoadError",
           "PluginLoadWarning", "PluginSet", "load_plugins", "plugins", "registry", "reload_plugins"]

ENTRY_POINT_GROUP = "interpgen"
STRICT_ENV = "INTERPGEN_STRICT_PLUGINS"
DISABLE_ENV = "INTERPGEN_DISABLE_PLUGINS"


class PluginLoadError(RuntimeError):
    """A plugin failed to load and strict loading is on."""


class PluginLoadWarning(UserWarning):
    """A plugin failed to load and was skipped."""


@attrs.define
class PluginSet:
    """The plugin manager, the registry it filled, what failed to load (shared with ``registry.failed``),
    and each loaded plugin's distribution by its pluggy name (``"distribution:name"``)."""

    manager: pluggy.PluginManager
    registry: Registry
    failed: list[FailedPlugin] = attrs.Factory(list)
    distributions: dict[str, str] = attrs.Factory(dict)


@attrs.frozen
class _Candidate:
    name: str
    distribution: str
    load: Callable[[], Any]

    @property
    def key(self) -> str:
        return f"{self.distribution}:{self.name}"


def _candidates(extra: dict[str, Any] | None) -> list[_Candidate]:
    """The plugins not switched off, in the order their hooks are called: the interpgen distribution's
    own first, then the other entry points by name and distribution, then ``extra``."""
    found: dict[tuple[str, str], _Candidate] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else "<unknown>"
        found.setdefault((dist, ep.name), _Candidate(ep.name, dist, ep.load))
    ordered = sorted(found.values(), key=lambda c: (c.distribution != "interpgen", c.name, c.distribution))
    ordered += [_Candidate(name, PYTHON_OWNER[1], lambda obj=obj: obj) for name, obj in (extra or {}).items()]
    disabled = {part.strip() for part in os.environ.get(DISABLE_ENV, "").split(",")}
    return [c for c in ordered if c.name not in disabled and c.key not in disabled]


def load_plugins(*, strict: bool | None = None, extra: dict[str, Any] | None = None) -> PluginSet:
    """Load every entry point of the ``interpgen`` group (plus ``extra`` plugin objects keyed by
    name, e.g. from a test, as distribution ``<python>``) and fill a fresh registry from their hooks."""
    if strict is None:
        strict = os.environ.get(STRICT_ENV, "").strip().lower() in {"1", "true", "yes", "on"}
    candidates = _candidates(extra)
    loader = _Loader(strict, shared={name for name, n in collections.Counter(c.name for c in candidates).items()
                                     if n > 1})
    for candidate in reversed(candidates):  # pluggy calls the implementation registered last first
        loader.register(candidate)
    result = loader.result
    result.registry.converter_hooks.append(
        lambda converter: result.manager.hook.interpgen_configure_converter(converter=converter))
    result.manager.hook.interpgen_register(registry=result.registry)
    loader.loading = False
    return result


class _Loader:
    """Registers plugins with pluggy, guards their hook implementations and records failures."""

    def __init__(self, strict: bool, shared: set[str]):
        self.strict, self.shared = strict, shared
        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        self.result = PluginSet(manager=pm, registry=Registry())
        self.result.registry.failed = self.result.failed
        #: True while plugins load; afterwards a failing hook (an engine event) switches its plugin off.
        self.loading = True

    def register(self, candidate: _Candidate) -> None:
        pm = self.result.manager
        try:
            plugin = candidate.load()
        except Exception as exc:  # a broken third-party plugin must not take the others down
            return self.fail(candidate, f"loading its entry point raised {_describe(exc)}")
        if pm.is_registered(plugin):
            return self.fail(candidate, f"its module is already loaded as plugin {pm.get_name(plugin)!r}")
        try:
            pm.register(plugin, name=candidate.key)
        except pluggy.PluginValidationError as exc:  # e.g. an argument the hook's specification lacks
            return self.fail(candidate, _validation_problem(pm, exc))
        self.result.distributions[candidate.key] = candidate.distribution
        for caller in pm.get_hookcallers(plugin) or []:
            for impl in [impl for impl in caller.get_hookimpls() if impl.plugin is plugin]:
                if caller.spec is None and not impl.optionalhook:  # pluggy accepts it and checks later
                    return self.fail(candidate, _unknown_hook(pm, caller.name))
                guard = self._guard_wrapper if impl.wrapper or impl.hookwrapper else self._guard
                impl.function = guard(candidate, caller.name, impl.function)
        return None

    def fail(self, candidate: _Candidate, problem: str) -> None:
        """Record ``candidate``'s failure: drop what it registered, unregister it, warn (or raise)."""
        registry, pm = self.result.registry, self.result.manager
        provided = tuple(dict.fromkeys(registry.attempted(candidate.name, candidate.distribution)))
        registry.drop_plugin(candidate.name, candidate.distribution)
        if pm.get_plugin(candidate.key) is not None:
            pm.unregister(name=candidate.key)
        self.result.distributions.pop(candidate.key, None)
        switch = candidate.key if candidate.name in self.shared else candidate.name
        label = f"interpgen plugin {candidate.name!r} (distribution {candidate.distribution!r})"
        if self.strict:
            failed = "failed to load" if self.loading else "failed"
            raise PluginLoadError(f"{label} {failed}: {problem} [{STRICT_ENV}=1 makes this an error; "
                                  f"{DISABLE_ENV}={switch} switches the plugin off]")
        self.result.failed.append(FailedPlugin(name=candidate.name, distribution=candidate.distribution,
                                               error=problem, provided=provided))
        skipped = "skipped" if self.loading else "switched off"
        warnings.warn(f"{label} {skipped}: {problem}. Every other plugin keeps working; switch this one off "
                      f"with {DISABLE_ENV}={switch}", PluginLoadWarning, stacklevel=2)

    def _failed(self, candidate: _Candidate) -> bool:
        return self.result.manager.get_plugin(candidate.key) is None

    @contextlib.contextmanager
    def _owned(self, candidate: _Candidate, hook: str, passing: BaseException | None = None) -> Iterator[None]:
        """Run a plugin's code as the owner of what it registers; an exception it raises is its failure,
        except ``passing`` (one a later implementation raised and pluggy threw into a wrapper)."""
        previous = self.result.registry.set_owner(candidate.name, candidate.distribution)
        try:
            yield
        except Exception as exc:
            if exc is passing or isinstance(exc, PluginLoadError):
                raise
            self.fail(candidate, f"its {hook} hook raised {_describe(exc)}")
        finally:
            self.result.registry.set_owner(*previous)

    def _guard(self, candidate: _Candidate, hook: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if not self._failed(candidate):
                with self._owned(candidate, hook):
                    return function(*args, **kwargs)
            return None

        return guarded

    def _guard_wrapper(self, candidate: _Candidate, hook: str,
                       function: Callable[..., Any]) -> Callable[..., Any]:
        """Guard a hook wrapper (new style or old style): the plugin owns what it registers on both sides
        of its ``yield``; its failure (raising, not yielding, yielding twice) is its own."""

        def guarded(*args: Any, **kwargs: Any) -> Iterator[None]:
            inner, value, thrown = None, None, None
            if not self._failed(candidate):
                with self._owned(candidate, hook):
                    inner = function(*args, **kwargs)
                    try:
                        next(inner)
                    except StopIteration:
                        raise RuntimeError("the hook wrapper did not yield") from None
            try:
                value = yield
            except BaseException as exc:  # a later implementation raised: the plugin's wrapper sees it
                thrown = exc
            if inner is not None and not self._failed(candidate):
                with self._owned(candidate, hook, passing=thrown):
                    try:
                        if thrown is None:
                            inner.send(value)
                        else:
                            inner.throw(thrown)
                    except StopIteration as stop:
                        return stop.value
                    inner.close()
                    raise RuntimeError("the hook wrapper yielded twice")
            if thrown is not None:
                raise thrown
            return value

        return guarded


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _validation_problem(pm: pluggy.PluginManager, exc: pluggy.PluginValidationError) -> str:
    """pluggy's complaint about a hook implementation, in interpgen's words where it is about arguments."""
    found = re.search(r"for hook '(\w+)'.*Argument\(s\) \{(.*)\} are declared in the hookimpl", str(exc), re.S)
    if found is None:
        return " ".join(_describe(exc).split())
    hook, extra = found.groups()
    return (f"its hook {hook} takes argument(s) {extra} that interpgen does not pass; "
            f"the hook is {hook}({', '.join(getattr(pm.hook, hook).spec.argnames)})")


def _unknown_hook(pm: pluggy.PluginManager, hook: str) -> str:
    kind = hookspecs.REMOVED_HOOKS.get(hook)
    if kind is not None:
        return (f"it implements {hook}, a hook interpgen no longer has; use the one registration hook "
                f"interpgen_register(registry) instead, e.g. registry.add({kind!r}, name, ParamsClass)")
    known = sorted(name for name, caller in vars(pm.hook).items()
                   if isinstance(caller, pluggy.HookCaller) and caller.has_spec())
    close = difflib.get_close_matches(hook, known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"it implements {hook}, a hook interpgen does not define{hint}; interpgen's hooks: {', '.join(known)}"


_CURRENT: PluginSet | None = None


def plugins() -> PluginSet:
    """The process-wide plugin set, loaded on first use."""
    return _CURRENT if _CURRENT is not None else reload_plugins()


def registry() -> Registry:
    """The process-wide registry (loads plugins on first use)."""
    return plugins().registry


def reload_plugins(**kwargs: Any) -> PluginSet:
    """Forget the loaded plugins and load again (tests, or after installing a plugin)."""
    global _CURRENT
    _CURRENT = load_plugins(**kwargs)
    return _CURRENT
