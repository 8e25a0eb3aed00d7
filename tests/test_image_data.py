"""Finite data through Hugging Face ``datasets``: digits, faces, image folders, tables, the hub
name (offline), scaling to [-1, 1] and back, flips, labels, held-out split, sharding, bad input.
No test touches the network."""

from __future__ import annotations

import os
import sys
import tempfile

if "datasets" not in sys.modules:  # datasets reads HF_HOME when imported: keep its cache out of ~
    os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="interpgen-test-hf-")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from interpgen.train.batches import batch_stream  # noqa: E402
from interpgen.config import RecipeConverter, RecipeError  # noqa: E402
from interpgen.plugin_manager import registry as default_registry  # noqa: E402
from interpgen.protocols import DataSource  # noqa: E402
from interpgen_plugins.datasets import Digits, Faces, Hub, ImageFolder, Table  # noqa: E402
from interpgen_plugins.datasets.bundled import build_digits, build_faces  # noqa: E402
from interpgen_plugins.datasets.finite import FiniteSource  # noqa: E402
from interpgen_plugins.datasets.hub import build_hub  # noqa: E402
from interpgen_plugins.datasets.image_folder import build_image_folder  # noqa: E402
from interpgen_plugins.datasets.split import heldout_count, split_rows  # noqa: E402
from interpgen_plugins.datasets.table import build_table  # noqa: E402


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def digits():
    return build_digits(Digits())


# -- registration and recipes ----------------------------------------------------------------------

def test_finite_datasets_are_registered_with_their_own_classes():
    reg = default_registry()
    for name, cls in [("digits", Digits), ("faces", Faces), ("image_folder", ImageFolder), ("table", Table),
                      ("hub", Hub)]:
        entry = reg.get("dataset", name)
        assert entry.params is cls and entry.plugin == "datasets"


def test_recipe_tables_structure_and_reject_bad_values():
    conv = RecipeConverter(default_registry())
    d = conv.structure_part("dataset", {"name": "digits", "holdout": 100, "size": 16})
    assert d == Digits(holdout=100.0, size=16)
    assert conv.structure_part("dataset", conv.unstructure_part(d)) == d
    t = conv.structure_part("dataset", {"name": "table", "path": "x.csv", "columns": ["a", "b"]})
    assert t.columns == ("a", "b")
    with pytest.raises(RecipeError, match=r"holdout must be a fraction in \[0, 1\) or a whole number of rows >= 1, got 2\.5"):
        conv.structure_part("dataset", {"name": "digits", "holdout": 2.5})
    with pytest.raises(RecipeError, match="mode must be one of 'RGB', 'L', got 'CMYK'"):
        conv.structure_part("dataset", {"name": "image_folder", "path": "x", "mode": "CMYK"})
    with pytest.raises(RecipeError, match="subset must be one of 'faces', 'all'"):
        conv.structure_part("dataset", {"name": "faces", "subset": "some"})
    with pytest.raises(ValueError, match=r"holdout must be .* got -0\.1"):
        Digits(holdout=-0.1)


# -- held-out split --------------------------------------------------------------------------------

def test_split_sizes_and_determinism():
    assert heldout_count(100, 0.1) == 10 and heldout_count(100, 0.0) == 0
    assert heldout_count(10, 0.01) == 1 and heldout_count(100, 7.0) == 7
    train, held = split_rows(50, 0.2, 3)
    assert len(held) == 10 and len(train) == 40
    assert sorted(torch.cat([train, held]).tolist()) == list(range(50))
    again = split_rows(50, 0.2, 3)
    assert torch.equal(again[1], held) and not torch.equal(split_rows(50, 0.2, 4)[1], held)
    with pytest.raises(ValueError, match=r"the data: holdout = 5 keeps 5 of its 5 rows out of training"):
        split_rows(5, 5, 0)


def test_reference_comes_from_the_heldout_part_and_batches_from_training(digits):
    held, _ = digits.take("heldout")
    train, _ = digits.take("train")
    key = lambda x: {tuple(r.flatten().tolist()) for r in x}  # noqa: E731
    ref = digits.reference(50, generator=gen(0))
    assert key(ref) <= key(held)
    x, _ = next(digits.batches(64, generator=gen(0)))
    assert key(x) <= key(train)
    assert digits.part_size("heldout") == 359 and digits.part_size("train") == 1438


# -- digits and faces ---------------------------------------------------------------------------------

def test_digits_scale_to_unit_interval_and_back(digits):
    from sklearn.datasets import load_digits

    assert isinstance(digits, DataSource)
    assert digits.event_shape == (1, 8, 8) and digits.num_classes == 10
    shift, scale = digits.data_affine()
    assert torch.equal(shift, torch.full((1, 8, 8), 8.0)) and torch.equal(scale, torch.full((1, 8, 8), 8.0))
    x, labels = digits.take("train")
    assert x.min() == -1.0 and x.max() == 1.0
    pixels = (shift + scale * torch.cat([x, digits.take("heldout")[0]])).round().to(torch.int64)
    truth = load_digits()
    got = sorted(map(tuple, pixels.reshape(-1, 64).tolist()))
    assert got == sorted(map(tuple, truth.images.reshape(-1, 64).astype(np.int64).tolist()))
    # each label still travels with its own image
    lookup = {tuple(img.astype(np.int64).ravel()): int(t) for img, t in zip(truth.images, truth.target)}
    back = (shift + scale * x).round().to(torch.int64).reshape(-1, 64)
    assert all(lookup[tuple(r)] == int(c) for r, c in zip(back.tolist(), labels.tolist()))


def test_digits_options():
    unlabelled = build_digits(Digits(labels=False, size=16, holdout=0))
    assert unlabelled.num_classes is None and unlabelled.labels is None
    assert unlabelled.event_shape == (1, 16, 16) and unlabelled.heldout is None
    x = unlabelled.reference(5, generator=gen(0))  # falls back to the training rows
    assert x.shape == (5, 1, 16, 16) and x.min() >= -1 and x.max() <= 1


def test_faces_subset_labels_and_resize():
    faces = build_faces(Faces(size=24))
    assert faces.event_shape == (1, 24, 24) and faces.num_classes is None
    assert len(faces) + faces.part_size("heldout") == 100 and faces.part_size("heldout") == 10
    shift, scale = faces.data_affine()
    assert float(shift.flatten()[0]) == 0.5 and float(scale.flatten()[0]) == 0.5
    both = build_faces(Faces(subset="all"))
    assert both.num_classes == 2 and both.event_shape == (1, 25, 25)
    assert set(torch.cat([both.labels, both.heldout_labels]).tolist()) == {0, 1}


# -- flips and shards --------------------------------------------------------------------------------

def _mirror_source(flip: bool) -> FiniteSource:
    # each image is a ramp 0..W-1 along the width, so a flipped row is recognisable
    ramp = torch.arange(4.0).expand(40, 1, 3, 4).clone()
    ramp[:, 0, 0, 0] = torch.arange(40.0) + 10  # row id in a corner that moves when flipped
    return FiniteSource(ramp, labels=torch.arange(40), num_classes=40, flip=flip)


def test_flip_mirrors_about_half_the_rows_and_never_the_reference():
    x, labels = next(_mirror_source(True).batches(40, generator=gen(0)))
    flipped = x[:, 0, 1, 0] == 3.0
    assert 8 <= int(flipped.sum()) <= 32
    assert torch.equal(x[flipped][:, 0, 1], torch.tensor([3.0, 2.0, 1.0, 0.0]).expand(int(flipped.sum()), 4))
    ids = torch.where(flipped, x[:, 0, 0, 3], x[:, 0, 0, 0]) - 10
    assert torch.equal(ids.long(), labels)  # the label belongs to the flipped image
    ref = _mirror_source(True).reference(40, generator=gen(0))
    assert bool((ref[:, 0, 1, 0] == 0.0).all())
    plain, _ = next(_mirror_source(False).batches(40, generator=gen(0)))
    assert bool((plain[:, 0, 1, 0] == 0.0).all())


@pytest.mark.parametrize("count", [2, 4])
def test_flipped_shards_join_into_the_single_process_batch(count):
    whole = batch_stream(_mirror_source(True), 2 * count, generator=gen(1))
    shards = [batch_stream(_mirror_source(True), 2, generator=gen(1), shard=(i, count)) for i in range(count)]
    for _ in range(25):  # crosses epochs
        full = next(whole)
        parts = [next(s) for s in shards]
        assert torch.equal(torch.cat([p.x1 for p in parts]), full.x1)
        assert torch.equal(torch.cat([p.labels for p in parts]), full.labels)


# -- image folders -------------------------------------------------------------------------------------

def _png(path: Path, size: tuple[int, int], value: int, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = {"RGB": 3, "L": 1}[mode]
    array = np.full((size[1], size[0], channels), value, dtype=np.uint8)
    Image.fromarray(array[..., 0] if channels == 1 else array, mode=mode).save(path)


def test_image_folder_with_class_subfolders(tmp_path):
    for i in range(6):
        _png(tmp_path / "imgs" / "zebra" / f"{i}.png", (5, 4), 10 * i)
        _png(tmp_path / "imgs" / "ant" / f"{i}.png", (5, 4), 255 - i)
    source = default_registry().create("dataset", "image_folder", ImageFolder(path="imgs", holdout=2, flip=True),
                                       root=tmp_path)
    assert source.event_shape == (3, 4, 5) and source.num_classes == 2
    assert source.class_names == ["ant", "zebra"]
    assert source.data.dtype == torch.uint8 and len(source) == 10 and source.part_size("heldout") == 2
    x, labels = source.take("train")
    # ants are bright (>= 250), zebras dark (<= 50): labels follow the sorted subfolder names
    pixels = (x * 127.5 + 127.5).round()[:, 0, 0, 0]
    assert bool(((labels == 0) == (pixels >= 250)).all())
    shift, scale = source.data_affine()
    assert float(shift.flatten()[0]) == 127.5 and float(scale.flatten()[0]) == 127.5
    grey = build_image_folder(ImageFolder(path=str(tmp_path / "imgs"), mode="L", size=8, labels=False), root=None)
    assert grey.event_shape == (1, 8, 8) and grey.num_classes is None


def test_image_folder_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"image folder {tmp_path / 'none'} does not exist"):
        build_image_folder(ImageFolder(path="none"), root=tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images")
    with pytest.raises(ValueError, match=f"image folder {tmp_path / 'empty'} is empty: no files ending in .png"):
        build_image_folder(ImageFolder(path="empty"), root=tmp_path)
    _png(tmp_path / "mixed" / "a.png", (8, 8), 0)
    _png(tmp_path / "mixed" / "b.png", (8, 8), 0)
    _png(tmp_path / "mixed" / "c.png", (6, 7), 0)
    with pytest.raises(ValueError) as info:
        build_image_folder(ImageFolder(path="mixed"), root=tmp_path)
    message = str(info.value)
    assert "images have different sizes" in message
    assert f"{tmp_path / 'mixed' / 'a.png'} is 8x8" in message and f"{tmp_path / 'mixed' / 'c.png'} is 6x7" in message
    assert build_image_folder(ImageFolder(path="mixed", size=4, holdout=0), root=tmp_path).event_shape == (3, 4, 4)
    _png(tmp_path / "half" / "cls" / "a.png", (4, 4), 0)
    _png(tmp_path / "half" / "b.png", (4, 4), 0)
    with pytest.raises(ValueError, match="some images sit in class subfolders"):
        build_image_folder(ImageFolder(path="half"), root=tmp_path)


# -- tables ---------------------------------------------------------------------------------------------

def _write_table(path: Path, columns: dict) -> None:
    import pandas as pd

    frame = pd.DataFrame(columns)
    frame.to_csv(path, index=False) if path.suffix == ".csv" else frame.to_parquet(path)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_table_columns_labels_and_standardisation(tmp_path, suffix):
    rng = np.random.default_rng(0)
    a, b = rng.normal(3.0, 2.0, 40), rng.normal(-1.0, 0.5, 40)
    kind = np.where(np.arange(40) % 2 == 0, "odd", "even")
    _write_table(tmp_path / f"t{suffix}", {"a": a, "b": b, "kind": kind, "c": rng.normal(size=40)})
    source = build_table(Table(path=f"t{suffix}", columns=("b", "a"), label_column="kind", holdout=0), root=tmp_path)
    assert source.event_shape == (2,) and source.num_classes == 2 and source.class_names == ["even", "odd"]
    shift, scale = source.data_affine()
    np.testing.assert_allclose(shift.numpy(), [b.mean(), a.mean()], rtol=1e-6)
    np.testing.assert_allclose(scale.numpy(), [b.std(), a.std()], rtol=1e-6)
    back = (shift + scale * source.data).double().numpy()
    np.testing.assert_allclose(back, np.stack([b, a], axis=1), rtol=1e-5, atol=1e-5)
    assert source.labels.tolist() == [1 if k == "odd" else 0 for k in kind]


def test_table_bad_input_names_file_row_and_column(tmp_path):
    def error(name: str, **params) -> str:
        with pytest.raises((ValueError, FileNotFoundError)) as info:
            build_table(Table(path=name, **params), root=tmp_path)
        assert str(tmp_path / name) in str(info.value)
        return str(info.value)

    assert "does not exist" in error("missing.csv")
    (tmp_path / "empty.csv").write_text("a,b\n")
    assert "the table is empty" in error("empty.csv")
    _write_table(tmp_path / "nan.csv", {"a": [1.0, 2.0, 3.0, 4.0], "b": [1.0, 2.0, np.nan, 4.0]})
    assert "1 of 4 rows hold NaN or inf values (rows 2); the first is nan at row 2, column 'b'" in error("nan.csv")
    _write_table(tmp_path / "text.csv", {"a": [1.0, 2.0, 3.0], "name": ["x", "y", "z"]})
    assert "column 'name' is not numeric: row 0 holds 'x' (3 non-numeric row(s): 0, 1, 2;" in error("text.csv")
    # one text cell makes the reader type the whole column as text: the error still names that cell
    values = [float(i) for i in range(50)]
    _write_table(tmp_path / "cell.csv", {"a": values, "c": [*values[:20], "oops", *values[21:]]})
    assert "column 'c' is not numeric: row 20 holds 'oops' (1 non-numeric row(s): 20;" in error("cell.csv")
    assert "no column named 'nope'; the table has: a, name" in error("text.csv", columns=("a", "nope"))
    _write_table(tmp_path / "labels.csv", {"a": [1.0, 2.0, 3.0, 4.0], "y": [0, 1, 5, 1]})
    assert "labels must be < num_classes = 3, found 5 (row 2)" in error("labels.csv", label_column="y", num_classes=3)
    _write_table(tmp_path / "neg.csv", {"a": [1.0, 2.0, 3.0, 4.0], "y": [0, -1, 1, 1]})
    assert "labels must be >= 0, found -1 (row 1)" in error("neg.csv", label_column="y")
    (tmp_path / "t.txt").write_text("a\n1\n")
    assert "expected a .csv or .parquet file, got suffix '.txt'" in error("t.txt")


# -- arrays of images and the hub ------------------------------------------------------------------------

def test_array_files_report_nan_row_and_feature(tmp_path):
    from interpgen_plugins.datasets.array_file import ArrayFile, build_array

    images = np.random.default_rng(0).normal(size=(6, 1, 2, 2))
    images[4, 0, 1, 0] = np.nan
    np.save(tmp_path / "img.npy", images)
    with pytest.raises(ValueError, match=r"rows 4\); the first is nan at row 4, feature \(0, 1, 0\)"):
        build_array(ArrayFile(path="img.npy"), root=tmp_path)
    np.save(tmp_path / "empty.npy", np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"empty\.npy: the data set is empty \(0 rows"):
        build_array(ArrayFile(path="empty.npy"), root=tmp_path)


def test_hub_fails_clearly_offline():
    with pytest.raises(ValueError, match=r"hub data set 'nobody/no-such-data' needs network access; HF_HUB_OFFLINE"):
        build_hub(Hub(path="nobody/no-such-data"))


def test_finite_source_rejects_mismatched_parts():
    with pytest.raises(ValueError, match=r"held-out rows have event shape \(3,\), the training rows \(2,\)"):
        FiniteSource(torch.zeros(4, 2), heldout=torch.zeros(2, 3))
    with pytest.raises(ValueError, match="give labels for both"):
        FiniteSource(torch.zeros(4, 2), labels=torch.zeros(4, dtype=torch.long), heldout=torch.zeros(2, 2))
