"""docs/parts.md holds the parts tables generated from the registry (``interpgen plugins --markdown``)
for the built-in plugins alone; this test regenerates them and fails when the page differs.

Regenerate the page (third-party plugins switched off, the block between the markers replaced):

    python tests/test_docs_parts.py
"""

from __future__ import annotations

import difflib
import importlib.metadata
import os
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "parts.md"
FIXTURE = ROOT / "tests" / "fixtures" / "interpgen-power-plugin" / "pyproject.toml"
BEGIN, END = "<!-- parts:begin -->", "<!-- parts:end -->"
REGENERATE = "python tests/test_docs_parts.py"


def third_party_entry_points() -> list[str]:
    """What to put in ``INTERPGEN_DISABLE_PLUGINS``: the fixture package's entry-point names (read from
    its pyproject.toml), and ``distribution:name`` for every other installed distribution's entry
    points, so that only the interpgen distribution's own plugins load."""
    names = set(tomllib.loads(FIXTURE.read_text(encoding="utf-8"))["project"]["entry-points"]["interpgen"])
    names |= {f"{ep.dist.name}:{ep.name}" for ep in importlib.metadata.entry_points(group="interpgen")
              if ep.dist is not None and ep.dist.name != "interpgen"}
    return sorted(names)


def generated() -> str:
    """What ``interpgen plugins --markdown`` prints for the plugins currently loaded."""
    from interpgen.cli import plugins_markdown

    return plugins_markdown()


def block(text: str) -> str:
    """The text between the markers of docs/parts.md (without the marker lines)."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise AssertionError(f"{PAGE} must hold {BEGIN} and then {END}, once each")
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"


def replace_block(text: str, tables: str) -> str:
    head, rest = text.split(BEGIN, 1)
    return f"{head}{BEGIN}\n{tables.rstrip()}\n{END}{rest.split(END, 1)[1]}"


@pytest.fixture
def builtin_plugins(monkeypatch):
    """The process-wide plugins reloaded with third-party entry points disabled; restored after."""
    import interpgen

    monkeypatch.setenv("INTERPGEN_DISABLE_PLUGINS", ",".join(third_party_entry_points()))
    loaded = interpgen.reload_plugins()
    yield loaded
    monkeypatch.undo()
    interpgen.reload_plugins()


def test_fixture_entry_point_is_disabled(builtin_plugins):
    assert third_party_entry_points()  # at least the fixture's own entry point, read from its pyproject.toml
    assert {e.distribution for e in builtin_plugins.registry} == {"interpgen"}
    assert not builtin_plugins.failed, [f"{f.name}: {f.error}" for f in builtin_plugins.failed]


def test_parts_page_matches_the_registry(builtin_plugins, capsys):
    from interpgen.cli import main

    assert main(["plugins", "--markdown"]) == 0
    printed = capsys.readouterr().out
    assert printed == generated()
    on_page = block(PAGE.read_text(encoding="utf-8"))
    if on_page != printed:
        diff = "".join(difflib.unified_diff(on_page.splitlines(True), printed.splitlines(True),
                                            "docs/parts.md", "interpgen plugins --markdown", n=1))
        pytest.fail(f"docs/parts.md is out of date with the registry: run `{REGENERATE}` "
                    f"(it writes the output of `interpgen plugins --markdown` between the markers)\n{diff}")


def test_every_part_and_command_is_on_the_page(builtin_plugins):
    on_page = block(PAGE.read_text(encoding="utf-8"))
    registry = builtin_plugins.registry
    for kind in registry.kinds():
        assert f"### `{kind}`" in on_page, kind
        for name in registry.names(kind):
            assert f"| `{name}` |" in on_page, f"{kind} {name}"
    for name in registry.commands():
        assert f"| `interpgen {name}` |" in on_page, name


def test_markdown_escapes_pipes_and_keeps_one_row_per_part(builtin_plugins):
    text = generated()
    registry = builtin_plugins.registry
    rows = [line for line in text.splitlines() if line.startswith("| `") and not line.startswith("| `interpgen ")]
    assert len(rows) == sum(len(registry.names(kind)) for kind in registry.kinds())
    for row in rows:  # three cells: an unescaped | inside a description would make more
        cells = row.replace("\\|", "").strip("|").split("|")
        assert len(cells) == 3, row


def _write() -> int:
    os.environ["INTERPGEN_DISABLE_PLUGINS"] = ",".join(third_party_entry_points())
    import interpgen

    loaded = interpgen.reload_plugins()
    if loaded.failed:
        print("error: plugins failed to load: " + "; ".join(f"{f.name}: {f.error}" for f in loaded.failed),
              file=sys.stderr)
        return 2
    text = PAGE.read_text(encoding="utf-8")
    block(text)  # the markers are there
    new = replace_block(text, generated())
    if new != text:
        PAGE.write_text(new, encoding="utf-8")
    print(f"{PAGE.relative_to(ROOT)}: {'updated' if new != text else 'already up to date'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_write())
