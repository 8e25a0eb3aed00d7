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

import difflib
import importlib.metadata
import inspect
import os
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
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
PYTHON_DISTRIBUTION = PYTHON_OWNER[1]


class PluginLoadError(RuntimeError):
    """A plugin failed to load and strict loading is on."""


class PluginLoadWarning(UserWarning):
    """A plugin failed to load and was skipped."""


@attrs.define
class PluginSet:
    """The loaded plugin manager, the registry it filled, and what failed to load.

    ``distributions`` maps each loaded plugin's pluggy name (``"distribution:name"``) to its
    distribution; ``failed`` is shared with ``registry.failed``."""

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


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _disabled() -> set[str]:
    return {p.strip() for p in os.environ.get(DISABLE_ENV, "").split(",") if p.strip()}


def _candidates(extra: dict[str, Any] | None, disabled: set[str]) -> list[_Candidate]:
    """Entry points (then ``extra`` objects) in the order their hooks are called: the interpgen
    distribution's own plugins first, then the rest by name and distribution."""
    found: dict[tuple[str, str], _Candidate] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else "<unknown>"
        found.setdefault((dist, ep.name), _Candidate(ep.name, dist, ep.load))
    ordered = sorted(found.values(), key=lambda c: (c.distribution != "interpgen", c.name, c.distribution))
    ordered += [_Candidate(name, PYTHON_DISTRIBUTION, lambda obj=obj: obj) for name, obj in (extra or {}).items()]
    return [c for c in ordered if c.name not in disabled and c.key not in disabled]


def load_plugins(*, strict: bool | None = None, extra: dict[str, Any] | None = None) -> PluginSet:
    """Load every entry point of the ``interpgen`` group (plus ``extra`` plugin objects keyed by
    name, e.g. from a test, as distribution ``<python>``) and fill a fresh registry from their hooks."""
    strict = _env_flag(STRICT_ENV) if strict is None else strict
    loader = _Loader(strict)
    candidates = _candidates(extra, _disabled())
    loader.shared_names = _shared_names(candidates)
    # pluggy calls the implementation registered last first: register in reverse calling order
    for candidate in reversed(candidates):
        loader.register(candidate)
    loader.result.registry.converter_hooks.append(
        lambda converter: loader.result.manager.hook.interpgen_configure_converter(converter=converter))
    loader.result.manager.hook.interpgen_register(registry=loader.result.registry)
    loader.loading = False
    return loader.result


def _shared_names(candidates: Iterable[_Candidate]) -> set[str]:
    seen: set[str] = set()
    shared: set[str] = set()
    for c in candidates:
        (shared if c.name in seen else seen).add(c.name)
    return shared


class _Loader:
    """Registers plugins with pluggy, guards their hook implementations and records failures."""

    def __init__(self, strict: bool):
        self.strict = strict
        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        self.result = PluginSet(manager=pm, registry=Registry())
        self.result.registry.failed = self.result.failed
        self.owners: dict[str, _Candidate] = {}
        self.shared_names: set[str] = set()
        #: True while plugins load; afterwards a failing hook (an engine event) switches its plugin off.
        self.loading = True

    # -- registration -------------------------------------------------------------------------
    def register(self, candidate: _Candidate) -> None:
        pm = self.result.manager
        try:
            plugin = candidate.load()
        except Exception as exc:  # a broken third-party plugin must not take the others down
            self.fail(candidate, f"loading its entry point raised {_describe(exc)}")
            return
        problem = _hook_problem(pm, plugin)
        if problem is None and pm.get_name(plugin) is not None:
            other = self.owners[pm.get_name(plugin)]
            problem = f"its module is already loaded as plugin {other.name!r} (distribution {other.distribution!r})"
        if problem is not None:
            self.fail(candidate, problem)
            return
        try:
            pm.register(plugin, name=candidate.key)
        except Exception as exc:  # pluggy's own validation (e.g. a wrapper on a historic hook)
            self.fail(candidate, " ".join(_describe(exc).split()))
            return
        self.owners[candidate.key] = candidate
        self.result.distributions[candidate.key] = candidate.distribution
        for caller in pm.get_hookcallers(plugin) or []:
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin:
                    guard = self._guard_wrapper if impl.wrapper or impl.hookwrapper else self._guard
                    impl.function = guard(candidate, caller.name, impl.function)

    # -- failures ---------------------------------------------------------------------------------
    def fail(self, candidate: _Candidate, problem: str) -> None:
        """Record ``candidate``'s failure: drop what it registered, unregister it, warn (or raise)."""
        registry, pm = self.result.registry, self.result.manager
        provided = tuple(dict.fromkeys(registry.attempted(candidate.name, candidate.distribution)))
        registry.drop_plugin(candidate.name, candidate.distribution)
        if pm.get_plugin(candidate.key) is not None:
            pm.unregister(name=candidate.key)
        self.result.distributions.pop(candidate.key, None)
        switch = candidate.key if candidate.name in self.shared_names else candidate.name
        label = f"interpgen plugin {candidate.name!r} (distribution {candidate.distribution!r})"
        if self.strict:
            failed = "failed to load" if self.loading else "failed"
            raise PluginLoadError(f"{label} {failed}: {problem} [{STRICT_ENV}=1 makes this an error; "
                                  f"{DISABLE_ENV}={switch} switches the plugin off]")
        self.result.failed.append(FailedPlugin(name=candidate.name, distribution=candidate.distribution,
                                               error=problem, provided=provided))
        skipped = "skipped" if self.loading else "switched off"
        warnings.warn(f"{label} {skipped}: {problem}. Every other plugin keeps working; switch this one off "
                      f"with {DISABLE_ENV}={switch}", PluginLoadWarning, stacklevel=_caller_level())

    def _failed(self, candidate: _Candidate) -> bool:
        return self.result.manager.get_plugin(candidate.key) is None

    # -- guards around each hook implementation -----------------------------------------------------
    def _guard(self, candidate: _Candidate, hook: str, function: Callable[..., Any]) -> Callable[..., Any]:
        registry = self.result.registry

        def guarded(*args: Any, **kwargs: Any) -> Any:
            if self._failed(candidate):
                return None
            registry.set_owner(candidate.name, candidate.distribution)
            try:
                return function(*args, **kwargs)
            except Exception as exc:
                self.fail(candidate, f"its {hook} hook raised {_describe(exc)}")
                return None
            finally:
                registry.set_owner(*PYTHON_OWNER)

        return guarded

    def _guard_wrapper(self, candidate: _Candidate, hook: str,
                       function: Callable[..., Any]) -> Callable[..., Any]:
        """A transparent wrapper around a plugin's hook wrapper (new style or old style): the
        plugin owns what it registers before and after its ``yield``, and its failure is its own."""
        registry = self.result.registry

        def start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterator[Any] | None:
            if self._failed(candidate):
                return None
            registry.set_owner(candidate.name, candidate.distribution)
            try:
                inner = function(*args, **kwargs)
                next(inner)
                return inner
            except StopIteration:
                self.fail(candidate, f"its {hook} hook wrapper did not yield")
            except Exception as exc:
                self.fail(candidate, f"its {hook} hook raised {_describe(exc)}")
            finally:
                registry.set_owner(*PYTHON_OWNER)
            return None

        def finish(inner: Iterator[Any], value: Any, thrown: BaseException | None) -> Any:
            if self._failed(candidate):  # it failed in the meantime: run nothing more of it
                inner.close()
                if thrown is not None:
                    raise thrown
                return value
            registry.set_owner(candidate.name, candidate.distribution)
            try:
                if thrown is not None:
                    inner.throw(thrown)
                else:
                    inner.send(value)
            except StopIteration as stop:
                return stop.value
            except Exception as exc:
                if exc is thrown:
                    raise
                self.fail(candidate, f"its {hook} hook raised {_describe(exc)}")
                if thrown is not None:
                    raise thrown from None
                return value
            finally:
                registry.set_owner(*PYTHON_OWNER)
            inner.close()
            self.fail(candidate, f"its {hook} hook wrapper yielded twice")
            return value

        def guarded(*args: Any, **kwargs: Any) -> Iterator[None]:
            inner = start(args, kwargs)
            if inner is None:  # failed or skipped: pass the call through untouched
                return (yield)
            try:
                value = yield
            except BaseException as exc:  # a later implementation raised: let the wrapper see it
                return finish(inner, None, exc)
            return finish(inner, value, None)

        return guarded


_INTERNAL_DIRS = tuple(os.path.dirname(m.__file__) + os.sep for m in (hookspecs, pluggy))


def _caller_level() -> int:
    """The ``stacklevel`` that points a warning issued by the caller at the first frame outside
    interpgen and pluggy (the user's code or script), not at the loader's own lines."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_INTERNAL_DIRS):
        frame, level = frame.f_back, level + 1
    return level


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _hook_problem(pm: pluggy.PluginManager, plugin: Any) -> str | None:
    """What is wrong with ``plugin``'s hook implementations, checked before pluggy registers it:
    a hook interpgen does not define (removed or misspelt), or an argument the specification lacks."""
    specs = {name: caller.spec for name, caller in vars(pm.hook).items()
             if isinstance(caller, pluggy.HookCaller) and caller.spec is not None}
    for attr in dir(plugin):
        opts = pm.parse_hookimpl_opts(plugin, attr)
        if opts is None:
            continue
        hook = opts.get("specname") or attr
        spec = specs.get(hook)
        if spec is None:
            if opts.get("optionalhook"):
                continue
            return _unknown_hook(hook, sorted(specs))
        function = getattr(plugin, attr)
        params = [p for p in inspect.signature(function).parameters.values()
                  if p.default is inspect.Parameter.empty
                  and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]
        extra = [p.name for p in params if p.name not in spec.argnames and p.name != "self"]
        if extra:
            return (f"its hook {hook} takes argument(s) {', '.join(map(repr, extra))} that interpgen does not pass; "
                    f"the hook is {hook}({', '.join(spec.argnames)})")
    return None


def _unknown_hook(hook: str, known: list[str]) -> str:
    kind = hookspecs.REMOVED_HOOKS.get(hook)
    if kind is not None:
        return (f"it implements {hook}, a hook interpgen no longer has; use the one registration hook "
                f"interpgen_register(registry) instead, e.g. registry.add({kind!r}, name, ParamsClass)")
    close = difflib.get_close_matches(hook, known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"it implements {hook}, a hook interpgen does not define{hint}; interpgen's hooks: {', '.join(known)}"


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
