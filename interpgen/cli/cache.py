"""The plugins' commands, remembered so that ``interpgen --help`` lists them without loading a plugin.

Loading the plugins imports torch (their modules define torch classes), most of a command's
start-up. The top-level help needs only each plugin command's name and help line, so every real
load of the plugins by the command line writes them to ``commands-<fingerprint>.json`` in
:func:`cache_dir`. The fingerprint covers what decides which plugins load: every entry point of
the ``interpgen`` group (distribution name and version, entry-point name and value) and
``INTERPGEN_DISABLE_PLUGINS``. Installing, upgrading or removing a plugin package changes it, and
the next ``--help`` loads the plugins for real; a plugin installed in editable mode that changes a
command's help without a new version is seen at the next command that loads the plugins. A cache
that cannot be read or written is ignored.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import tempfile
from pathlib import Path

from interpgen.plugin_manager import DISABLE_ENV, ENTRY_POINT_GROUP, PluginSet, plugins
from interpgen.registry import PYTHON_OWNER

FORMAT = 1  # bump when the file's layout changes


def cache_dir() -> Path:
    """``$INTERPGEN_CACHE``, else ``$XDG_CACHE_HOME/interpgen``, else ``~/.cache/interpgen``."""
    own, xdg = os.environ.get("INTERPGEN_CACHE"), os.environ.get("XDG_CACHE_HOME")
    return Path(own).expanduser() if own else (Path(xdg) if xdg else Path.home() / ".cache") / "interpgen"


def fingerprint() -> str:
    """A digest of the installed ``interpgen`` entry points and the switched-off plugins."""
    points = sorted((ep.dist.name if ep.dist else "", ep.dist.version if ep.dist else "", ep.name, ep.value)
                    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    text = json.dumps([FORMAT, points, os.environ.get(DISABLE_ENV, "")])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _path() -> Path | None:
    try:
        return cache_dir() / f"commands-{fingerprint()}.json"
    except RuntimeError:  # no home folder to be found
        return None


def cached_commands(path: Path | None = None) -> dict[str, str] | None:
    """The plugins' commands (name -> help line) remembered for the installed plugins, or None."""
    try:
        commands = json.loads((path or _path()).read_text(encoding="utf-8"))  # type: ignore[union-attr]
    except (AttributeError, OSError, ValueError):
        return None
    ok = isinstance(commands, dict) and all(isinstance(v, str) for v in commands.values())
    return commands if ok else None


def remember(loaded: PluginSet) -> None:
    """Write ``loaded``'s commands for the next ``--help`` (not for a set with parts added from Python)."""
    commands = loaded.registry.commands()
    path = _path()
    owners = {*loaded.distributions.values(), *(c.distribution for c in commands.values())}
    if path is None or PYTHON_OWNER[1] in owners:
        return
    lines = {name: f"{c.help} [plugin {c.plugin}]" for name, c in commands.items()}
    if cached_commands(path) == lines:
        return
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(lines, f)
        os.replace(tmp, path)  # a reader sees the old file or the new one, never half of one
    except OSError:  # an unwritable cache only costs the next --help a real load
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def loaded_plugins() -> PluginSet:
    """The process's plugins (loaded on first use), their commands remembered for ``--help``."""
    loaded = plugins()
    remember(loaded)
    return loaded
