"""The training engine in one process: learning-rate schedule, exact resume (also with gradient
accumulation and finite data), loss-window bookkeeping, NaN guard, mixed precision, world-size
check, per-step seeds, progress display and pictures."""

from __future__ import annotations

import io
import json
import shutil

import pytest
import torch

import interpgen as ig
from interpgen.train import run_dir as rd
from interpgen.train.distributed import LaunchError, check_world_size, derived_seed, make_accelerator
from interpgen_plugins.pictures.plots import (class_rows, image_grid, loss_figure, picture_kind, samples_figure,
                                              save_loss_curve, save_samples_picture)
from interpgen.train.progress import Progress, format_duration
from interpgen.train.loop import TrainingError, lr_factor


def small_pipe(data: str = "moons", **kw) -> ig.Pipeline:
    return ig.Pipeline(data=ig.part("dataset", data), network=ig.part("network", "mlp", hidden=32, depth=2), **kw)


def test_lr_schedule():
    cfg = ig.Train(steps=110, warmup_steps=10, lr_schedule="cosine")
    assert lr_factor(cfg, 0) == pytest.approx(0.1) and lr_factor(cfg, 9) == pytest.approx(1.0)
    assert lr_factor(cfg, 10) == pytest.approx(1.0) and lr_factor(cfg, 60) == pytest.approx(0.5)
    assert lr_factor(cfg, 110) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(ig.Train(steps=50), 49) == 1.0


def test_new_train_fields_are_checked():
    with pytest.raises(ValueError, match="mixed_precision must be one of"):
        ig.Train(mixed_precision="fp8")
    with pytest.raises(ValueError, match="grad_accumulation must be an integer >= 1, got 0"):
        ig.Train(grad_accumulation=0)
    with pytest.raises(ValueError, match="sample_every must be an integer >= 0, got -1"):
        ig.Train(sample_every=-1)
    with pytest.raises(ValueError, match="num_processes must be an integer >= 0, got -2"):
        ig.Train(num_processes=-2)


class Interrupted(Exception):
    pass


def _straight_and_resumed(tmp_path, cfg: ig.Train, half: int, data: str = "moons", **kw):
    """The same recipe run straight, and run, interrupted right after its checkpoint at ``half``
    (as by a kill), then resumed in a fresh pipeline."""
    straight = small_pipe(data, **kw)
    losses = straight.fit(cfg, run_dir=tmp_path / "a")
    real_save = rd.save_checkpoint

    def save_then_die(acc, run, step, trainable, trainer, **kw):
        path = real_save(acc, run, step, trainable, trainer, **kw)
        if step == half:
            raise Interrupted
        return path

    first = small_pipe(data, **kw)
    rd.save_checkpoint = save_then_die
    try:
        with pytest.raises(Interrupted):
            first.fit(cfg, run_dir=tmp_path / "b")
    finally:
        rd.save_checkpoint = real_save
    resumed = small_pipe(data, **kw)
    resumed_losses = resumed.fit(cfg, run_dir=tmp_path / "b", resume=True)
    logged = [r["loss"] for r in rd.read_metrics(tmp_path / "b")]
    return straight, losses, resumed, logged[:len(logged) - len(resumed_losses)] + resumed_losses


def _assert_same_weights(a: ig.Pipeline, b: ig.Pipeline) -> None:
    for p, q in zip(a.network.parameters(), b.network.parameters(), strict=True):
        assert torch.equal(p, q)
    for p, q in zip(a.ema.parameters(), b.ema.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.slow
def test_resume_gives_the_same_losses_and_weights_as_one_run(tmp_path):
    cfg = ig.Train(steps=20, batch_size=32, checkpoint_every=10, log_every=5, seed=5, sample_every=0, pictures=False)
    straight, losses, resumed, both = _straight_and_resumed(tmp_path, cfg, 10)
    assert resumed.step == 20 and len(losses) == 4
    assert both == losses
    _assert_same_weights(straight, resumed)
    # the metrics file of the resumed run reads like the uninterrupted one
    steps = [r["step"] for r in rd.read_metrics(tmp_path / "b")]
    assert steps == [5, 10, 15, 20]
    assert [r["loss"] for r in rd.read_metrics(tmp_path / "b")] == losses
    assert not (tmp_path / "b" / rd.SAMPLES_DIR).exists() and not (tmp_path / "b" / rd.LOSS_CURVE).exists()


@pytest.mark.slow
def test_exact_resume_mid_window_with_accumulation_and_finite_data(tmp_path):
    """A checkpoint inside a logging window (step 5 of windows of 4) and two micro-batches a step
    on finite data (the data stream is replayed to the checkpoint's step)."""
    cfg = ig.Train(steps=12, batch_size=16, checkpoint_every=5, log_every=4, seed=2, grad_accumulation=2,
                   sample_every=0, pictures=False, lr_schedule="cosine", warmup_steps=3)
    straight, losses, resumed, both = _straight_and_resumed(tmp_path, cfg, 5, data="digits")
    assert both == losses and len(losses) == 3
    _assert_same_weights(straight, resumed)


def test_resume_after_a_crash_drops_metrics_past_the_checkpoint(tmp_path):
    pipe = small_pipe()
    pipe.fit(ig.Train(steps=20, batch_size=16, checkpoint_every=10, log_every=5, sample_every=0, pictures=False), run_dir=tmp_path)
    # a crash after step 20's log but with only step 10's checkpoint left
    shutil.rmtree(tmp_path / rd.CHECKPOINT_DIR / "step_00000020")
    again = small_pipe()
    again.fit(ig.Train(steps=20, batch_size=16, checkpoint_every=10, log_every=5, sample_every=0, pictures=False),
              run_dir=tmp_path, resume=True)
    assert [r["step"] for r in rd.read_metrics(tmp_path)] == [5, 10, 15, 20]


def test_nan_loss_stops_with_the_step_and_keeps_the_checkpoint(tmp_path):
    pipe = small_pipe()
    pipe.fit(ig.Train(steps=10, batch_size=16, checkpoint_every=10, log_every=5, sample_every=0, pictures=False), run_dir=tmp_path)
    good = (rd.latest_checkpoint(tmp_path) / "manifest.json").read_bytes()
    # resuming reloads the saved (finite) weights, so the network's output is made NaN instead
    pipe.network.register_forward_hook(lambda module, args, out: out * float("nan"))
    with pytest.raises(TrainingError, match=r"loss is nan at step 10; stopping; the last good checkpoint "
                                            r".*step_00000010 is kept"):
        pipe.fit(ig.Train(steps=20, batch_size=16, checkpoint_every=1, log_every=5, sample_every=0, pictures=False),
                 run_dir=tmp_path, resume=True)
    assert (rd.latest_checkpoint(tmp_path) / "manifest.json").read_bytes() == good
    assert [p.name for p in rd.list_checkpoints(tmp_path)] == ["step_00000010"]


def test_infinite_gradient_stops_too():
    pipe = small_pipe()
    next(pipe.network.parameters()).register_hook(lambda g: torch.full_like(g, float("inf")))
    with pytest.raises(TrainingError, match=r"gradient norm is inf \(loss [0-9.]+\) at step 0; stopping"):
        pipe.fit(ig.Train(steps=3, batch_size=8, sample_every=0, pictures=False))


def test_non_finite_weights_are_never_saved_without_clipping(tmp_path):
    """One process without clipping skips the gradient norm; the weights are checked before
    every save instead."""
    pipe = small_pipe()
    next(pipe.network.parameters()).register_hook(lambda g: torch.full_like(g, float("inf")))
    with pytest.raises(TrainingError, match=r"the weights are not finite after step 1; "
                                            r"stopping; no checkpoint had been saved yet"):
        pipe.fit(ig.Train(steps=3, batch_size=8, grad_clip=0.0, checkpoint_every=1, sample_every=0, pictures=False), run_dir=tmp_path)
    assert rd.list_checkpoints(tmp_path) == []


def test_bf16_trains_on_cpu_and_fp16_is_refused():
    pipe = small_pipe()
    losses = pipe.fit(ig.Train(steps=4, batch_size=16, log_every=2, mixed_precision="bf16", sample_every=0, pictures=False))
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
    assert all(p.dtype == torch.float32 for p in pipe.network.parameters())  # autocast, fp32 weights
    with pytest.raises(LaunchError, match=r'"fp16" needs a CUDA GPU .* use "bf16" or "no"'):
        make_accelerator("fp16")
    # the precision can change between runs in one process
    assert len(small_pipe().fit(ig.Train(steps=2, batch_size=8, log_every=1, sample_every=0, pictures=False))) == 2


def test_world_size_check_says_how_to_launch():
    check_world_size(0, 3, device_type="cpu")
    check_world_size(2, 2, device_type="cpu")
    with pytest.raises(LaunchError) as err:
        check_world_size(2, 1, device_type="cpu")
    text = str(err.value)
    assert "asks for 2 processes (train.num_processes) but 1 is running" in text
    assert "ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 --num_machines 1" in text
    with pytest.raises(LaunchError, match="asks for 2 processes"):
        small_pipe().fit(ig.Train(steps=1, num_processes=2))


def test_derived_seeds_are_deterministic_and_distinct():
    seeds = {derived_seed(0, rank, step, stream) for rank in range(4) for step in range(50) for stream in (0, 1)}
    assert len(seeds) == 400
    assert derived_seed(7, 1, 2, 0) == derived_seed(7, 1, 2, 0) != derived_seed(8, 1, 2, 0)
    assert all(0 <= s < 2**63 for s in seeds)


def test_fit_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    small_pipe().fit(ig.Train(steps=2, batch_size=8, sample_every=0, pictures=False))
    assert torch.equal(torch.rand(3), expected)


def test_progress_plain_lines_and_durations():
    assert format_duration(75) == "1:15" and format_duration(3725) == "1:02:05"
    assert format_duration(float("inf")) == "?"
    stream = io.StringIO()
    bar = Progress(100, stream=stream, live=False)
    assert stream.getvalue() == "training from step 0 to 100\n"  # at once, not after log_every steps
    assert bar.wants_loss(1) and not bar.wants_loss(2)  # the first step has a line of its own
    bar.tick(1, 2.5)
    bar.tick(5, None)  # other steps print nothing in plain mode
    bar.log(10, 0.25)
    first, line = stream.getvalue().splitlines()[1:]
    assert first.startswith("step 1/100  loss 2.5  ")
    assert line.startswith("step 10/100  loss 0.25  ") and " steps/s  " in line and line.endswith(" left")
    quiet = io.StringIO()
    Progress(100, stream=quiet, live=False, enabled=False).log(10, 0.25)
    assert quiet.getvalue() == ""


def test_progress_on_a_terminal_is_a_tqdm_bar():
    stream = io.StringIO()
    bar = Progress(10, stream=stream, live=True, refresh_seconds=0.0)
    assert bar.wants_loss(1)
    bar.tick(1, 2.0)
    bar.tick(2, 1.5)
    bar.close()
    text = stream.getvalue()
    assert "\r" in text and "2/10" in text and "loss=1.5" in text and "step/s" in text


def test_fit_shows_progress_unless_told_not_to(capsys):
    small_pipe().fit(ig.Train(steps=3, batch_size=8, log_every=2, sample_every=0, pictures=False))
    err = capsys.readouterr().err
    assert err.startswith("training from step 0 to 3\nstep 1/3  loss ") and "step 2/3" in err
    small_pipe().fit(ig.Train(steps=3, batch_size=8, sample_every=0, pictures=False), progress=False)
    assert capsys.readouterr().err == ""


def test_image_grid_layout_and_clipping():
    images = torch.stack([torch.full((1, 2, 2), v) for v in (-1.0, 0.0, 1.0, 3.0, 0.5)])
    grid = image_grid(images, low=-1.0, high=1.0)
    assert grid.shape == (2 * 3 + 1, 3 * 3 + 1, 1)  # 3 columns, 2 rows of 2 px, 1 px borders
    assert grid[1, 1, 0] == 0.0 and grid[1, 4, 0] == 0.5 and grid[1, 7, 0] == 1.0
    assert grid[4, 1, 0] == 1.0  # 3.0 clipped to the data's maximum
    assert grid[4, 4, 0] == 0.75 and grid[0, 0, 0] == 1.0  # border
    assert picture_kind((2,)) == "scatter" and picture_kind((3, 8, 8)) == "grid"
    assert picture_kind((2, 8, 8)) is None and picture_kind((1,)) is None


def test_pictures_are_pngs(tmp_path):
    assert save_samples_picture(tmp_path / "a.png", torch.randn(50, 2), reference=torch.randn(50, 2))
    assert save_samples_picture(tmp_path / "b.png", torch.rand(9, 3, 4, 4))
    assert not save_samples_picture(tmp_path / "c.png", torch.rand(9, 2, 8, 8))  # no picture for this shape
    assert save_loss_curve(tmp_path / "d.png", [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0}])
    assert not save_loss_curve(tmp_path / "e.png", [])
    for name in ("a.png", "b.png", "d.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (tmp_path / "c.png").exists() and not (tmp_path / "e.png").exists()


def test_loss_curve_has_numbers_on_its_y_axis():
    def labels(losses):
        ax = loss_figure([{"step": i + 1, "loss": v} for i, v in enumerate(losses)]).axes[0]
        return [t.get_text() for t in ax.get_yticklabels()]

    # a range inside one decade: five ticks evenly spread in log, two significant digits
    # (0.3 * (4/3)^(i/4) = 0.3, 0.3225, 0.3464, 0.3722, 0.4)
    assert labels([0.4 - 0.1 * i / 9 for i in range(10)]) == ["0.3", "0.32", "0.35", "0.37", "0.4"]
    assert labels([10.0 * 0.1 ** (i / 2) for i in range(9)]) == ["0.001", "0.01", "0.1", "1", "10"]  # powers of ten
    assert "0.0" in labels([0.5, -0.25, 0.1])  # a loss <= 0: a linear axis, labelled by matplotlib


def test_class_conditional_pictures_have_one_labelled_row_per_class():
    images = torch.rand(30, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    fig = samples_figure(images, labels=torch.arange(30) % 3, class_names=["cat", "dog", "emu"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["cat", "dog", "emu"]
    assert ax.images[0].get_array().shape == (3 * 9 + 1, 10 * 9 + 1)  # 3 rows of the 10 images each class has
    rows, classes, width = class_rows(images[:3], torch.tensor([4, 1, 4]), 16, blank=1.0)
    assert classes == [1, 4] and width == 2 and rows.shape == (4, 1, 8, 8)
    assert torch.equal(rows[0], images[1]) and torch.equal(rows[1], torch.ones(1, 8, 8))  # class 1: padded
    assert torch.equal(rows[2], images[0]) and torch.equal(rows[3], images[2])
    points = samples_figure(torch.randn(20, 2), reference=torch.randn(40, 2), labels=torch.arange(20) % 2)
    assert [t.get_text() for t in points.axes[0].get_legend().get_texts()] == ["data", "class 0", "class 1"]
    grid = samples_figure(torch.rand(300, 1, 4, 4), max_images=100)
    assert grid.axes[0].images[0].get_array().shape == (10 * 5 + 1, 10 * 5 + 1)  # at most 100 images: 10 x 10


def test_the_pictures_plugin_registers_the_png_writer():
    from types import SimpleNamespace

    from interpgen.plugin_manager import registry
    from interpgen_plugins.pictures import PngPicture, build_png_writer

    entry = registry().get("writer", ".png")
    assert entry.plugin == "pictures" and entry.params is PngPicture
    with pytest.raises(ValueError, match=r"samples of shape \(2, 8, 8\) have no picture .*write them to a .npy file"):
        build_png_writer(PngPicture(), pipe=SimpleNamespace(event_shape=(2, 8, 8)), registry=registry())


def test_run_directory_layout(tmp_path):
    pipe = small_pipe()
    pipe.fit(ig.Train(steps=6, batch_size=16, log_every=3, checkpoint_every=3, sample_every=3,
                      keep_checkpoints=1), run_dir=tmp_path)
    assert [p.name for p in rd.list_checkpoints(tmp_path)] == ["step_00000006"]
    assert sorted(p.name for p in (tmp_path / rd.SAMPLES_DIR).iterdir()) == ["step_00000003.png", "step_00000006.png"]
    assert (tmp_path / rd.LOSS_CURVE).read_bytes()[:4] == b"\x89PNG"
    records = rd.read_metrics(tmp_path)
    assert [r["step"] for r in records] == [3, 6]
    assert set(records[0]) == {"step", "loss", "lr", "grad_norm", "steps_per_second", "samples_per_second"}
    processes = json.loads((tmp_path / rd.PROCESSES).read_text())
    assert processes["world_size"] == 1 and processes["step"] == 6 and len(processes["weights_sha256"]) == 1
    assert not list(tmp_path.rglob("*.tmp"))
