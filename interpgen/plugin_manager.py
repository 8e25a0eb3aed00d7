"""Finding and loading plugins (docs/plugins.md, "Loading").

Entry points of the ``interpgen`` group load one at a time, told apart by (distribution, name). Hooks run
through pluggy's hook caller (``tryfirst``, ``trylast``, wrappers), each implementation guarded so the registry
records its owner and any failure -- not importing, a hook raising, a hook interpgen does not define, an
argument the specification lacks, a name already taken -- is that plugin's alone: it is skipped with one
:class:`PluginLoadWarning` (entry point, distribution, problem, how to switch it off) and listed in
:attr:`PluginSet.failed`. ``INTERPGEN_STRICT_PLUGINS=1`` makes each failure a :class:`PluginLoadError`;
``INTERPGEN_DISABLE_PLUGINS=a,dist:b`` switches entry points off by name or ``distribution:name``.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
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
    """The plugins not switched off, in calling order: interpgen's own, the rest by name, then ``extra``."""
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
    return _Loader(strict, _candidates(extra)).result


class _Loader:
    """Registers plugins with pluggy, guards their hook implementations and records failures."""

    def __init__(self, strict: bool, candidates: list[_Candidate]):
        self.strict, self.candidates = strict, candidates
        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        self.result = PluginSet(manager=pm, registry=Registry())
        self.result.registry.failed = self.result.failed
        self.loading = True  # afterwards a failing hook (an engine event) switches its plugin off
        for candidate in reversed(candidates):  # pluggy calls the implementation registered last first
            self.register(candidate)
        self.result.registry.converter_hooks.append(
            lambda converter: pm.hook.interpgen_configure_converter(converter=converter))
        pm.hook.interpgen_register(registry=self.result.registry)
        self.loading = False

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
                guard = self._wrap if impl.wrapper or impl.hookwrapper else self._call
                impl.function = functools.partial(guard, candidate, caller.name, impl.function)

    def fail(self, candidate: _Candidate, problem: str) -> None:
        """Record ``candidate``'s failure: drop what it registered, unregister it, warn (or raise)."""
        registry, pm = self.result.registry, self.result.manager
        provided = tuple(dict.fromkeys(registry.attempted(candidate.name, candidate.distribution)))
        registry.drop_plugin(candidate.name, candidate.distribution)
        if self.result.distributions.pop(candidate.key, None) is not None:  # it was registered
            pm.unregister(name=candidate.key)
        shared = [c.name for c in self.candidates].count(candidate.name) > 1
        switch = f"{DISABLE_ENV}={candidate.key if shared else candidate.name}"
        label = f"interpgen plugin {candidate.name!r} (distribution {candidate.distribution!r})"
        if self.strict:
            raise PluginLoadError(f"{label} {'failed to load' if self.loading else 'failed'}: {problem} "
                                  f"[{STRICT_ENV}=1 makes this an error; {switch} switches the plugin off]")
        self.result.failed.append(FailedPlugin(name=candidate.name, distribution=candidate.distribution,
                                               error=problem, provided=provided))
        warnings.warn(f"{label} {'skipped' if self.loading else 'switched off'}: {problem}. Every other plugin "
                      f"keeps working; switch this one off with {switch}", PluginLoadWarning, stacklevel=2)

    @contextlib.contextmanager
    def _owned(self, candidate: _Candidate, hook: str, passing: BaseException | None = None) -> Iterator[None]:
        """Run plugin code as the owner of what it registers; what it raises (but ``passing``) is its failure."""
        previous = self.result.registry.set_owner(candidate.name, candidate.distribution)
        try:
            yield
        except Exception as exc:
            if exc is passing or isinstance(exc, PluginLoadError):
                raise
            self.fail(candidate, f"its {hook} hook raised {_describe(exc)}")
        finally:
            self.result.registry.set_owner(*previous)

    def _call(self, candidate: _Candidate, hook: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if candidate.key in self.result.distributions:
            with self._owned(candidate, hook):
                return function(*args, **kwargs)
        return None

    def _wrap(self, candidate: _Candidate, hook: str, function: Callable[..., Any],
              *args: Any, **kwargs: Any) -> Iterator[None]:
        """A plugin's hook wrapper (new or old style), owning what it adds on both sides of its ``yield``."""
        inner, value, thrown = None, None, None
        if candidate.key in self.result.distributions:
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
        if inner is not None and candidate.key in self.result.distributions:
            with self._owned(candidate, hook, passing=thrown):
                try:
                    if thrown is None:
                        inner.send(value)
                    else:
                        inner.throw(thrown)
                except StopIteration as stop:
                    return stop.value
                raise RuntimeError("the hook wrapper yielded twice")
        if thrown is not None:
            raise thrown
        return value


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _validation_problem(pm: pluggy.PluginManager, exc: pluggy.PluginValidationError) -> str:
    """pluggy's complaint about a hook implementation, in interpgen's words where it is about arguments."""
    found = re.search(r"for hook '(\w+)'.*Argument\(s\) \{(.*)\} are declared in the hookimpl", str(exc), re.S)
    if found is None:
        return " ".join(_describe(exc).split())
    hook, extra = found[1], ", ".join(sorted(found[2].split(", ")))  # pluggy names them as a set
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
