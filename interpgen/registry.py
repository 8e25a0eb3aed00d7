"""The registry: named parts of each kind, and commands, each with its owner (plugin, distribution).

A part is a *params class* (frozen, keyword-only attrs: its recipe parameters) and an optional *build*
function turning params into the working object given the run's context (shapes, classes, ...); without
it the params are the object. A name registered twice is an error naming both owners. The kernel knows no
part by name: everything here comes from plugins (:mod:`interpgen.hookspecs`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    import argparse

#: The kinds every installation has; plugins may add further kinds by registering into them.
CORE_KINDS: tuple[str, ...] = ("interpolant", "prior", "coupling", "autoencoder", "sampler", "network", "attention",
                               "dataset", "gamma", "diffusion", "objective", "trainer")

#: Commands of the ``interpgen`` command line that belong to the kernel: no plugin may take these names.
KERNEL_COMMANDS: tuple[str, ...] = ("train", "sample", "recipe", "plugins")

#: The owner of what is registered from plain Python, outside any plugin's hook.
PYTHON_OWNER: tuple[str, str] = ("<python>", "<python>")


class RegistryError(ValueError):
    """A registration conflict or a lookup of a name that is not installed."""


@attrs.frozen(kw_only=True)
class FailedPlugin:
    """A plugin that failed to load: its entry-point name, distribution, the error, and the
    ``(kind, name)`` pairs it registered (or tried to) before it failed."""

    name: str
    distribution: str
    error: str
    provided: tuple[tuple[str, str], ...] = ()


class UnknownNameError(RegistryError, LookupError):
    """Raised by :meth:`Registry.get` for a name nobody registered."""

    def __init__(self, kind: str, name: str, installed: list[str], failed: Sequence[FailedPlugin] = ()):
        self.kind, self.name, self.installed = kind, name, installed
        listed = ", ".join(installed) if installed else "(none)"
        super().__init__(f"unknown {kind} {name!r}; installed: {listed}{_failed_note(kind, name, failed)}")


def _failed_note(kind: str, name: str, failed: Sequence[FailedPlugin]) -> str:
    providers = [f for f in failed if (kind, name) in f.provided]
    if providers:
        return "".join(f"; plugin {f.name!r} (distribution {f.distribution!r}) would have provided it but failed: "
                       f"{f.error}" for f in providers)
    if failed:
        labels = ", ".join(f"{f.name!r} (distribution {f.distribution!r})" for f in failed)
        return f"; note: plugin(s) {labels} failed to load, and one of them may provide it"
    return ""


def _identity_build(params: Any, **context: Any) -> Any:
    return params


@attrs.frozen(kw_only=True)
class Entry:
    """One registered part."""

    kind: str
    name: str
    params: type
    build: Callable[..., Any]
    plugin: str
    distribution: str
    description: str = ""

    def create(self, params: Any = None, **context: Any) -> Any:
        """Build the working object; ``params`` defaults to the params class's defaults."""
        return self.build(self.params() if params is None else params, **context)


@attrs.frozen(kw_only=True)
class Command:
    """One command of the ``interpgen`` command line added by a plugin: ``configure(parser)`` adds
    its arguments to an ``argparse.ArgumentParser``, ``run(args)`` runs it and returns the exit status."""

    name: str
    run: Callable[[argparse.Namespace], int]
    configure: Callable[[argparse.ArgumentParser], None] | None
    help: str
    plugin: str
    distribution: str


class Registry:
    """Named parts by kind, and commands, each with its owner."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Entry]] = {kind: {} for kind in CORE_KINDS}
        self._by_class: dict[type, Entry] = {}
        self._commands: dict[str, Command] = {}
        self._owner: tuple[str, str] = PYTHON_OWNER
        self._attempts: dict[tuple[str, str], list[tuple[str, str]]] = {}
        #: ``interpgen_configure_converter`` callers, applied to every recipe converter.
        self.converter_hooks: list[Callable[..., None]] = []
        #: The plugins that failed to load (set by the plugin loader); unknown-name errors cite them.
        self.failed: list[FailedPlugin] = []

    def set_owner(self, plugin: str, distribution: str) -> tuple[str, str]:
        """Make ``plugin`` the owner of what is registered next; returns the previous owner."""
        previous, self._owner = self._owner, (plugin, distribution)
        return previous

    def attempted(self, plugin: str, distribution: str) -> list[tuple[str, str]]:
        """Every ``(kind, name)`` the plugin registered or tried to (commands as kind ``"command"``)."""
        return list(self._attempts.get((plugin, distribution), []))

    def _claim(self, kind: str, name: str, table: dict[str, Any]) -> tuple[str, str]:
        """Record the current owner's attempt at ``name`` and return the owner; refuse a bad or taken name."""
        if not isinstance(name, str) or not name or name != name.strip():
            raise RegistryError(f"{kind} name must be a non-empty string without spaces at the ends, got {name!r}")
        self._attempts.setdefault(self._owner, []).append((kind, name))
        plugin, distribution = self._owner
        if (old := table.get(name)) is not None:
            raise RegistryError(
                f"{kind} {name!r} is registered twice: by plugin {old.plugin!r} (distribution "
                f"{old.distribution!r}) and by plugin {plugin!r} (distribution {distribution!r})")
        return self._owner

    def add(self, kind: str, name: str, params: type, *, build: Callable[..., Any] | None = None,
            description: str = "") -> Entry:
        """Register ``name`` under ``kind``: ``params`` is an attrs class, ``build(params_instance, **context)``
        makes the working object (omit it when the params instance is the object)."""
        table = self._entries.setdefault(kind, {})
        plugin, distribution = self._claim(kind, name, table)
        if not attrs.has(params):
            raise RegistryError(f"{kind} {name!r}: params must be an attrs class (got {params!r}); "
                                "declare its recipe parameters with @attrs.frozen(kw_only=True)")
        if (old := self._by_class.get(params)) is not None:
            raise RegistryError(f"params class {params.__qualname__} is already registered as {old.kind} "
                                f"{old.name!r}; give each registered name its own class (a subclass is enough)")
        description = description or _summary(params.__doc__)
        entry = Entry(kind=kind, name=name, params=params, build=build or _identity_build, plugin=plugin,
                      distribution=distribution, description=description)
        table[name] = self._by_class[params] = entry
        return entry

    def add_command(self, name: str, run: Callable[[argparse.Namespace], int], *,
                    configure: Callable[[argparse.ArgumentParser], None] | None = None, help: str = "") -> Command:
        """Add the subcommand ``interpgen NAME``: ``configure(parser)`` adds its arguments,
        ``run(args)`` runs it and returns the exit status."""
        plugin, distribution = self._claim("command", name, self._commands)
        if name.startswith("-"):
            raise RegistryError(f"command name {name!r} must not start with '-'")
        if name in KERNEL_COMMANDS:
            raise RegistryError(f"command {name!r} belongs to the interpgen kernel ({', '.join(KERNEL_COMMANDS)}); "
                                f"plugin {plugin!r} (distribution {distribution!r}) must choose another name")
        if not callable(run):
            raise RegistryError(f"command {name!r}: run must be callable, got {run!r}")
        if configure is not None and not callable(configure):
            raise RegistryError(f"command {name!r}: configure must be callable or None, got {configure!r}")
        command = self._commands[name] = Command(name=name, run=run, configure=configure, help=help,
                                                 plugin=plugin, distribution=distribution)
        return command

    def drop_plugin(self, plugin: str, distribution: str | None = None) -> list[tuple[str, str]]:
        """Forget every part and command ``plugin`` registered (of ``distribution``, when given);
        used when a plugin fails. Returns the ``(kind, name)`` pairs dropped."""
        dropped = [item for item in [*self, *self._commands.values()]
                   if item.plugin == plugin and distribution in (None, item.distribution)]
        for item in dropped:
            if isinstance(item, Command):
                del self._commands[item.name]
            else:
                del self._entries[item.kind][item.name]
                del self._by_class[item.params]
        return [(item.kind if isinstance(item, Entry) else "command", item.name) for item in dropped]

    def kinds(self) -> list[str]:
        return list(self._entries)

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries.get(kind, {}))

    def get(self, kind: str, name: str) -> Entry:
        if kind not in self._entries:
            raise RegistryError(f"unknown kind {kind!r}; kinds: {', '.join(self.kinds())}"
                                f"{_failed_note(kind, name, self.failed)}")
        if name not in self._entries[kind]:
            raise UnknownNameError(kind, name, self.names(kind), self.failed)
        return self._entries[kind][name]

    def entry_for(self, params: Any) -> Entry | None:
        """The entry whose params class is ``type(params)`` (None for unregistered objects)."""
        return self._by_class.get(type(params))

    def create(self, kind: str, name: str, params: Any = None, **context: Any) -> Any:
        """Build ``name``; the build context's ``registry`` is this registry unless given."""
        context.setdefault("registry", self)
        return self.get(kind, name).create(params, **context)

    def commands(self) -> dict[str, Command]:
        """The commands plugins added, by name."""
        return dict(sorted(self._commands.items()))

    def command(self, name: str) -> Command:
        if name not in self._commands:
            raise UnknownNameError("command", name, sorted(self._commands), self.failed)
        return self._commands[name]

    def __iter__(self) -> Iterator[Entry]:
        for table in self._entries.values():
            yield from table.values()


def _summary(doc: str | None) -> str:
    """The first sentence of a docstring's first paragraph, on one line."""
    paragraph = " ".join((doc or "").strip().split("\n\n")[0].split())
    end = paragraph.find(". ")
    return paragraph if end < 0 else paragraph[: end + 1]
