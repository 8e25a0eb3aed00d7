"""The datasets plugin: synthetic 2-D targets (plugins/datasets/shapes.py, synthetic.py) and
the user's own array files (array_file.py, finite.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from interpgen.config import RecipeConverter, RecipeError
from interpgen.plugin_manager import registry as default_registry
from interpgen.protocols import DataSource
from interpgen_plugins.datasets import shapes
from interpgen_plugins.datasets.array_file import ArrayFile, build_array
from interpgen_plugins.datasets.synthetic import (
    SYNTHETIC_TARGETS, Circles, GaussianTarget, Moons, build_synthetic,
)

SYNTHETIC = sorted(SYNTHETIC_TARGETS)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def angle_gap(a: torch.Tensor, b: torch.Tensor | float) -> torch.Tensor:
    """Distance between angles on the circle, in [0, pi]."""
    d = torch.remainder(a - b, 2 * math.pi)
    return torch.minimum(d, 2 * math.pi - d)


# -- registration -----------------------------------------------------------------------------

def test_every_dataset_is_registered_by_the_plugin():
    reg = default_registry()
    assert set(SYNTHETIC) | {"array"} <= set(reg.names("dataset"))
    for name in SYNTHETIC:
        assert reg.get("dataset", name).plugin == "datasets"


@pytest.mark.parametrize("name", SYNTHETIC)
def test_synthetic_source_follows_the_protocol(name):
    source = default_registry().create("dataset", name, root=Path("/nowhere"), unknown_key=1)
    assert isinstance(source, DataSource)
    assert source.event_shape == (2,)
    assert source.num_classes is None
    assert source.data_affine() is None
    x, labels = next(source.batches(64, generator=gen(0)))
    assert x.shape == (64, 2) and x.dtype == torch.float32 and labels is None
    assert source.reference(10, generator=gen(0)).shape == (10, 2)


# -- every shape: shape, dtype, reproducibility, finiteness --------------------------------------

@pytest.mark.parametrize("name", SYNTHETIC)
def test_shape_sampler_is_reproducible_and_seed_dependent(name):
    params = SYNTHETIC_TARGETS[name]()
    a = params.sample(500, gen(3))
    b = params.sample(500, gen(3))
    c = params.sample(500, gen(4))
    assert a.shape == (500, 2) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert torch.isfinite(a).all()
    assert a.abs().max() < 6.0  # roughly inside [-4, 4]^2
    assert 0.5 < a.std(dim=0).min() and a.std(dim=0).max() < 3.0  # unit-ish scale


@pytest.mark.parametrize("name", SYNTHETIC)
def test_batches_are_fresh_and_reproducible(name):
    source = build_synthetic(SYNTHETIC_TARGETS[name]())
    first = source.batches(32, generator=gen(1))
    second = source.batches(32, generator=gen(1))
    x1, x2 = next(first)[0], next(first)[0]
    assert torch.equal(x1, next(second)[0]) and torch.equal(x2, next(second)[0])
    assert not torch.allclose(x1, x2)


# -- geometry of each shape -----------------------------------------------------------------------

def test_checkerboard_points_fall_in_black_squares_only():
    x = shapes.checkerboard(8000, gen(0)).double()
    assert (x.abs() <= 4.0).all()
    col = torch.clamp(torch.floor((x[:, 0] + 4.0) / 2.0), 0, 3).long()
    row = torch.clamp(torch.floor((x[:, 1] + 4.0) / 2.0), 0, 3).long()
    assert ((col + row) % 2 == 0).all()
    counts = torch.bincount(col * 4 + row, minlength=16).double() / len(x)
    black = [i * 4 + j for i in range(4) for j in range(4) if (i + j) % 2 == 0]
    assert torch.allclose(counts[black], torch.full((8,), 1 / 8, dtype=torch.float64), atol=0.02)


def test_checkerboard_with_other_board_size():
    x = shapes.checkerboard(2000, gen(1), cells=2, extent=1.0)
    col, row = (x[:, 0] > 0).long(), (x[:, 1] > 0).long()
    assert ((col + row) % 2 == 0).all()  # lower left and upper right quadrants
    assert (x.abs() <= 1.0).all()


def test_moons_lie_on_two_half_circles_with_the_closed_form_means():
    x = shapes.moons(20000, gen(0), noise=0.0).double()
    outer_centre = torch.tensor([-1.0, -0.5], dtype=torch.float64)
    inner_centre = torch.tensor([1.0, 0.5], dtype=torch.float64)
    on_outer = ((x - outer_centre).norm(dim=1) - 2.0).abs() < 1e-5
    on_inner = ((x - inner_centre).norm(dim=1) - 2.0).abs() < 1e-5
    assert (on_outer | on_inner).all()
    outer, inner = x[on_outer & ~on_inner], x[on_inner & ~on_outer]
    assert (outer[:, 1] >= -0.5 - 1e-5).all() and (inner[:, 1] <= 0.5 + 1e-5).all()  # upper / lower halves
    assert abs(len(outer) / len(x) - 0.5) < 0.02
    assert torch.allclose(outer.mean(0), torch.tensor(shapes.MOON_CENTRES[0], dtype=torch.float64), atol=0.05)
    assert torch.allclose(inner.mean(0), torch.tensor(shapes.MOON_CENTRES[1], dtype=torch.float64), atol=0.05)
    assert torch.allclose(x.mean(0), torch.zeros(2, dtype=torch.float64), atol=0.05)


def test_moons_noise_is_gaussian_with_the_given_std():
    clean = shapes.moons(4000, gen(0), noise=0.0)
    noisy = shapes.moons(4000, gen(0), noise=0.2)
    assert abs(float((noisy - clean).std()) - 0.2) < 0.01  # same stream: the noise is the difference


def test_eight_gaussians_sit_on_their_centres():
    radius, noise = 2.8, 0.3
    angles = torch.arange(8, dtype=torch.float64) * math.pi / 4
    centres = radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    clean = shapes.eight_gaussians(4000, gen(0), radius=radius, noise=0.0).double()
    assert torch.cdist(clean, centres).min(dim=1).values.max() < 1e-5
    x = shapes.eight_gaussians(16000, gen(1), radius=radius, noise=noise).double()
    dist, nearest = torch.cdist(x, centres).min(dim=1)
    assert dist.max() < 6 * noise
    assert abs(float(dist.mean()) - noise * math.sqrt(math.pi / 2)) < 0.01  # Rayleigh mean
    assert torch.allclose(torch.bincount(nearest, minlength=8).double() / len(x),
                          torch.full((8,), 1 / 8, dtype=torch.float64), atol=0.015)


def test_circles_have_the_two_radii_in_equal_shares():
    x = Circles(inner_radius=1.0, outer_radius=2.0, noise=0.0).sample(10000, gen(0)).double()
    r = x.norm(dim=1)
    inner = (r - 1.0).abs() < 1e-5
    outer = (r - 2.0).abs() < 1e-5
    assert (inner | outer).all()
    assert abs(float(inner.double().mean()) - 0.5) < 0.02
    angle = torch.atan2(x[:, 1], x[:, 0])
    assert abs(float(torch.cos(angle).mean())) < 0.03 and abs(float(torch.sin(angle).mean())) < 0.03


def test_rings_radii_and_shares_proportional_to_circumference():
    x = shapes.rings(20000, gen(0), count=4, max_radius=3.0, noise=0.0).double()
    r = x.norm(dim=1)
    radii = torch.tensor([0.75, 1.5, 2.25, 3.0], dtype=torch.float64)
    gap, ring = (r[:, None] - radii[None, :]).abs().min(dim=1)
    assert gap.max() < 1e-5
    shares = torch.bincount(ring, minlength=4).double() / len(x)
    assert torch.allclose(shares, torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64), atol=0.015)


def test_spirals_follow_two_archimedean_arms():
    turns, radius = 1.5, 3.0
    x = shapes.spirals(5000, gen(0), turns=turns, radius=radius, noise=0.0).double()
    r = x.norm(dim=1)
    phi = r / radius * (2 * math.pi * turns)  # where on the arm this radius is
    angle = torch.atan2(x[:, 1], x[:, 0])
    gap0, gap1 = angle_gap(angle, phi), angle_gap(angle, phi + math.pi)
    assert torch.minimum(gap0, gap1).max() < 1e-3
    assert (r <= radius + 1e-5).all()
    assert abs(float((gap0 < gap1).double().mean()) - 0.5) < 0.03  # both arms equally likely


def test_swissroll_follows_its_roll():
    radius = 3.0
    x = shapes.swissroll(5000, gen(0), radius=radius, noise=0.0).double()
    r = x.norm(dim=1)
    s = r * 4.5 * math.pi / radius
    assert (r >= radius / 3 - 1e-5).all() and (r <= radius + 1e-5).all()
    assert angle_gap(torch.atan2(x[:, 1], x[:, 0]), s).max() < 1e-3


def test_pinwheel_arms_turn_with_radius():
    arms, rate, scale = 5, 0.25, 2.0
    clean = shapes.pinwheel(2000, gen(0), arms=arms, radial_noise=0.0, tangential_noise=0.0, rate=rate, scale=scale)
    clean = clean.double()
    assert torch.allclose(clean.norm(dim=1), torch.full((2000,), scale, dtype=torch.float64), atol=1e-5)
    x = shapes.pinwheel(5000, gen(1), arms=arms, radial_noise=0.3, tangential_noise=0.0, rate=rate, scale=scale)
    x = x.double()
    r = x.norm(dim=1) / scale  # |radial coordinate|; it is < 0 (a mirrored point) only when < -0.5 w.p. 3e-7
    keep = r > 0.5
    turned = torch.atan2(x[:, 1], x[:, 0])[keep] - rate * torch.exp(r[keep])
    arm_angles = 2 * math.pi * torch.arange(arms, dtype=torch.float64) / arms
    gap, arm = angle_gap(turned[:, None], arm_angles[None, :]).min(dim=1)
    assert gap.max() < 1e-3
    assert torch.allclose(torch.bincount(arm, minlength=arms).double() / len(arm),
                          torch.full((arms,), 1 / arms, dtype=torch.float64), atol=0.03)


def test_gaussian_target_moments_and_dimension():
    params = GaussianTarget(mean=(1.0, -2.0, 0.5), std=(0.5, 2.0, 1.0))
    source = build_synthetic(params)
    assert source.event_shape == (3,)
    x = source.reference(40000, generator=gen(0)).double()
    assert torch.allclose(x.mean(0), torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64), atol=0.03)
    assert torch.allclose(x.std(0), torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64), rtol=0.02)


# -- parameter validation and recipes ---------------------------------------------------------------

def test_bad_parameters_are_rejected_with_the_value():
    with pytest.raises(ValueError, match=r"noise must be a finite number >= 0, got -0\.1"):
        Moons(noise=-0.1)
    with pytest.raises(ValueError, match=r"outer_radius must be > inner_radius \(2\.0\), got 1\.0"):
        Circles(inner_radius=2.0, outer_radius=1.0)
    with pytest.raises(ValueError, match=r"std must have one entry per entry of mean \(2\), got 3"):
        GaussianTarget(mean=(0.0, 0.0), std=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match=r"std must be a non-empty list of finite numbers > 0"):
        GaussianTarget(std=(1.0, 0.0))


def test_recipe_tables_structure_strictly():
    conv = RecipeConverter(default_registry())
    g = conv.structure_part("dataset", {"name": "gaussian", "mean": [1, 2], "std": [0.5, 0.5]})
    assert g == GaussianTarget(mean=(1.0, 2.0), std=(0.5, 0.5))
    assert conv.structure_part("dataset", conv.unstructure_part(g)) == g  # round trip
    with pytest.raises(RecipeError, match="noise must be a finite number >= 0"):
        conv.structure_part("dataset", {"name": "moons", "noise": -1.0})
    with pytest.raises(RecipeError, match="unknown parameter"):
        conv.structure_part("dataset", {"name": "moons", "nosie": 0.1})


# -- array files ------------------------------------------------------------------------------------

def scaled_data(n: int = 50, d: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) * np.array([1.0, 10.0, 0.01])[:d] + np.array([5.0, -3.0, 100.0])[:d]


def test_array_standardization_round_trip(tmp_path):
    data = scaled_data()
    np.save(tmp_path / "x.npy", data)
    source = build_array(ArrayFile(path="x.npy", holdout=0), root=tmp_path)
    assert isinstance(source, DataSource)
    assert source.event_shape == (3,) and source.num_classes is None
    shift, scale = source.data_affine()
    assert shift.shape == (3,) and scale.shape == (3,)
    model = source.data
    assert model.dtype == torch.float32
    assert torch.allclose(model.double().mean(0), torch.zeros(3, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(model.double().std(0, unbiased=False), torch.ones(3, dtype=torch.float64), atol=1e-6)
    back = (shift.double() + scale.double() * model.double()).numpy()
    np.testing.assert_allclose(back, data, rtol=1e-6, atol=1e-6 * np.abs(data).max())
    np.testing.assert_allclose(shift.numpy(), data.mean(0), rtol=1e-6)
    np.testing.assert_allclose(scale.numpy(), data.std(0), rtol=1e-6)


def test_array_without_standardization_is_used_as_loaded(tmp_path):
    data = scaled_data()
    np.save(tmp_path / "x.npy", data)
    source = build_array(ArrayFile(path=str(tmp_path / "x.npy"), standardize=False, holdout=0), root=Path("/elsewhere"))
    assert source.data_affine() is None
    assert torch.equal(source.data, torch.from_numpy(data.astype(np.float32)))


def test_array_relative_path_resolves_against_root(tmp_path):
    (tmp_path / "recipes" / "data").mkdir(parents=True)
    np.save(tmp_path / "recipes" / "data" / "x.npy", scaled_data())
    source = default_registry().create("dataset", "array", ArrayFile(path="data/x.npy", holdout=0), root=tmp_path / "recipes")
    assert source.data.shape == (50, 3)
    with pytest.raises(FileNotFoundError, match=f"array file {(tmp_path / 'data' / 'x.npy').resolve()} does not exist"):
        build_array(ArrayFile(path="data/x.npy"), root=tmp_path)


def test_image_shaped_array_keeps_its_event_shape(tmp_path):
    data = np.random.default_rng(0).normal(size=(20, 1, 4, 4)) * 3 + 1
    np.save(tmp_path / "img.npy", data.astype(np.float32))
    source = build_array(ArrayFile(path="img.npy", holdout=0), root=tmp_path)
    assert source.event_shape == (1, 4, 4)
    shift, scale = source.data_affine()
    assert shift.shape == (1, 4, 4) and scale.shape == (1, 4, 4)
    x, _ = next(source.batches(8, generator=gen(0)))
    assert x.shape == (8, 1, 4, 4)
    np.testing.assert_allclose((shift + scale * source.data).numpy(), data, rtol=1e-5, atol=1e-5)


def test_npz_keys_and_labels(tmp_path):
    data = scaled_data(n=30)
    labels = np.arange(30) % 3
    np.savez(tmp_path / "one.npz", data)
    assert build_array(ArrayFile(path="one.npz", holdout=0), root=tmp_path).data.shape == (30, 3)
    np.savez(tmp_path / "many.npz", features=data, y=labels, other=data[:5])
    with pytest.raises(ValueError, match=r"many\.npz: the \.npz holds 3 arrays \(features, other, y\); set key"):
        build_array(ArrayFile(path="many.npz"), root=tmp_path)
    with pytest.raises(ValueError, match=r"has no array named 'feature'; it holds: features, other, y"):
        build_array(ArrayFile(path="many.npz", key="feature"), root=tmp_path)
    source = build_array(ArrayFile(path="many.npz", key="features", labels_key="y"), root=tmp_path)
    assert source.num_classes == 3
    x, y = next(source.batches(10, generator=gen(0)))
    assert x.shape == (10, 3) and y.dtype == torch.int64 and y.shape == (10,)
    # each label travels with its own row
    rows = {tuple(np.round(r, 5)): int(c) for r, c in zip((data - data.mean(0)) / data.std(0), labels)}
    for r, c in zip(x.double().numpy(), y.tolist()):
        assert rows[tuple(np.round(r, 5))] == c


def test_bad_labels_are_rejected(tmp_path):
    data = scaled_data(n=10)
    np.savez(tmp_path / "f.npz", x=data, y=np.linspace(0, 1, 10), short=np.arange(9), neg=np.arange(10) - 1)
    with pytest.raises(ValueError, match=r"labels have dtype float64; expected integer class indices"):
        build_array(ArrayFile(path="f.npz", key="x", labels_key="y"), root=tmp_path)
    with pytest.raises(ValueError, match=r"labels have shape \(9,\); expected \(10,\)"):
        build_array(ArrayFile(path="f.npz", key="x", labels_key="short"), root=tmp_path)
    with pytest.raises(ValueError, match=r"labels must be >= 0, found -1"):
        build_array(ArrayFile(path="f.npz", key="x", labels_key="neg"), root=tmp_path)
    np.save(tmp_path / "x.npy", data)
    with pytest.raises(ValueError, match=r"a \.npy holds one array"):
        build_array(ArrayFile(path="x.npy", labels_key="y"), root=tmp_path)


def _error(tmp_path: Path, name: str, **params) -> str:
    with pytest.raises((ValueError, FileNotFoundError)) as info:
        build_array(ArrayFile(path=name, **params), root=tmp_path)
    message = str(info.value)
    assert str((tmp_path / name).resolve()) in message  # names the file by its absolute path
    return message


def test_bad_array_files_are_explained(tmp_path):
    assert "does not exist" in _error(tmp_path, "missing.npy")

    (tmp_path / "table.csv").write_text("1,2\n3,4\n")
    assert "is not an array file: expected a .npy or .npz file, got suffix '.csv'" in _error(tmp_path, "table.csv")

    (tmp_path / "garbage.npy").write_bytes(b"this is not numpy")
    assert "is not a valid .npy array file" in _error(tmp_path, "garbage.npy")
    (tmp_path / "garbage.npz").write_bytes(b"this is not a zip")
    assert "is not a valid .npz array file" in _error(tmp_path, "garbage.npz")

    np.save(tmp_path / "flat.npy", np.arange(10.0))
    assert "shape (10,), fewer than 2 dimensions; expected (N, D) or (N, *event)" in _error(tmp_path, "flat.npy")

    np.save(tmp_path / "one_row.npy", np.ones((1, 4)))
    assert "the array has 1 row(s) (shape (1, 4)); at least 2 examples are needed" in _error(tmp_path, "one_row.npy")

    bad = scaled_data(n=10)
    bad[3, 1] = np.nan
    bad[7, 0] = np.inf
    np.save(tmp_path / "nan.npy", bad)
    assert "2 of 10 rows hold NaN or inf values (rows 3, 7)" in _error(tmp_path, "nan.npy")
    many_bad = np.full((20, 2), np.nan)
    np.save(tmp_path / "all_nan.npy", many_bad)
    assert "20 of 20 rows hold NaN or inf values (rows 0, 1, 2, 3, 4, ... (15 more))" in _error(tmp_path, "all_nan.npy")

    const = scaled_data(n=10)
    const[:, 1] = 0.1
    np.save(tmp_path / "const.npy", const)
    assert "1 feature(s) are constant (std 0), so they cannot be standardized: column 1" in _error(tmp_path, "const.npy")
    assert build_array(ArrayFile(path="const.npy", standardize=False), root=tmp_path).data.shape == (9, 3)
    image = np.random.default_rng(0).normal(size=(6, 1, 2, 2))
    image[:, 0, 1, 1] = 5.0
    np.save(tmp_path / "const_img.npy", image)
    assert "standardized: feature (0, 1, 1)" in _error(tmp_path, "const_img.npy")

    np.save(tmp_path / "text.npy", np.array([["a", "b"], ["c", "d"]]))
    assert "non-numeric dtype <U1" in _error(tmp_path, "text.npy")
    np.save(tmp_path / "complex.npy", np.ones((4, 2), dtype=np.complex64))
    assert "non-numeric dtype complex64" in _error(tmp_path, "complex.npy")
    np.save(tmp_path / "objects.npy", np.array([[1, None], [2, 3]], dtype=object), allow_pickle=True)
    assert "non-numeric dtype (object array)" in _error(tmp_path, "objects.npy")
    np.savez(tmp_path / "objects.npz", x=np.array([[1, None], [2, 3]], dtype=object))
    assert "array 'x' has a non-numeric dtype (object array" in _error(tmp_path, "objects.npz")


def test_array_params_are_validated():
    with pytest.raises(ValueError, match="path must be a non-empty string"):
        ArrayFile(path="")
    with pytest.raises(ValueError, match="key must be a non-empty string or left out"):
        ArrayFile(path="x.npz", key="")


# -- finite data: epochs, batches, reference --------------------------------------------------------

def indexed_source(tmp_path: Path, n: int):
    """Rows ``[i, -i]`` with label ``i``, so every row says which one it is."""
    data = np.stack([np.arange(n), -np.arange(n)], axis=1).astype(np.float64)
    np.savez(tmp_path / f"rows{n}.npz", x=data, y=np.arange(n))
    return build_array(ArrayFile(path=f"rows{n}.npz", key="x", labels_key="y", standardize=False, holdout=0), root=tmp_path)


def test_batches_cover_every_row_once_per_epoch(tmp_path):
    source = indexed_source(tmp_path, 12)
    stream = source.batches(4, generator=gen(0))
    for _ in range(3):  # three epochs
        epoch = [next(stream) for _ in range(3)]
        labels = torch.cat([y for _, y in epoch])
        assert sorted(labels.tolist()) == list(range(12))
        for x, y in epoch:
            assert torch.equal(x[:, 0].long(), y) and torch.equal(x[:, 1].long(), -y)


def test_ragged_remainder_is_dropped_and_epochs_reshuffle(tmp_path):
    source = indexed_source(tmp_path, 10)
    stream = source.batches(4, generator=gen(0))
    epochs = []
    for _ in range(4):
        labels = torch.cat([next(stream)[1] for _ in range(2)])  # 2 full batches, 2 rows dropped
        assert len(set(labels.tolist())) == 8
        epochs.append(labels.tolist())
    assert len({tuple(e) for e in epochs}) > 1
    again = source.batches(4, generator=gen(0))
    assert next(again)[1].tolist() == epochs[0][:4]


def test_small_data_is_sampled_with_replacement(tmp_path):
    source = indexed_source(tmp_path, 3)
    x, y = next(source.batches(16, generator=gen(0)))
    assert x.shape == (16, 2)
    assert set(y.tolist()) <= {0, 1, 2} and len(set(y.tolist())) == 3


def test_reference_draws_rows_without_replacement_when_possible(tmp_path):
    source = indexed_source(tmp_path, 10)
    ref = source.reference(7, generator=gen(0))
    assert ref.shape == (7, 2) and len(set(ref[:, 0].tolist())) == 7
    big = source.reference(25, generator=gen(0))
    counts = torch.bincount(big[:, 0].long(), minlength=10)
    assert counts.min() == 2 and counts.max() == 3 and counts.sum() == 25
    assert torch.equal(source.reference(7, generator=gen(5)), source.reference(7, generator=gen(5)))


# -- held-out rows of array files ---------------------------------------------------------------------

def test_array_holdout_splits_rows_once_and_reference_uses_them(tmp_path):
    data = np.stack([np.arange(40), -np.arange(40)], axis=1).astype(np.float64)
    np.savez(tmp_path / "rows.npz", x=data, y=np.arange(40) % 4)
    params = dict(path="rows.npz", key="x", labels_key="y", standardize=False)
    source = build_array(ArrayFile(**params), root=tmp_path)  # default holdout 0.1: 4 rows
    assert len(source) == 36 and source.part_size("heldout") == 4
    train_ids = set(source.data[:, 0].long().tolist())
    held_ids = set(source.heldout[:, 0].long().tolist())
    assert train_ids.isdisjoint(held_ids) and train_ids | held_ids == set(range(40))
    assert source.heldout_labels.tolist() == [i % 4 for i in sorted(held_ids)]
    stream = source.batches(12, generator=gen(0))
    seen = set(torch.cat([next(stream)[0][:, 0] for _ in range(9)]).long().tolist())
    assert seen == train_ids  # three epochs of training rows, never a held-out one
    assert set(source.reference(4, generator=gen(1))[:, 0].long().tolist()) == held_ids
    # the split follows split_seed, not the generator; a count works as well as a fraction
    again = build_array(ArrayFile(**params), root=tmp_path)
    assert torch.equal(again.heldout, source.heldout)
    other = build_array(ArrayFile(**params, split_seed=1), root=tmp_path)
    assert not torch.equal(other.heldout, source.heldout)
    assert build_array(ArrayFile(**params, holdout=7), root=tmp_path).part_size("heldout") == 7
    with pytest.raises(ValueError, match=r"holdout = 40\.0 keeps 40 of its 40 rows out of training"):
        build_array(ArrayFile(**params, holdout=40.0), root=tmp_path)
    assert source.dataset.num_rows == 40 and source.dataset.column_names == ["x", "label"]
