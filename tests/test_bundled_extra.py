"""The bundled image sets need an extra (issue 13, item 10): ``digits`` needs scikit-learn and
``faces`` scikit-image, which the ``data`` extra installs; without them the data set is refused
with one message naming the package and the extra, and the command line exits 2."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

import interpgen as ig
from interpgen.cli import main
from interpgen_plugins.datasets.bundled import DATA_EXTRA, MissingExtra

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name, modules, package", [
    ("digits", ("sklearn", "sklearn.datasets"), "scikit-learn"),
    ("faces", ("skimage", "skimage.data"), "scikit-image"),
])
def test_a_missing_package_names_the_extra(monkeypatch, registry, name, modules, package):
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    with pytest.raises(MissingExtra, match=rf"data set '{name}' needs {package}, which is not installed .*"
                                           rf"pip install 'interpgen\[data\]' \(or pip install {package}\)"):
        registry.create("dataset", name, ig.part("dataset", name, registry))


def test_the_command_line_reports_the_missing_extra_without_a_traceback(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    code = main(["train", str(ROOT / "recipes" / "images" / "digits.toml"), "--output", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "error: data set 'digits' needs scikit-learn" in err and DATA_EXTRA in err


def test_the_data_extra_installs_both_and_the_readme_says_so():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {r.split(">=")[0] for r in extras["data"]} == {"scikit-learn", "scikit-image"}
    assert "interpgen[data]" in extras["dev"] and "interpgen[data]" in extras["examples"]
    readme = (ROOT / "README.md").read_text()
    assert "interpgen[data]" in readme
    data_doc = (ROOT / "docs" / "data.md").read_text()
    assert "interpgen[data]" in data_doc
