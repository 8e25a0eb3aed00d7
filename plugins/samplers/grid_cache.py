"""Fit the ``fitted`` time grid once per model and keep it (docs/sampling.md, "Time grids").

The fit (:mod:`.fitted_grid`) costs hundreds of model evaluations, so its knots are kept:

* in this process, for every field that reveals its network (``field.network``, an
  ``nn.Module``), keyed by what the grid depends on: the sampler (its Runge-Kutta scheme) and
  ``steps``, the time range, the field's type, interpolant and predictions, whether it is
  conditioned on labels (not on which: the grid is the model's, fitted on whatever pilot rows
  and labels the first call had), and a fingerprint of the network (every parameter and buffer,
  and plain attributes such as a guidance scale), so another checkpoint, the EMA or raw weights,
  or another guidance scale gets a grid of its own;
* on disk, in ``folder`` (``RUN/grids/`` when the pipeline was loaded from a run directory, the
  sampler's ``grid_cache`` when set), one JSON file per key, written atomically.

A kept grid fitted on fewer pilot rows than the current call would use is fitted again (and
replaced); otherwise it is reused whatever the seed and the number of samples. Fields without a
network (a converted field, an oracle) are fitted on every call.

Before a fit a line on stderr says what it will cost (evaluations, and seconds once the first
reference steps are timed); while it runs the progress is shown (on a terminal, one line
redrawn; otherwise a line about every :data:`REPORT_EVERY` seconds), and the end says where it
was kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import torch
from torch import Tensor, nn

from interpgen_plugins.samplers.butcher import ButcherTableau
from interpgen_plugins.samplers import fitted_grid as fg

#: The folder of a run directory that keeps fitted grids.
GRIDS_DIR = "grids"
#: Seconds between progress lines when stderr is not a terminal.
REPORT_EVERY = 10.0
#: Fitted grids kept in this process, by key: ``(pilot_rows, times)``.
_MEMORY: dict[str, tuple[int, list[float]]] = {}
_MEMORY_SIZE = 64


def network_fingerprint(network: nn.Module) -> str:
    """A digest of every parameter and buffer (name, shape, dtype, sum, sum of squares, and up to
    256 evenly spaced values) and of each submodule's plain attributes (e.g. a guidance scale)."""
    digest = hashlib.sha256()
    with torch.no_grad():
        for name, tensor in network.state_dict().items():
            flat = tensor.detach().reshape(-1)
            digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}".encode())
            if flat.numel():
                values = flat.double() if flat.is_floating_point() else flat.to(torch.float64)
                stride = max(1, values.numel() // 256)
                summary = torch.cat([values.sum().reshape(1), values.pow(2).sum().reshape(1), values[::stride][:256]])
                digest.update(summary.cpu().numpy().tobytes())
    for module in network.modules():
        plain = {k: v for k, v in vars(module).items()
                 if not k.startswith("_") and k != "training" and isinstance(v, (bool, int, float, str))}
        digest.update(f"{type(module).__qualname__}|{sorted(plain.items())}".encode())
    return digest.hexdigest()


def field_key(field: Any) -> dict[str, Any] | None:
    """What a fitted grid depends on besides the sampler, or None when the field does not reveal
    its network (no caching then)."""
    network = getattr(field, "network", None)
    if not isinstance(network, nn.Module):
        return None
    conditional = getattr(field, "labels", None) is not None  # which labels does not matter: a grid is the model's
    return {"field": type(field).__qualname__, "interpolant": repr(getattr(field, "interpolant", None)),
            "predictions": list(getattr(field, "predictions", ()) or ()), "conditional": conditional,
            "network": network_fingerprint(network)}


class FitProgress:
    """The lines a user sees while a grid is fitted (to ``stream``, stderr by default)."""

    def __init__(self, what: str, total: int, rows: int, where: Path | None, stream: TextIO | None = None):
        self.what, self.total, self.stream = what, total, stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.last = self.start
        self.estimated = False
        kept = f"; it is kept in {where} and reused" if where is not None else "; it is reused in this process"
        self._say(f"fitting the 'fitted' time grid for {what}: {total} model evaluations on {rows} pilot rows "
                  f"before sampling{kept}")

    def _say(self, text: str, end: str = "\n") -> None:
        print(text, end=end, file=self.stream, flush=True)

    def __call__(self, done: int) -> None:
        now = time.perf_counter()
        elapsed = now - self.start
        if not self.estimated and done >= 8 and elapsed > 0:
            self.estimated = True
            self._say(f"  fitted grid: about {_seconds(elapsed / done * self.total)} in all "
                      f"({elapsed / done:.3g} s per evaluation)")
        if now - self.last < (0.5 if self.tty else REPORT_EVERY) or done >= self.total:
            return
        self.last = now
        left = elapsed / done * (self.total - done)
        text = f"  fitted grid: {done}/{self.total} evaluations, {_seconds(elapsed)}, about {_seconds(left)} left"
        if self.tty:
            self._say(f"\r{text}   ", end="")
        else:
            self._say(text)

    def finish(self, times: list[float], where: Path | None) -> None:
        shown = ", ".join(f"{t:.4g}" for t in times)
        kept = f", kept in {where}" if where is not None else ""
        self._say(("\r" if self.tty else "") + f"fitted the time grid in {time.perf_counter() - self.start:.1f} s"
                  f"{kept}: t = [{shown}]")


def _seconds(value: float) -> str:
    return f"{value:.2g} s" if value < 10 else f"{value:.0f} s"


def _digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _read(path: Path, key: dict[str, Any]) -> tuple[int, list[float]] | None:
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("key") != key:
            return None
        return int(saved["pilot_rows"]), [float(t) for t in saved["times"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or unreadable: fit again


def _write(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(json.dumps(record, indent=2) + "\n")
    os.replace(name, path)


def fitted_times(velocity: Callable[[Tensor, Tensor], Tensor], x: Tensor, t_start: float, t_end: float,
                 steps: int, tableau: ButcherTableau, *, sampler: str, field: Any = None,
                 folder: str | Path | None = None, stream: TextIO | None = None) -> list[float]:
    """The ``fitted`` grid for ``sampler`` (its name, for the key and the messages): kept in this
    process and in ``folder`` when the ``field`` reveals its network, fitted otherwise."""
    rows = min(int(x.shape[0]), fg.FITTED_PILOT_BATCH)
    what = f"{sampler}, {steps} steps"
    base = field_key(field) if field is not None else None
    key = None if base is None else {**base, "sampler": sampler, "tableau": repr(tableau), "steps": steps,
                                     "t_start": float(t_start), "t_end": float(t_end),
                                     "fit": [fg.FITTED_REFERENCE_STEPS, fg.FITTED_SWEEPS, fg.FITTED_SECTIONS]}
    path = None
    if key is not None:
        digest = _digest(key)
        if folder is not None:
            path = Path(folder) / f"fitted-{sampler}-{steps}steps-{digest}.json"
        kept = _MEMORY.get(digest)
        if kept is not None and kept[0] >= rows:
            return list(kept[1])
        kept = _read(path, key) if path is not None else None
        if kept is not None and kept[0] >= rows:
            print(f"using the 'fitted' time grid kept in {path} (fitted on {kept[0]} pilot rows)",
                  file=stream or sys.stderr, flush=True)
            _remember(digest, kept)
            return list(kept[1])
    progress = FitProgress(what, fg.fitted_evaluations(steps, tableau.stages), rows, path, stream)
    times = fg.fitted_grid(velocity, x, t_start, t_end, steps, tableau, progress=progress)
    seconds = time.perf_counter() - progress.start
    if key is not None:
        _remember(digest, (rows, times))
        if path is not None:
            try:
                _write(path, {"key": key, "times": times, "pilot_rows": rows, "seconds": round(seconds, 3),
                              "evaluations": fg.fitted_evaluations(steps, tableau.stages)})
            except OSError as exc:  # a read-only run directory: keep it in memory only
                print(f"could not keep the fitted grid in {path}: {exc}", file=stream or sys.stderr)
                path = None
    progress.finish(times, path)
    return times


def _remember(digest: str, kept: tuple[int, list[float]]) -> None:
    if len(_MEMORY) >= _MEMORY_SIZE and digest not in _MEMORY:
        _MEMORY.pop(next(iter(_MEMORY)))
    _MEMORY[digest] = kept


def forget_fitted_grids() -> None:
    """Drop the grids kept in this process (files on disk stay)."""
    _MEMORY.clear()
