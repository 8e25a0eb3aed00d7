"""The training engine: one loop on Accelerate for one CPU, one GPU, several GPUs or several
CPU processes (docs/training.md).

Each optimiser step averages ``grad_accumulation`` micro-batches of ``batch_size`` rows per
process, clips the gradient norm, steps AdamW with a warm-up and constant or cosine learning
rate, and updates the EMA of the network that sampling uses by default (:mod:`interpgen.train.ema`).
A non-finite loss or gradient stops the run with the step number before anything is saved, so
the last good checkpoint stays.

Randomness, chosen so that a resumed run repeats an uninterrupted one exactly:

* data: one generator seeded with ``seed`` on every process, each process taking its shard
  ``(process_index, num_processes)`` of the global batch; on resume the stream is restored to
  the checkpoint's step (streamed sources jump there, others are replayed: the data a run sees
  depends only on the seed and the step);
* the loss noise (x0, t, z, label dropout) and torch's global generator (dropout inside a
  network): reseeded before every step from ``(seed, process_index, step)``, so there is no
  generator state to save, and it is the same whatever step a run was resumed at.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import attrs
import torch

from interpgen.hookspecs import TrainEvent
from interpgen.plugin_manager import plugins
from interpgen.protocols import Batch, CheckpointError, Trainable
from interpgen.recipe import Train
from interpgen.train import guard
from interpgen.train import run_dir as rd
from interpgen.train.batches import REPLAY_FORMAT, BatchStream, batch_stream
from interpgen.train.checkpoint import read_state, trainer_file
from interpgen.train.distributed import (FSDP_PICTURES, GLOBAL_STREAM, NOISE_STREAM, LaunchError, Precision,
                                         TrainingModel, check_trackers, check_world_size, derived_seed,
                                         make_accelerator, move_batch, part_generators, python_random_kept,
                                         seed_global, set_torch_threads, weights_digest, whole)
from interpgen.train.ema import averaged_model
from interpgen.train.pair_ahead import PairAhead
from interpgen.train.progress import Progress

__all__ = ["TrainingError", "TrainingInterrupted", "fit", "lr_factor", "Trainer"]


class TrainingError(RuntimeError):
    """Training stopped (a non-finite loss or gradient); the last good checkpoint is kept."""


class TrainingInterrupted(Exception):
    """SIGTERM or SIGINT stopped training after the checkpoint of the current step was saved;
    ``exit_code`` is 143 (SIGTERM) or 130 (SIGINT), as a shell reports a process those signals end."""

    def __init__(self, signal_name: str, step: int, checkpoint: Path):
        self.signal_name, self.step, self.checkpoint = signal_name, step, checkpoint
        self.exit_code = 143 if signal_name == "SIGTERM" else 130
        super().__init__(f"stopped by {signal_name} at step {step}; saved {checkpoint}; continue with --resume")


def lr_factor(cfg: Train, step: int) -> float:
    """The learning-rate multiplier at optimiser step ``step`` (from 0), the ``LambdaLR`` schedule:
    linear warm-up ``(step + 1) / warmup_steps`` for the first ``warmup_steps`` steps, then 1
    (constant) or ``(1 + cos(pi * min(1, (step - warmup) / (steps - warmup)))) / 2`` (cosine)."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "cosine":
        span = max(1, cfg.steps - cfg.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - cfg.warmup_steps) / span)))
    return 1.0


def fit(pipe: Trainable, cfg: Train, *, run_dir: str | Path | None = None, progress: bool = True,
        resume: bool = False, overwrite: bool = False) -> list[float]:
    """Train ``pipe`` up to ``cfg.steps`` optimiser steps in all (continuing from ``pipe.step``,
    or from the run directory's newest checkpoint with ``resume``). Returns the mean loss of
    every logging window ended in this call (averaged over processes). With ``run_dir`` the run
    directory is checked and written by :func:`interpgen.train.run_dir.start_run` first, the same
    way for ``interpgen train`` and for Python."""
    return Trainer(pipe, cfg, run_dir=run_dir, progress=progress).run(resume=resume, overwrite=overwrite)


class Trainer:
    """One training run of a pipeline; see the module docstring. Only the main process writes
    to the run directory and shows progress."""

    def __init__(self, pipe: Trainable, cfg: Train, *, run_dir: str | Path | None = None, progress: bool = False):
        self.pipe, self.cfg = pipe, cfg
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.show_progress = progress
        self.losses: list[float] = []
        self.saved_step: int | None = None
        self.averager: Any = None

    # -- set-up -----------------------------------------------------------------------------
    def run(self, *, resume: bool = False, overwrite: bool = False) -> list[float]:
        cfg, pipe, run = self.cfg, self.pipe, self.run_dir
        check_trackers(cfg.log_with)
        acc = self.accelerator = make_accelerator(
            cfg.mixed_precision, find_unused_parameters=bool(getattr(pipe, "unused_parameters", False)),
            log_with=[*cfg.log_with, rd.metrics_tracker(run)] if run is not None else [],
            logging_dir=run / rd.TRACKERS if run is not None else None)
        check_world_size(cfg.num_processes, acc.num_processes, device_type=acc.device.type)
        self.sharded = acc.distributed_type == "FSDP"  # FSDP2: modules sharded, the EMA kept whole
        if self.sharded and run is not None and cfg.pictures and (
                not cfg.ema_decay or len(pipe.trainable_modules()) > 1):
            raise LaunchError(FSDP_PICTURES)
        self.main, self.precision = acc.is_main_process, Precision(cfg.mixed_precision, acc.device)
        locked, threads_before = False, set_torch_threads(cfg.threads, acc.device.type)
        fork = [acc.device.index or 0] if acc.device.type == "cuda" else []
        try:
            if run is not None:
                resume = rd.start_run(run, pipe.run_files(cfg), acc, resume=resume, overwrite=overwrite)
                locked = self.main
            with torch.random.fork_rng(devices=fork), python_random_kept():
                self._prepare(rd.load_for_resume(run) if (resume and run is not None) else None, resume)
                self.signals = guard.StopSignals(enabled=run is not None)
                try:
                    with self.signals:
                        self._loop()
                finally:
                    self.progress.close()
                    for tracker in acc.trackers:
                        tracker.finish()
            if run is not None and self.saved_step != pipe.step:
                self._save(pipe.step)  # nothing was left to train: still leave a loadable run
            self._finish()
        finally:
            torch.set_num_threads(threads_before)
            if locked:
                guard.release(run)
        return self.losses

    def _prepare(self, checkpoint: Path | None, resume: bool) -> None:
        """Build the optimiser, scheduler and EMA, prepare them, and restore the checkpoint."""
        acc, cfg, pipe = self.accelerator, self.cfg, self.pipe
        if cfg.ema_decay > 0 and getattr(pipe, "ema", None) is None and hasattr(pipe, "init_ema"):
            pipe.init_ema()
        saved = self._load_trainable(checkpoint) if checkpoint is not None else None
        self.first = pipe.trainable_modules()[0]
        model = TrainingModel(pipe, torch.compile(self.first) if cfg.compile else None)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,  # shared: once
                                      weight_decay=cfg.weight_decay)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: lr_factor(cfg, k))
        self.model, self.optimizer, self.scheduler = acc.prepare(model, optimizer, schedule)
        self.params = list(self.model.parameters())  # under FSDP: the shards (DTensors) fully_shard made
        self.ema_source = (SimpleNamespace(parameters=lambda: whole(list(self.first.parameters())),  # FSDP: whole
                                           buffers=self.first.buffers) if self.sharded else self.first)
        if getattr(pipe, "ema", None) is not None:
            self.averager = averaged_model(pipe.ema.to(acc.device), cfg.ema_decay)
        self.generators = part_generators(pipe)
        if checkpoint is not None:
            try:
                acc.load_state(str(checkpoint))  # model, optimiser, scheduler (its RNG states are not used)
            except (RuntimeError, OSError, KeyError) as exc:
                raise CheckpointError(f"checkpoint {checkpoint} cannot be restored: {exc}") from None
            schedule.last_epoch -= 1  # the schedule of this run's length at the checkpoint's step
            schedule.step()
            if self.precision.scaler is not None and saved.get("scaler"):
                self.precision.scaler.load_state_dict(saved["scaler"])
            for name, generator in self.generators.items():
                if name in saved.get("generators", {}):
                    generator.set_state(saved["generators"][name])
        self.saved = saved
        window = saved["loss_window"] if saved is not None else [0.0, 0]
        self.window_sum = torch.tensor(float(window[0]), device=acc.device)
        self.window_count = int(window[1])
        if self.run_dir is not None and self.main:
            if checkpoint is not None or resume:
                rd.truncate_metrics(self.run_dir, pipe.step)
            acc.init_trackers("interpgen", config={f"train.{k}": ",".join(v) if isinstance(v, tuple) else v
                                                   for k, v in attrs.asdict(cfg).items()})
        self.progress = Progress(cfg.steps, start=pipe.step, enabled=self.show_progress and self.main)

    def _load_trainable(self, checkpoint: Path) -> dict[str, Any]:
        """Load the Trainable's state from ``checkpoint``; return this process's trainer state."""
        acc = self.accelerator
        model = checkpoint / rd.MODEL
        try:
            self.pipe.load_state_dict(read_state(checkpoint / "trainable.safetensors",
                                                 model=model if model.exists() else None))
        except (CheckpointError, RuntimeError) as exc:
            raise CheckpointError(f"checkpoint {checkpoint}: {exc}") from None
        mine = checkpoint / trainer_file(acc.process_index)
        saved = read_state(mine) if mine.is_file() else read_state(checkpoint / trainer_file(0))
        if saved["world_size"] != acc.num_processes:
            raise CheckpointError(f"checkpoint {checkpoint} was saved by {saved['world_size']} processes; resume it "
                                  f"with as many (this launch has {acc.num_processes}; train.num_processes)")
        return saved

    def _batches(self) -> BatchStream:
        """The data stream of this process at ``pipe.step``, restored from the checkpoint's stream state."""
        acc, cfg = self.accelerator, self.cfg
        generator = torch.Generator().manual_seed(cfg.seed)
        stream = batch_stream(self.pipe.data, cfg.batch_size, generator=generator,
                              shard=(acc.process_index, acc.num_processes))
        if self.saved is not None and self.saved.get("data") is not None:
            stream.load_state_dict(self.saved["data"])
        elif self.pipe.step:
            stream.load_state_dict({"format": REPLAY_FORMAT, "batches": self.pipe.step * cfg.grad_accumulation})
        return stream

    # -- the loop -----------------------------------------------------------------------------
    def _loop(self) -> None:
        """Train to ``cfg.steps``; with a coupling that pairs ahead (interpgen.train.pair_ahead) the
        next batch is paired in a worker thread, stopped when the loop ends."""
        cfg, pipe = self.cfg, self.pipe
        stream = source = self._batches()
        capture = (lambda: {"data": source.state_dict(), "generators": {k: g.get_state() for k, g in
                                                                        self.generators.items()}})
        self.capture = capture
        if cfg.pair_ahead and getattr(pipe, "pairs_ahead", lambda: False)():
            stream = PairAhead(stream, pipe.prior, pipe.coupling, seed=cfg.seed, rank=self.accelerator.process_index,
                               start_step=pipe.step, micro=cfg.grad_accumulation, device=self.accelerator.device,
                               capture=self.capture)
            self.capture = lambda: stream.captured
        try:
            self._steps(stream)
        finally:
            if isinstance(stream, PairAhead):
                stream.close()
            source.close()  # stops the source's DataLoader workers

    def _steps(self, stream: Iterator[Batch]) -> None:
        acc, cfg, pipe = self.accelerator, self.cfg, self.pipe
        model, scaler, autocast = self.model, self.precision.scaler, self.precision.autocast
        # Step the optimiser itself: accelerate 1.15's wrapper adds an uncached import search (~1 ms) per step.
        stepper, schedule = self.optimizer.optimizer, self.scheduler.scheduler
        noise = torch.Generator(device=acc.device)
        rank, micro = acc.process_index, cfg.grad_accumulation
        model.train()
        stepper.zero_grad(set_to_none=True)
        for step in range(pipe.step, cfg.steps):
            noise.manual_seed(derived_seed(cfg.seed, rank, step, NOISE_STREAM))
            seed_global(derived_seed(cfg.seed, rank, step, GLOBAL_STREAM), acc.device)
            total = torch.zeros((), device=acc.device)
            for i in range(micro):
                batch = move_batch(next(stream), acc.device)
                sync = contextlib.nullcontext() if i == micro - 1 else acc.no_sync(model)
                with sync:
                    with autocast():
                        loss = model(batch, noise)
                    part = loss / micro if micro > 1 else loss
                    acc.backward(scaler.scale(part) if scaler is not None else part)
                total = total + loss.detach().float()
            total = total / micro
            norm = self._grad_norm()
            self._check_finite(step, total, norm)
            self.lr = stepper.param_groups[0]["lr"]
            if scaler is not None:
                scaler.step(stepper)
                scaler.update()
            else:
                stepper.step()
            stepper.zero_grad(set_to_none=True)
            schedule.step()
            if self.averager is not None:
                self.averager.multi_avg_fn.step = step
                self.averager.update_parameters(self.ema_source)
            pipe.step = step + 1
            self.window_sum += total
            self.window_count += 1
            self._after_step(norm)

    def _grad_norm(self) -> torch.Tensor | None:
        """The global gradient norm (the same on every process after DDP's all-reduce); clips
        to ``grad_clip`` when it is > 0. None in one process without clipping or fp16, where
        nothing needs it: the loss check and the weight check before saving suffice there."""
        acc, scaler = self.accelerator, self.precision.scaler
        if scaler is not None:
            scaler.unscale_(self.optimizer.optimizer)
        if self.cfg.grad_clip > 0:
            return whole(acc.clip_grad_norm_(self.params, self.cfg.grad_clip))
        if acc.num_processes == 1 and scaler is None:
            return None
        grads = [p.grad for p in self.params if p.grad is not None]
        return whole(torch.nn.utils.get_total_norm(grads)) if grads else torch.zeros((), device=acc.device)

    def _check_finite(self, step: int, loss: torch.Tensor, norm: torch.Tensor | None) -> None:
        """Stop on a non-finite loss or gradient. The gradient norm is computed after the
        all-reduce, so every process sees the same verdict and stops at the same step (with
        fp16 an overflowing gradient is the loss scaler's business: it skips that step)."""
        acc = self.accelerator
        if self.precision.scaler is not None:
            loss_all = acc.reduce(loss.reshape(1), "sum")
            values = torch.stack([loss.reshape(()), loss_all.reshape(()), norm.float().reshape(())]).tolist()
            bad = not math.isfinite(values[1])
        elif norm is None:
            values = [float(loss)]
            bad = not math.isfinite(values[0])
        else:
            values = torch.stack([loss.reshape(()), norm.float().reshape(())]).tolist()
            bad = not math.isfinite(values[-1]) or not math.isfinite(values[0])
        if not bad:
            return
        local, grad = values[0], values[-1]
        where = f" on process {acc.process_index}" if acc.num_processes > 1 else ""
        what = f"loss is {local}" if not math.isfinite(local) else f"gradient norm is {grad} (loss {local:.4g}{where})"
        raise TrainingError(f"{what} at step {step}; stopping{self._kept()}")

    def _kept(self) -> str:
        if self.run_dir is None:
            return ""
        found = rd.list_checkpoints(self.run_dir)
        return f"; the last good checkpoint {found[-1]} is kept" if found else "; no checkpoint had been saved yet"

    # -- bookkeeping --------------------------------------------------------------------------
    def _after_step(self, norm: torch.Tensor | None) -> None:
        cfg, step = self.cfg, self.pipe.step
        last = step == cfg.steps
        logs = step % cfg.log_every == 0 or last
        wants = not logs and self.progress.wants_loss(step)
        self.progress.tick(step, float(self.window_sum) / max(self.window_count, 1) if wants else None)
        if logs:
            self._log(step, float(norm) if norm is not None else None)
        if self.run_dir is None:
            return
        stop = self._stop_requested()
        if step % cfg.checkpoint_every == 0 or last or (stop and self.saved_step != step):
            self._save(step)
        if stop:
            raise TrainingInterrupted(stop, step, rd.checkpoint_path(self.run_dir, step))

    def _stop_requested(self) -> str | None:
        """The signal that asks to stop, agreed by all processes (so all save the same step)."""
        received = self.signals.received
        if self.accelerator.num_processes == 1:
            return received
        code = torch.tensor([{"SIGINT": 1, "SIGTERM": 2}.get(received or "", 0)], device=self.accelerator.device)
        return {1: "SIGINT", 2: "SIGTERM"}.get(int(self.accelerator.gather(code).max()))

    def _window_mean_sum(self) -> float:
        """The window's loss sum, averaged over processes (a collective: every process calls it)."""
        return float(self.accelerator.reduce(self.window_sum.clone(), "mean"))

    def _log(self, step: int, grad_norm: float | None) -> None:
        if self.window_count == 0:
            return
        loss = self._window_mean_sum() / self.window_count
        self.losses.append(loss)
        self.window_sum.zero_()
        self.window_count = 0
        rate = self.progress.log(step, loss)
        if not (self.main and self.run_dir is not None):
            return
        acc, cfg = self.accelerator, self.cfg
        values = {"loss": loss, "lr": self.lr, "grad_norm": grad_norm, "steps_per_second": rate,
                  "samples_per_second": (rate * cfg.batch_size * cfg.grad_accumulation * acc.num_processes
                                         if rate is not None else None)}
        values = {k: v for k, v in values.items() if v is not None}
        acc.log(values, step=step)  # metrics.jsonl and the trackers of train.log_with
        self._event("log", step, {"step": step, **values})

    def _save(self, step: int) -> None:
        """Checkpoint ``step``. Every tensor of the whole state (weights, EMA ...) must be finite first:
        that catches a non-finite gradient the per-step check does not look at (one process, no clipping)."""
        self.saved_step = step
        state = whole(self.pipe.state_dict())  # under FSDP every process gathers the shards
        if not all(bool(torch.isfinite(t).all()) for t in torch.utils._pytree.tree_leaves(state)
                   if isinstance(t, torch.Tensor) and t.is_floating_point()):
            raise TrainingError(f"the weights are not finite after step {step}; stopping{self._kept()}")
        acc, scaler = self.accelerator, self.precision.scaler
        window = [self._window_mean_sum(), self.window_count]
        trainer = {"step": step, "world_size": acc.num_processes, "loss_window": window,
                   "scaler": scaler.state_dict() if scaler is not None else None,
                   **(self.capture() or {"data": None, "generators": {}})}
        model = {} if self.sharded else acc.unwrap_model(self.model).state_dict()  # FSDP: no model.safetensors
        rd.save_checkpoint(acc, self.run_dir, step, state, trainer, model=model, keep=self.cfg.keep_checkpoints)
        self._event("checkpoint", step)

    def _event(self, kind: str, step: int, record: dict[str, Any] | None = None) -> None:
        """Tell plugins (``interpgen_train_event``; e.g. the pictures plugin) on the main process."""
        if self.main:
            plugins().manager.hook.interpgen_train_event(event=TrainEvent(
                kind=kind, step=step, pipe=self.pipe, run_dir=self.run_dir, train=self.cfg, record=record))

    def _finish(self) -> None:
        """Every process hashes its weights; the main process checks they agree and writes
        ``processes.json`` (world size, per-process SHA-256)."""
        from accelerate.utils import gather_object

        acc = self.accelerator
        state = whole(self.pipe.state_dict())  # under FSDP every process gathers the shards
        digests = gather_object([weights_digest(state)]) if acc.num_processes > 1 else [weights_digest(state)]
        if self.main and self.run_dir is not None:
            rd.export_weights(self.run_dir, state)
            rd.atomic_write_bytes(self.run_dir / rd.PROCESSES, json.dumps(
                {"world_size": acc.num_processes, "step": self.pipe.step, "weights_sha256": digests},
                indent=2).encode())
        if len(set(digests)) != 1:
            raise TrainingError(f"the {acc.num_processes} processes ended with different weights "
                                f"(SHA-256 {', '.join(d[:12] for d in digests)}): they did not train in sync")
        self._event("end", self.pipe.step)
        acc.wait_for_everyone()
