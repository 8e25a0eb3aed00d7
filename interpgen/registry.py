"""The registry: named parts of each kind, and who registered them.

A part is registered with a *params class* (a frozen, keyword-only attrs class whose fields are
the part's recipe parameters) and an optional *build* function that turns a params instance into
the working object given the run's context (data shape, number of classes, ...). When ``build``
is left out the params instance is the working object itself (interpolants, samplers, gammas).

The kernel knows no part by name: everything here comes from plugins through
:mod:`interpgen.hookspecs`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs

#: The kinds every installation has; plugins may add further kinds by registering into them.
CORE_KINDS: tuple[str, ...] = (
    "interpolant", "prior", "coupling", "autoencoder", "sampler",
    "network", "attention", "dataset", "gamma", "diffusion", "objective", "trainer",
)


class RegistryError(ValueError):
    """A registration conflict or a lookup of a name that is not installed."""


class UnknownNameError(RegistryError, LookupError):
    """Raised by :meth:`Registry.get` for a name nobody registered."""

    def __init__(self, kind: str, name: str, installed: list[str]):
        self.kind, self.name, self.installed = kind, name, installed
        listed = ", ".join(installed) if installed else "(none)"
        super().__init__(f"unknown {kind} {name!r}; installed: {listed}")


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
        if params is None:
            params = self.params()
        return self.build(params, **context)


@attrs.frozen(kw_only=True)
class Command:
    """A subcommand of ``interpgen`` added by a plugin: ``configure(parser)`` adds its arguments,
    ``run(args)`` runs it and returns the exit status."""

    name: str
    run: Callable[[Any], int]
    configure: Callable[[Any], None] | None
    help: str
    plugin: str
    distribution: str


#: Commands of the kernel's own command line; no plugin may take these names.
KERNEL_COMMANDS: tuple[str, ...] = ("train", "sample", "recipe", "plugins")


class Registry:
    """Named parts by kind. Registering a name twice is an error naming both owners."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Entry]] = {kind: {} for kind in CORE_KINDS}
        self._by_class: dict[type, Entry] = {}
        self._owner: tuple[str, str] = ("<python>", "<python>")
        #: ``interpgen_configure_converter`` implementations, applied to every recipe converter.
        self.converter_hooks: list[Callable[..., None]] = []
        self._commands: dict[str, Command] = {}

    # -- ownership, set by the plugin manager while a plugin's hook runs --------------------
    def set_owner(self, plugin: str, distribution: str) -> None:
        self._owner = (plugin, distribution)

    # -- registration ---------------------------------------------------------------------
    def add(self, kind: str, name: str, params: type, *, build: Callable[..., Any] | None = None,
            description: str = "") -> Entry:
        """Register ``name`` under ``kind``.

        ``params`` must be an attrs class; ``build(params_instance, **context)`` makes the
        working object (omit it when the params instance is the object).
        """
        if not isinstance(name, str) or not name or name != name.strip():
            raise RegistryError(f"{kind} name must be a non-empty string without spaces at the ends, got {name!r}")
        if not attrs.has(params):
            raise RegistryError(
                f"{kind} {name!r}: params must be an attrs class (got {params!r}); "
                "declare its recipe parameters with @attrs.frozen(kw_only=True)")
        plugin, distribution = self._owner
        table = self._entries.setdefault(kind, {})
        if name in table:
            old = table[name]
            raise RegistryError(
                f"{kind} {name!r} is registered twice: by plugin {old.plugin!r} "
                f"(distribution {old.distribution!r}) and by plugin {plugin!r} (distribution {distribution!r})")
        if params in self._by_class:
            old = self._by_class[params]
            raise RegistryError(
                f"params class {params.__qualname__} is already registered as {old.kind} {old.name!r}; "
                "give each registered name its own class (a subclass is enough)")
        entry = Entry(kind=kind, name=name, params=params, build=build or _identity_build,
                      plugin=plugin, distribution=distribution,
                      description=description or _first_line(params.__doc__))
        table[name] = entry
        self._by_class[params] = entry
        return entry

    def add_command(self, name: str, run: Callable[[Any], int], *, configure: Callable[[Any], None] | None = None,
                    help: str = "") -> Command:  # noqa: A002 - argparse's word
        """Add ``interpgen NAME``: ``configure(parser)`` adds its arguments, ``run(args) -> int``."""
        plugin, distribution = self._owner
        if not isinstance(name, str) or not name or not name.replace("-", "").replace("_", "").isalnum():
            raise RegistryError(f"command name must be a word (letters, digits, - or _), got {name!r}")
        if name in KERNEL_COMMANDS:
            raise RegistryError(f"command {name!r} belongs to interpgen itself; plugin {plugin!r} "
                                f"(distribution {distribution!r}) must choose another name")
        if name in self._commands:
            old = self._commands[name]
            raise RegistryError(f"command {name!r} is registered twice: by plugin {old.plugin!r} (distribution "
                                f"{old.distribution!r}) and by plugin {plugin!r} (distribution {distribution!r})")
        command = Command(name=name, run=run, configure=configure, help=help, plugin=plugin,
                          distribution=distribution)
        self._commands[name] = command
        return command

    def commands(self) -> dict[str, Command]:
        """The plugins' commands by name."""
        return dict(sorted(self._commands.items()))

    def drop_plugin(self, plugin: str) -> None:
        """Forget every entry ``plugin`` registered (used when its registration fails half-way)."""
        for entry in [e for e in self if e.plugin == plugin]:
            del self._entries[entry.kind][entry.name]
            del self._by_class[entry.params]
        for name in [n for n, c in self._commands.items() if c.plugin == plugin]:
            del self._commands[name]

    # -- lookup -----------------------------------------------------------------------------
    def kinds(self) -> list[str]:
        return list(self._entries)

    def names(self, kind: str) -> list[str]:
        return sorted(self._entries.get(kind, {}))

    def get(self, kind: str, name: str) -> Entry:
        table = self._entries.get(kind)
        if table is None:
            raise RegistryError(f"unknown kind {kind!r}; kinds: {', '.join(self.kinds())}")
        try:
            return table[name]
        except KeyError:
            raise UnknownNameError(kind, name, sorted(table)) from None

    def entry_for(self, params: Any) -> Entry | None:
        """The entry whose params class is ``type(params)`` (None for unregistered objects)."""
        return self._by_class.get(type(params))

    def create(self, kind: str, name: str, params: Any = None, **context: Any) -> Any:
        return self.get(kind, name).create(params, **context)

    def __iter__(self) -> Iterator[Entry]:
        for table in self._entries.values():
            yield from table.values()


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if doc and doc.strip() else ""
