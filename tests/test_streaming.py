"""Streamed data (plugins/datasets/stream_*.py, shards.py; docs/data.md "Streaming"): Parquet and
Arrow shards and image folders read while training, the held-out split, exact resume, the same
data for any number of processes and DataLoader workers, and errors that name the file."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

import interpgen as ig
from interpgen.train.batches import batch_stream
from interpgen_plugins.datasets.split import heldout_count
from interpgen_plugins.datasets.stream_order import Order
from launch import launch_two


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def build(**params):
    return ig.registry().create("dataset", params.get("name", "shards"),
                                ig.part("dataset", params.pop("name", "shards"), **params))


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def digit_pixels():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images * 255 / 16).round().astype(np.uint8)[:600], bunch.target[:600].astype(np.int64)


@pytest.fixture(scope="module")
def png_shards(tmp_path_factory, digit_pixels):
    """600 digits as PNG bytes in 3 Parquet files, row groups of 64 rows."""
    folder = tmp_path_factory.mktemp("png_shards")
    pixels, labels = digit_pixels
    for f in range(3):
        part = slice(200 * f, 200 * (f + 1))
        table = pa.table({"image": pa.array([_png(p) for p in pixels[part]], pa.binary()),
                          "label": pa.array(labels[part])})
        pq.write_table(table, folder / f"part-{f}.parquet", row_group_size=64)
    return folder


@pytest.fixture(scope="module")
def id_shards(tmp_path_factory):
    """Arrays whose first number is the row's id: 500 rows in 2 files of uneven row groups."""
    folder = tmp_path_factory.mktemp("id_shards")
    ids = np.arange(500, dtype=np.float32)
    x = np.stack([ids, ids * 2, -ids], axis=1)
    for f, (a, b, group) in enumerate([(0, 230, 50), (230, 500, 37)]):
        column = pa.FixedSizeListArray.from_arrays(pa.array(x[a:b].reshape(-1)), 3)
        pq.write_table(pa.table({"x": column}), folder / f"ids-{f}.parquet", row_group_size=group)
    return folder


def _ids(x: torch.Tensor) -> list[int]:
    return x[:, 0].round().to(torch.int64).tolist()


def test_order_holds_out_exact_counts_and_serves_each_training_row_once_per_epoch():
    sizes = [5, 7, 3, 10, 1, 40, 2]
    for holdout in (0, 0.2, 9):
        order = Order(sizes, holdout=holdout, split_seed=3, window=12, where="test")
        assert order.heldout_rows == heldout_count(sum(sizes), holdout) and order.held.sum() == order.heldout_rows
        held = set(zip(*(a.tolist() for a in order.part_rows("heldout", np.arange(order.heldout_rows)))))
        for epoch in range(2):
            positions = np.arange(epoch * order.train_rows, (epoch + 1) * order.train_rows)
            units, rows, _ = order.locate(5, positions)
            served = list(zip(units.tolist(), rows.tolist()))
            assert len(set(served)) == order.train_rows and not set(served) & held
        assert len(held) == order.heldout_rows
    assert Order(sizes, holdout=67, split_seed=0, window=4, where="test").train_rows == 1
    with pytest.raises(ValueError, match="test: holdout = 68 keeps 68 of its 68 rows out of training"):
        Order(sizes, holdout=68, split_seed=0, window=4, where="test")


def test_parquet_shards_train_heldout_split_and_epochs(id_shards):
    source = build(path=str(id_shards), shuffle_window=64, holdout=0.1)
    assert source.event_shape == (3,) and source.num_classes is None and source.data_affine() is None
    assert len(source) == 450 and source.part_size("heldout") == 50
    held = set(_ids(source.take("heldout")[0]))
    trained = set(_ids(source.take("train")[0]))
    assert len(held) == 50 and not held & trained and held | trained == set(range(500))
    stream = batch_stream(source, 25, generator=gen(1))
    epoch = [i for _ in range(18) for i in _ids(next(stream).x1)]
    assert sorted(epoch) == sorted(trained)  # one epoch: every training row once
    assert epoch != sorted(epoch)  # shuffled
    ref = _ids(source.reference(50, generator=gen(0)))
    assert set(ref) == held  # distinct held-out rows


def test_state_resumes_exactly_and_other_seeds_differ(png_shards):
    source = build(path=str(png_shards), label_column="label", num_classes=10, mode="L", shuffle_window=100)
    whole = batch_stream(source, 16, generator=gen(7))
    reference = [next(whole) for _ in range(30)]  # crosses an epoch (540 training rows)
    first = batch_stream(source, 16, generator=gen(7))
    for _ in range(11):
        next(first)
    state = first.state_dict()
    assert state["rows"] == 11 * 16 and state["seed"] == 7
    resumed = batch_stream(source, 16, generator=gen(7))
    resumed.load_state_dict(state)
    for want in reference[11:]:
        got = next(resumed)
        assert torch.equal(got.x1, want.x1) and torch.equal(got.labels, want.labels)
    assert batch_stream(source, 16, generator=gen(7)).state_at(11) == state
    other = next(batch_stream(source, 16, generator=gen(8)))
    assert not torch.equal(other.x1, reference[0].x1)
    with pytest.raises(ValueError, match="saved with seed 7, this stream has seed 8"):
        batch_stream(source, 16, generator=gen(8)).load_state_dict(state)
    with pytest.raises(ValueError, match="not a whole number of global batches of 32 rows"):
        batch_stream(source, 32, generator=gen(7)).load_state_dict(state)
    changed = build(path=str(png_shards), label_column="label", num_classes=10, mode="L", shuffle_window=99)
    with pytest.raises(ValueError, match="the data set is not the one the state was saved with"):
        batch_stream(changed, 16, generator=gen(7)).load_state_dict(state)


@pytest.mark.parametrize("workers", [0, 2])
def test_processes_and_workers_do_not_change_the_data(png_shards, workers):
    params = dict(path=str(png_shards), label_column="label", num_classes=10, mode="L", shuffle_window=100, flip=True)
    single = batch_stream(build(**params), 12, generator=gen(0))
    split = build(**params, num_workers=workers)
    shards = [batch_stream(split, 12 // n, generator=gen(0), shard=(i, n)) for n in (2, 3) for i in range(n)]
    for step in range(8):
        want = next(single)
        two, three = [next(s) for s in shards[:2]], [next(s) for s in shards[2:]]
        for parts in (two, three):
            assert torch.equal(torch.cat([p.x1 for p in parts]), want.x1)
            assert torch.equal(torch.cat([p.labels for p in parts]), want.labels)
        if step == 3 and workers:  # a state saved with 3 processes resumes a single process
            state = shards[2].state_at(4)
    resumed = batch_stream(build(**params), 12, generator=gen(0))
    if workers:
        resumed.load_state_dict(state)
        again = batch_stream(build(**params), 12, generator=gen(0))
        for _ in range(4):
            next(again)
        assert torch.equal(next(resumed).x1, next(again).x1)
    for s in shards:
        s.close()


def test_flips_mirror_about_half_the_rows_and_never_take(png_shards):
    plain = build(path=str(png_shards), mode="L", holdout=0)
    flipped = build(path=str(png_shards), mode="L", holdout=0, flip=True)
    a, b = next(batch_stream(plain, 200, generator=gen(2))).x1, next(batch_stream(flipped, 200, generator=gen(2))).x1
    same = (a == b).flatten(1).all(1)
    mirrored = (a.flip(-1) == b).flatten(1).all(1)
    assert bool((same | mirrored).all()) and 60 < int((mirrored & ~same).sum()) < 140
    assert torch.equal(plain.take("train", torch.arange(5))[0], flipped.take("train", torch.arange(5))[0])


def test_pixels_and_labels_match_the_images(png_shards, digit_pixels):
    pixels, labels = digit_pixels
    source = build(path=str(png_shards), label_column="label", num_classes=10, mode="L", holdout=0)
    x, y = source.take("train")  # the training part, in file order
    assert torch.equal(y, torch.from_numpy(labels))
    shift, scale = source.data_affine()
    assert torch.allclose(shift + scale * x, torch.from_numpy(pixels).float()[:, None], atol=1e-4)
    rgb = build(path=str(png_shards), size=4, holdout=0)
    assert rgb.event_shape == (3, 4, 4) and rgb.num_classes is None


def test_datasets_arrow_and_image_struct_shards(tmp_path, digit_pixels):
    import datasets

    pixels, labels = digit_pixels
    features = datasets.Features({"image": datasets.Image(),
                                  "label": datasets.ClassLabel(names=[str(i) for i in range(10)])})
    table = datasets.Dataset.from_dict({"image": [Image.fromarray(p) for p in pixels[:250]],
                                        "label": labels[:250].tolist()}, features=features)
    table.save_to_disk(str(tmp_path / "saved"), max_shard_size="20KB")  # Arrow stream files
    table.to_parquet(str(tmp_path / "hf.parquet"))  # datasets.Image structs
    for path in (tmp_path / "saved", tmp_path / "hf.parquet"):
        source = build(path=str(path), label_column="label", mode="L", holdout=0)
        assert source.num_classes == 10  # from the ClassLabel metadata
        x, y = source.take("train")
        assert torch.equal(y, torch.from_numpy(labels[:250]))
        assert torch.allclose(x * 127.5 + 127.5, torch.from_numpy(pixels[:250]).float()[:, None], atol=1e-4)
    assert len(list((tmp_path / "saved").glob("*.arrow"))) > 1


def test_arrow_ipc_file_format_shards(tmp_path):
    x = np.arange(60, dtype=np.float64).reshape(20, 3)
    table = pa.table({"x": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), 3),
                      "y": pa.array(np.arange(20) % 4)})
    with pa.ipc.new_file(str(tmp_path / "a.arrow"), table.schema) as writer:
        for batch in table.to_batches(max_chunksize=6):
            writer.write_batch(batch)
    source = build(path=str(tmp_path / "a.arrow"), label_column="y", num_classes=4, holdout=0, shuffle_window=5)
    rows, labels = source.take("train")
    assert torch.equal(rows, torch.from_numpy(x).float()) and torch.equal(labels, torch.arange(20) % 4)
    stream = batch_stream(source, 10, generator=gen(1))
    assert sorted(_ids(torch.cat([next(stream).x1 for _ in range(2)]))) == list(range(0, 60, 3))


def test_heldout_path_and_column_choice(id_shards, tmp_path):
    single = tmp_path / "held.parquet"
    pq.write_table(pa.table({"x": pa.FixedSizeListArray.from_arrays(pa.array(np.full(30, 7.0, np.float32)), 3)}),
                   single)
    source = build(path=str(id_shards), heldout_path=str(single))
    assert len(source) == 500 and source.part_size("heldout") == 10 and source.has_heldout
    assert _ids(source.reference(10, generator=gen(0))) == [7] * 10
    with pytest.raises(ValueError, match="set either heldout_path .* or holdout"):
        build(path=str(id_shards), heldout_path=str(single), holdout=0.2)
    with pytest.raises(ValueError, match=r"cannot have shape \(2, 2\)"):
        build(path=str(id_shards), shape=[2, 2])
    assert build(path=str(id_shards), shape=[3, 1], holdout=0).event_shape == (3, 1)
    with pytest.raises(ValueError, match="encoder_noise needs the noise scale in the shards' interpgen metadata"):
        build(path=str(id_shards), encoder_noise=True)


def test_streamed_image_folder_matches_the_in_memory_one(tmp_path, digit_pixels):
    pixels, labels = digit_pixels
    for i in range(40):
        path = tmp_path / "folder" / f"class_{labels[i]}" / f"{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels[i]).save(path)
    memory = build(name="image_folder", path=str(tmp_path / "folder"), mode="L", holdout=0)
    streamed = build(name="image_folder", path=str(tmp_path / "folder"), mode="L", holdout=0, streaming=True,
                     num_workers=1)
    assert streamed.class_names == memory.class_names and streamed.num_classes == memory.num_classes
    x_mem, y_mem = memory.take("train")
    x, y = streamed.take("train")  # the same rows (a unit interleaves the sorted files)
    assert sorted(zip(y.tolist(), map(tuple, x.flatten(1).tolist()))) == \
        sorted(zip(y_mem.tolist(), map(tuple, x_mem.flatten(1).tolist())))
    assert next(batch_stream(streamed, 8, generator=gen(0))).x1.shape == (8, 1, 8, 8)
    with pytest.raises(ValueError, match="num_workers applies with streaming = true"):
        build(name="image_folder", path=str(tmp_path / "folder"), num_workers=2)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_corrupt_image_is_one_error_naming_the_file(tmp_path, workers):
    for i in range(12):
        Image.fromarray(np.full((6, 6), i * 20, np.uint8)).save(tmp_path / f"{i:02d}.png")
    (tmp_path / "05.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    source = build(name="image_folder", path=str(tmp_path), mode="L", holdout=0, streaming=True,
                   num_workers=workers)
    stream = batch_stream(source, 12, generator=gen(0))
    with pytest.raises(ValueError) as info:
        next(stream)
    assert str(info.value).startswith(f"cannot read image {tmp_path / '05.png'}: UnidentifiedImageError")
    assert "Traceback" not in str(info.value)


def test_a_bad_parquet_shard_is_one_error_naming_it(tmp_path, id_shards):
    (tmp_path / "a.parquet").write_bytes((id_shards / "ids-0.parquet").read_bytes())
    (tmp_path / "b.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ValueError, match=f"{tmp_path / 'b.parquet'}: cannot read the parquet shard"):
        build(path=str(tmp_path))
    (tmp_path / "b.parquet").unlink()
    data = bytearray((id_shards / "ids-0.parquet").read_bytes())
    data[200:1200] = b"\xff" * 1000  # inside the column chunks; the footer stays readable
    (tmp_path / "a.parquet").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"cannot read shard {tmp_path / 'a.parquet'} \(row group \d+\)"):
        build(path=str(tmp_path), holdout=0).take("train")  # at build (its first row) or when read
    (tmp_path / "none").mkdir()
    with pytest.raises(ValueError, match="holds no .parquet or .arrow file"):
        build(path=str(tmp_path / "none"))
    with pytest.raises(FileNotFoundError, match="shard path .* does not exist"):
        build(path=str(tmp_path / "missing"))


def test_labels_need_a_class_count_and_must_fit_it(png_shards):
    with pytest.raises(ValueError, match="set num_classes"):
        build(path=str(png_shards), label_column="label")
    source = build(path=str(png_shards), label_column="label", num_classes=5, mode="L", holdout=0)
    with pytest.raises(ValueError, match=r"row \d+\): label \d is outside \[0, 5\)"):
        source.take("train")
    with pytest.raises(ValueError, match="no column named 'nope'"):
        build(path=str(png_shards), label_column="nope")


def test_training_on_a_stream_resumes_to_the_same_weights(png_shards, tmp_path):
    def pipe():
        return ig.Pipeline(data=ig.part("dataset", "shards", path=str(png_shards), label_column="label",
                                        num_classes=10, mode="L", shuffle_window=100, num_workers=1, flip=True),
                           network=ig.part("network", "mlp", hidden=16, depth=1))

    def train(steps):
        return ig.Train(steps=steps, batch_size=16, log_every=2, checkpoint_every=3, sample_every=0, pictures=False,
                        ema_decay=0.5)

    whole = pipe()
    whole.fit(train(6), run_dir=tmp_path / "whole", progress=False)
    first = pipe()
    first.fit(train(3), run_dir=tmp_path / "split", progress=False)
    second = pipe()
    second.fit(train(6), run_dir=tmp_path / "split", progress=False, resume=True)
    for a, b in zip(whole.network.parameters(), second.network.parameters()):
        assert torch.equal(a, b)


def test_a_corrupt_image_in_an_image_folder_fails_train_with_one_line(tmp_path, capsys):
    from interpgen.cli import main

    for i in range(8):
        Image.fromarray(np.full((6, 6), i * 30, np.uint8)).save(tmp_path / f"{i}.png")
    (tmp_path / "3.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (tmp_path / "r.toml").write_text('[data]\nname = "image_folder"\npath = "."\nmode = "L"\n'
                                     '[train]\nsteps = 2\nbatch_size = 4\n')
    for streaming in ("false", "true"):
        code = main(["train", str(tmp_path / "r.toml"), "--output", str(tmp_path / f"run_{streaming}"),
                     "--set", f"data.streaming={streaming}", "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
        assert f"cannot read image {tmp_path / '3.png'}: UnidentifiedImageError" in err


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("accelerate") is None, reason="the accelerate command is not installed")
def test_two_processes_with_workers_train_in_sync(png_shards, tmp_path):
    (tmp_path / "r.toml").write_text(f'[data]\nname = "shards"\npath = "{png_shards}"\nmode = "L"\nnum_workers = 1\n'
                                     'flip = true\n[network]\nname = "mlp"\nhidden = 16\ndepth = 1\n'
                                     '[train]\nsteps = 6\nbatch_size = 8\nlog_every = 3\ncheckpoint_every = 6\n'
                                     'sample_every = 0\npictures = false\nnum_processes = 2\n')
    done = launch_two(tmp_path / "r.toml", tmp_path / "run")
    assert done.returncode == 0, done.stderr[-3000:]
    processes = json.loads((tmp_path / "run" / "processes.json").read_text())
    assert processes["world_size"] == 2 and len(set(processes["weights_sha256"])) == 1
