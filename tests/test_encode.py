"""``interpgen encode`` (plugins/encode): a data set encoded by a frozen autoencoder into Parquet
shards that the ``shards`` data set streams; the latents are the encoder's means, every row once,
labels kept, the held-out part kept apart; bad input is one message and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

import interpgen as ig
from interpgen.cli import main
from interpgen.train.batches import batch_stream

TRAIN = ig.Train(steps=2, batch_size=16, log_every=2, checkpoint_every=2, sample_every=0, pictures=False)


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory):
    """A run on digits with a frozen conv autoencoder (latents (2, 4, 4))."""
    run = tmp_path_factory.mktemp("encode") / "run"
    pipe = ig.Pipeline(data=ig.part("dataset", "digits", holdout=0.25),
                       autoencoder=ig.part("autoencoder", "conv", channels=8, latent_channels=2),
                       network=ig.part("network", "mlp", hidden=16, depth=1))
    pipe.fit(TRAIN, run_dir=run, progress=False)
    return run, pipe


def _rows(x: torch.Tensor, labels: torch.Tensor) -> list[tuple]:
    return sorted((int(y), *(round(v, 4) for v in row)) for y, row in zip(labels.tolist(), x.flatten(1).tolist()))


def test_encode_writes_the_latent_means_of_every_row(ae_run, tmp_path, capsys):
    run, pipe = ae_run
    out = tmp_path / "latents"
    assert main(["encode", str(run), "--output", str(out), "--rows-per-group", "100", "--rows-per-file", "700"]) == 0
    printed = capsys.readouterr().out
    assert f'path = "{out / "train"}"' in printed and f'heldout_path = "{out / "heldout"}"' in printed
    info = json.loads((out / "encode.json").read_text())
    assert info["latent_shape"] == [2, 4, 4] and info["parts"]["train"]["rows"] == 1348
    assert info["parts"]["heldout"]["rows"] == 449 and info["parts"]["train"]["files"] == 2
    meta = json.loads(pq.ParquetFile(out / "train" / "part-00000.parquet").schema_arrow.metadata[b"interpgen"])
    assert meta["event_shape"] == [2, 4, 4] and meta["num_classes"] == 10 and meta["noise_scale"] > 0
    source = ig.registry().create("dataset", "shards", ig.part(
        "dataset", "shards", path=str(out / "train"), heldout_path=str(out / "heldout"), label_column="label"))
    assert source.event_shape == (2, 4, 4) and source.num_classes == 10 and source.data_affine() is None
    data = pipe.data
    for part in ("train", "heldout"):
        x, labels = data.take(part)
        with torch.no_grad():
            mean, _ = pipe.autoencoder.eval().encode(x)
        z, z_labels = source.take(part)
        assert _rows(z, z_labels) == _rows(mean, labels)  # the same rows, in another order
    noisy = [ig.registry().create("dataset", "shards", ig.part(
        "dataset", "shards", path=str(out / "train"), label_column="label", encoder_noise=True, num_workers=w))
        for w in (0, 1)]
    plain = next(batch_stream(source, 64, generator=torch.Generator().manual_seed(0))).x1
    drawn = [next(batch_stream(s, 64, generator=torch.Generator().manual_seed(0))).x1 for s in noisy]
    assert torch.equal(drawn[0], drawn[1])  # the noise belongs to the stream position, not the worker
    xi = (drawn[0] - plain) / meta["noise_scale"]
    assert abs(float(xi.mean())) < 0.1 and 0.9 < float(xi.std()) < 1.1
    first = source.take("train", torch.arange(20))[1]
    assert not torch.equal(first, data.take("train", torch.arange(20))[1])  # written shuffled


def test_encode_from_a_recipe_file_and_training_on_the_shards(ae_run, tmp_path):
    run, _ = ae_run
    torch.save({"autoencoder": ig.Pipeline.load(run).autoencoder.state_dict()}, tmp_path / "ae.pt")
    (tmp_path / "ae.toml").write_text('[data]\nname = "digits"\nholdout = 0.25\n'
                                      '[autoencoder]\nname = "pretrained"\ncheckpoint = "ae.pt"\n'
                                      'autoencoder = { name = "conv", channels = 8, latent_channels = 2 }\n')
    assert main(["encode", str(tmp_path / "ae.toml"), "--output", str(tmp_path / "z"), "--seed", "3"]) == 0
    pipe = ig.Pipeline(data=ig.part("dataset", "shards", path=str(tmp_path / "z" / "train"),
                                    heldout_path=str(tmp_path / "z" / "heldout"), label_column="label",
                                    num_workers=1),
                       network=ig.part("network", "mlp", hidden=16, depth=1))
    losses = pipe.fit(TRAIN, progress=False)
    assert len(losses) == 1 and torch.isfinite(torch.tensor(losses)).all()
    latents = pipe.sample(3).x
    assert latents.shape == (3, 2, 4, 4)
    source = ig.Pipeline.load(run)  # the run the autoencoder came from decodes the samples (docs/data.md)
    assert source.to_data_space(source.decode(latents)).shape == (3, 1, 8, 8)


def test_encode_bad_input_is_one_message(ae_run, tmp_path, capsys):
    run, _ = ae_run
    assert main(["encode", str(tmp_path / "nothing"), "--output", str(tmp_path / "o")]) == 2
    assert "is neither a run directory nor a recipe file" in capsys.readouterr().err
    (tmp_path / "exists").mkdir()
    assert main(["encode", str(run), "--output", str(tmp_path / "exists")]) == 2
    assert "exists; choose another --output or pass --overwrite" in capsys.readouterr().err
    (tmp_path / "moons.toml").write_text('[data]\nname = "moons"\n')
    assert main(["encode", str(tmp_path / "moons.toml"), "--output", str(tmp_path / "o")]) == 2
    assert "encode needs a finite data set with take()" in capsys.readouterr().err
    assert main(["encode", str(run), "--output", str(tmp_path / "o"), "--batch-size", "0"]) == 2
    assert "--batch-size must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".o.encoding"))


def test_the_identity_autoencoder_writes_model_space_rows_with_the_data_affine(tmp_path):
    (tmp_path / "faces.toml").write_text('[data]\nname = "faces"\nholdout = 10\n')
    assert main(["encode", str(tmp_path / "faces.toml"), "--output", str(tmp_path / "f")]) == 0
    source = ig.registry().create("dataset", "shards", ig.part(
        "dataset", "shards", path=str(tmp_path / "f" / "train"), heldout_path=str(tmp_path / "f" / "heldout")))
    faces = ig.registry().create("dataset", "faces", ig.part("dataset", "faces", holdout=10))
    for got, want in zip(source.data_affine(), faces.data_affine()):
        assert torch.equal(got, want)
    assert source.part_size("train") == 90 and source.part_size("heldout") == 10
    assert sorted(map(tuple, source.take("heldout")[0].flatten(1).tolist())) == \
        sorted(map(tuple, faces.take("heldout")[0].flatten(1).tolist()))


def test_the_streamed_faces_recipe_trains_on_the_encoded_faces(tmp_path, registry):
    import tomllib

    from interpgen.recipe import dump_recipe, load_recipe, structure_recipe

    recipes = Path(__file__).resolve().parents[1] / "recipes"
    out = tmp_path / "faces_shards"
    assert main(["encode", str(recipes / "images" / "faces.toml"), "--output", str(out)]) == 0
    assert main(["train", str(recipes / "images" / "faces_streamed.toml"), "--output", str(tmp_path / "run"),
                 "--set", f'data.path="{out / "train"}"', "--set", f'data.heldout_path="{out / "heldout"}"',
                 "--set", "train.steps=2", "--set", "train.batch_size=8", "--set", "train.pictures=false",
                 "--set", "train.log_every=1"]) == 0
    assert ig.Pipeline.load(tmp_path / "run").event_shape == (1, 24, 24)
    for name in ("images/faces_streamed", "images/imagenet64", "lsi/imagenet64_lsi"):
        recipe = load_recipe(recipes / f"{name}.toml", registry)
        assert structure_recipe(tomllib.loads(dump_recipe(recipe, registry)), registry) == recipe
        assert recipe.data.num_workers in (2, 8)
