"""Accelerate plumbing for the trainer: the Accelerator, the world-size check, the module that keeps
every trainable part in one DDP or FSDP2 wrapper (FSDP: GPUs only, :func:`whole` gathers its shards),
per-step random seeds and weight digests. One code path serves one CPU, one GPU, several GPUs or
machines, and several CPU processes (gloo). On CPU,
``accelerate launch --cpu --num_processes 2`` starts only ONE process; two real processes need
``ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 --num_machines 1 ...``
(recipes/accelerate/README.md). ``train.num_processes`` makes a wrong launch an error.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
from pathlib import Path
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from accelerate import Accelerator

    from interpgen.protocols import Trainable
    from interpgen.protocols import Batch

CPU_LAUNCH = ("ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes {n} --num_machines 1 "
              "-m interpgen train RECIPE.toml --output RUN")
GPU_LAUNCH = "accelerate launch --multi_gpu --num_processes {n} -m interpgen train RECIPE.toml --output RUN"


FSDP_REFUSED = ("FSDP was asked for (ACCELERATE_USE_FSDP=true) but Accelerate chose {} and would train with DDP: "
                "it selects its FSDP plugin only over GPUs, never on a CPU (ACCELERATE_USE_CPU=1 or no GPU); launch "
                "FSDP on GPUs, or without FSDP on a CPU (recipes/accelerate/README.md)")
FSDP_PICTURES = ("under FSDP the main process alone draws the pictures, from the EMA (the trainable modules are "
                 "sharded): keep train.ema_decay > 0 and train only the network, or set train.pictures = false")


class LaunchError(ValueError):
    """The processes or devices running the trainer are not what the recipe asks for."""


def make_accelerator(mixed_precision: str = "no", *, find_unused_parameters: bool = False,
                     log_with: tuple[str, ...] = (), logging_dir: Path | None = None) -> Accelerator:
    """An Accelerator on CUDA when there is one (CPU otherwise, or with ACCELERATE_USE_CPU=1).

    Accelerate fixes one precision per process, so its own is always "no" and the engine runs
    autocast and the fp16 loss scaler itself (:class:`Precision`): runs of other precisions can
    follow each other in one process. ``fp16`` needs CUDA and ``bf16`` on a GPU one that has it.
    The scheduler steps once per optimiser step (not once per process), and checkpoints hold the
    trainable modules without DDP's ``module.`` prefix, whatever the world size."""
    from accelerate import Accelerator, DistributedDataParallelKwargs
    from accelerate.utils import ProjectConfiguration

    cpu = not torch.cuda.is_available()
    if mixed_precision == "fp16" and cpu:
        raise LaunchError('train.mixed_precision = "fp16" needs a CUDA GPU (autocast to fp16 does nothing '
                          'on a CPU); use "bf16" or "no"')
    if mixed_precision == "bf16" and not cpu and not torch.cuda.is_bf16_supported():
        raise LaunchError('train.mixed_precision = "bf16" is not supported by this GPU; use "fp16" or "no"')
    handlers = [DistributedDataParallelKwargs(find_unused_parameters=True)] if find_unused_parameters else []
    project = ProjectConfiguration(project_dir=str(logging_dir.parent), logging_dir=str(logging_dir)) if logging_dir else None
    try:
        acc = Accelerator(cpu=cpu, mixed_precision="no", kwargs_handlers=handlers, step_scheduler_with_optimizer=False,
                          log_with=list(log_with) or None, project_config=project)
    except ValueError as exc:  # e.g. a precision fixed by other code in this process
        raise LaunchError(f"Accelerate refused to start: {exc}") from None
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() == "true" and not getattr(acc, "is_fsdp2", False):
        raise LaunchError(FSDP_REFUSED.format(acc.distributed_type.value) if acc.distributed_type != "FSDP"
                          else "FSDP1 is not supported: set fsdp_version: 2 (FSDP2, torch's fully_shard)")
    acc.register_save_state_pre_hook(lambda models, weights, _: weights.__setitem__(  # none under FSDP
        slice(None), [acc.unwrap_model(m).state_dict() for m in models] if weights else []))
    acc.register_load_state_pre_hook(lambda models, _: models.__setitem__(
        slice(None), [acc.unwrap_model(m) for m in models]))
    return acc


def set_torch_threads(threads: int | None, device_type: str) -> int:
    """Set torch's intra-op threads for training and return the number before (the trainer puts it
    back): ``train.threads``; when it is left out, one per process on CPU (docs/training.md,
    "Threads": more were up to 4x slower on a shared machine, benchmarks/threads.py) and torch's own
    choice on a GPU; 0 keeps torch's setting (``OMP_NUM_THREADS``, ``torch.set_num_threads``)."""
    before = torch.get_num_threads()
    wanted = threads if threads is not None else (1 if device_type == "cpu" else 0)
    if wanted:
        torch.set_num_threads(wanted)
    return before


class Precision:
    """Autocast for ``bf16``/``fp16`` and a loss scaler for ``fp16``, from torch's own ``torch.amp``."""

    def __init__(self, mixed_precision: str, device: torch.device):
        if mixed_precision == "fp16" and device.type != "cuda":
            raise LaunchError(f'train.mixed_precision = "fp16" needs a CUDA GPU; this process runs on {device.type}; '
                              'use "bf16" or "no"')
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mixed_precision)
        self.device_type, self.dtype = device.type, dtype
        self.scaler = torch.amp.GradScaler(device.type) if mixed_precision == "fp16" else None

    def autocast(self) -> Any:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)


def check_trackers(names: tuple[str, ...]) -> None:
    """``train.log_with``: every name a tracker Accelerate knows and can import here."""
    from accelerate.tracking import LOGGER_TYPE_TO_CLASS, get_available_trackers

    known = sorted(LOGGER_TYPE_TO_CLASS)
    installed = sorted({str(t) for t in get_available_trackers()})
    for name in names:
        if name not in known:
            raise LaunchError(f"train.log_with: unknown tracker {name!r}; Accelerate knows {', '.join(known)}")
        if name not in installed:
            how = "pip install 'interpgen[tensorboard]'" if name == "tensorboard" else f"install {name}"
            raise LaunchError(f"train.log_with: tracker {name!r} is not installed ({how}); installed: "
                              f"{', '.join(installed) or 'none'} (metrics.jsonl is always written)")


def check_world_size(expected: int, actual: int, *, device_type: str) -> None:
    """``expected`` (0: anything) must equal ``actual``; the error says how to launch."""
    if expected in (0, actual):
        return
    how = CPU_LAUNCH if device_type == "cpu" else GPU_LAUNCH
    extra = (" (on CPU, `accelerate launch --cpu --num_processes N` starts only one process)"
             if device_type == "cpu" else "")
    raise LaunchError(f"the recipe asks for {expected} processes (train.num_processes) but {actual} "
                      f"{'is' if actual == 1 else 'are'} running{extra}; launch with: {how.format(n=expected)} "
                      "or set train.num_processes = 0 to accept any")


#: ``derived_seed`` streams: the loss noise, torch's global generator, the prior draws paired ahead.
NOISE_STREAM, GLOBAL_STREAM, PAIR_STREAM = 0, 1, 2


def derived_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed mixed from ``seed`` and ``keys`` (splitmix64 rounds), so that every
    (process, step, stream) gets its own independent-looking stream."""
    mask = (1 << 64) - 1
    value = seed & mask
    for key in (*keys, len(keys)):
        value = (value + 0x9E3779B97F4A7C15 + (key & mask)) & mask
        value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & mask
        value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & mask
        value ^= value >> 31
    return value >> 1


class TrainingModel(nn.Module):
    """Every trainable module of a pipeline in one module whose forward is the training loss.

    ``pipe.trainable_modules()`` decides what trains (the network, learnable priors, an
    autoencoder ...) and ``pipe.loss`` what the loss is; wrapping this one module with DDP keeps
    all of their parameters in sync. ``network`` (e.g. a compiled network) is passed on to
    ``pipe.loss`` in place of ``pipe.network``."""

    def __init__(self, pipe: Trainable, network: nn.Module | None = None):
        super().__init__()
        self.parts = nn.ModuleList(pipe.trainable_modules())
        object.__setattr__(self, "_pipe", pipe)  # plain attributes: not registered as submodules
        object.__setattr__(self, "_network", network)

    def forward(self, batch: Batch, generator: torch.Generator) -> torch.Tensor:
        return self._pipe.loss(batch, generator=generator, network=self._network)


def whole(value: Any) -> Any:
    """``value`` (a tensor, or dicts and lists of them) with each DTensor, a shard under FSDP,
    replaced by the whole tensor: a collective, so every process calls it, on the same values."""
    if isinstance(value, dict):
        return {k: whole(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [whole(v) for v in value]
    return value.detach().full_tensor() if hasattr(value, "full_tensor") else value


def weights_digest(state: Any) -> str:
    """SHA-256 over every tensor of ``state`` (a state dict, nested), its shape, dtype and bytes."""
    digest = hashlib.sha256()
    for tensor in torch.utils._pytree.tree_leaves(state):
        if isinstance(tensor, torch.Tensor):
            value = tensor.detach().cpu().contiguous().reshape(-1)
            digest.update(f"{tuple(tensor.shape)}:{value.dtype}".encode())
            digest.update(value.view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()


def move_batch(batch: Batch, device: torch.device) -> Any:
    """The batch's tensors on ``device`` (unchanged when already there)."""
    return type(batch)(*(v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for v in batch))


def seed_global(seed: int, device: torch.device) -> None:
    """Seed torch's global CPU generator (and the training GPU's). Not ``torch.manual_seed``:
    that also queues lazy seeds for every other backend and formats a stack trace each time."""
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.default_generators[device.index or 0].manual_seed(seed)


def part_generators(pipe: Any) -> dict[str, torch.Generator]:
    """The random generators the coupling, prior and interpolant keep as attributes (e.g. the
    sinkhorn coupling's), whose states checkpoints carry so a resumed run draws as a straight one."""
    return {f"{part}.{name}": value for part in ("coupling", "prior", "interpolant")
            for name, value in getattr(getattr(pipe, part, None), "__dict__", {}).items()
            if isinstance(value, torch.Generator)}


@contextlib.contextmanager
def python_random_kept() -> Iterator[None]:
    """Python's and numpy's global generators as they were (Accelerate's load_state sets them)."""
    import numpy as np

    states = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
