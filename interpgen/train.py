"""The first training loop: one process, CPU or one GPU (the Accelerate engine replaces it).

AdamW on the network (and any learnable prior or coupling), optional warm-up and cosine decay,
gradient clipping, an exponential moving average (EMA) of the weights that sampling uses by
default, a NaN guard that stops with the step number while the last good checkpoint stays, and
atomic checkpoints in the run directory.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from interpgen import run_dir as rd
from interpgen.batches import batch_stream
from interpgen.recipe import Train

if TYPE_CHECKING:
    from interpgen.pipeline import Pipeline


class TrainingError(RuntimeError):
    """Training stopped (a non-finite loss); the last good checkpoint is kept."""


def lr_factor(cfg: Train, step: int) -> float:
    """Linear warm-up over ``warmup_steps``, then constant or cosine decay to zero."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "cosine":
        span = max(1, cfg.steps - cfg.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - cfg.warmup_steps) / span)))
    return 1.0


def ema_decay_at(decay: float, step: int) -> float:
    """The EMA decay after ``step`` updates: ``min(decay, (1 + step) / (10 + step))``.

    The warm-up keeps the random initial weights from lingering in the average: with a fixed
    0.999 they would still weigh 0.999^3000 = 5% after 3000 steps."""
    return min(decay, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema <- decay * ema + (1 - decay) * model`` for parameters; buffers are copied."""
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p.detach(), 1.0 - decay)
    for e, b in zip(ema.buffers(), model.buffers()):
        e.copy_(b)


def checkpoint_state(pipe: Pipeline, optimizer: torch.optim.Optimizer | None, generator: torch.Generator) -> dict:
    state = {
        "network": pipe.network.state_dict(),
        "ema": pipe.ema.state_dict() if pipe.ema is not None else None,
        "modules": [m.state_dict() for m in pipe.trainable_modules()[1:]],
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "generator": generator.get_state(),
        "data_affine": list(pipe.data_affine) if pipe.data_affine is not None else None,
        "event_shape": list(pipe.event_shape),
        "num_classes": pipe.data.num_classes,
        "root": str(pipe.root),
    }
    return state


def restore_state(pipe: Pipeline, state: dict, optimizer: torch.optim.Optimizer | None = None,
                  generator: torch.Generator | None = None) -> None:
    pipe.network.load_state_dict(state["network"])
    if state.get("ema") is not None:
        if pipe.ema is None:
            pipe.init_ema()
        pipe.ema.load_state_dict(state["ema"])
    for module, module_state in zip(pipe.trainable_modules()[1:], state.get("modules", [])):
        module.load_state_dict(module_state)
    if optimizer is not None and state.get("optimizer") is not None:
        optimizer.load_state_dict(state["optimizer"])
    if generator is not None and state.get("generator") is not None:
        generator.set_state(state["generator"])
    if state.get("data_affine") is not None:
        pipe.data_affine = tuple(state["data_affine"])
    pipe.step = int(state["step"])


def fit(pipe: Pipeline, cfg: Train, *, run_dir: str | Path | None = None, progress: bool = False,
        resume: bool = False) -> list[float]:
    """Train ``pipe`` for ``cfg.steps`` steps in total; returns the loss at every logged step."""
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    params = [p for m in pipe.trainable_modules() for p in m.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.ema_decay > 0 and pipe.ema is None:
        pipe.init_ema()
    run = Path(run_dir) if run_dir is not None else None
    if run is not None:
        run.mkdir(parents=True, exist_ok=True)
    if resume and run is not None and rd.list_checkpoints(run):
        restore_state(pipe, rd.load_checkpoint(rd.latest_checkpoint(run)), optimizer, generator)
    batches = batch_stream(pipe.data, cfg.batch_size, generator=generator)
    losses: list[float] = []
    pipe.network.train()
    start, started = pipe.step, time.perf_counter()
    for step in range(pipe.step, cfg.steps):
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * lr_factor(cfg, step)
        loss = pipe.loss(next(batches), generator=generator)
        if not torch.isfinite(loss):
            raise TrainingError(f"loss is {loss.item()} at step {step}; stopping"
                                + (f" (last good checkpoint kept in {run / rd.CHECKPOINT_DIR})" if run else ""))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        if pipe.ema is not None:
            update_ema(pipe.ema, pipe.network, ema_decay_at(cfg.ema_decay, step))
        pipe.step = step + 1
        if pipe.step % cfg.log_every == 0 or pipe.step == cfg.steps:
            value = float(loss.detach())
            losses.append(value)
            elapsed = time.perf_counter() - started
            rate = (pipe.step - start) / max(elapsed, 1e-9)
            if run is not None:
                rd.append_metrics(run, {"step": pipe.step, "loss": value, "lr": optimizer.param_groups[0]["lr"],
                                        "steps_per_second": rate})
            if progress:
                left = (cfg.steps - pipe.step) / max(rate, 1e-9)
                print(f"step {pipe.step}/{cfg.steps}  loss {value:.4f}  {rate:.1f} it/s  {left:.0f}s left",
                      file=sys.stderr, flush=True)
        if run is not None and (pipe.step % cfg.checkpoint_every == 0 or pipe.step == cfg.steps):
            rd.save_checkpoint(run, pipe.step, checkpoint_state(pipe, optimizer, generator), keep=cfg.keep_checkpoints)
    return losses
