"""``interpgen plugins``: what is installed, by kind, the commands plugins add, and the plugins
that failed to load (a table, ``--json``, or ``--markdown``: docs/parts.md holds its output)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def plugin_report() -> dict[str, Any]:
    """Everything installed, by kind, the commands plugins add (``command``), and the plugins that
    failed to load."""
    from interpgen.cli.cache import loaded_plugins as plugins

    loaded = plugins()
    report: dict[str, Any] = {}
    for kind in loaded.registry.kinds():
        report[kind] = [
            {"name": e.name, "plugin": e.plugin, "distribution": e.distribution, "description": e.description}
            for e in sorted(loaded.registry, key=lambda e: e.name) if e.kind == kind
        ]
    report["command"] = [{"name": c.name, "plugin": c.plugin, "distribution": c.distribution, "description": c.help}
                         for c in loaded.registry.commands().values()]
    report["failed"] = [{"name": f.name, "distribution": f.distribution, "error": f.error} for f in loaded.failed]
    return report


def _cell(text: str) -> str:
    """A Markdown table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def plugins_markdown() -> str:
    """The registry as Markdown (``interpgen plugins --markdown``; docs/parts.md holds its output):
    one table per kind (name, plugin, description: the params class's docstring's first line, as
    ``interpgen plugins`` shows it), then the commands plugins add."""
    from interpgen.cli.cache import loaded_plugins as plugins

    loaded = plugins()
    reg = loaded.registry
    lines: list[str] = []
    for kind in reg.kinds():
        lines += [f"### `{kind}`", ""]
        entries = sorted((e for e in reg if e.kind == kind), key=lambda e: e.name)
        if not entries:
            lines += ["(none installed)", ""]
            continue
        lines += ["| name | plugin | description |", "|---|---|---|"]
        lines += [f"| `{e.name}` | {_cell(e.plugin)} | {_cell(e.description)} |" for e in entries]
        lines.append("")
    lines += ["### Commands plugins add", ""]
    commands = reg.commands()
    if commands:
        lines += ["| command | plugin | what it does |", "|---|---|---|"]
        lines += [f"| `interpgen {name}` | {_cell(c.plugin)} | {_cell(c.help)} |" for name, c in commands.items()]
    else:
        lines.append("(none installed)")
    for failed in loaded.failed:
        lines += ["", f"Not loaded: plugin `{failed.name}` ({_cell(failed.distribution)}): {_cell(failed.error)}"]
    return "\n".join(lines).rstrip("\n") + "\n"


def cmd_plugins(args: argparse.Namespace) -> int:
    if args.markdown:
        sys.stdout.write(plugins_markdown())
        return 0
    report = plugin_report()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    rows = [(kind, e["name"], e["plugin"], e["distribution"], e["description"])
            for kind, entries in report.items() if kind != "failed" for e in entries]
    header = ("kind", "name", "plugin", "distribution", "description")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4])
    for failed in report["failed"]:
        print(f"FAILED  {failed['name']} ({failed['distribution']}): {failed['error']}")
    return 0
