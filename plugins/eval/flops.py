"""FLOPs per sample of a trained pipeline: encoder, decoder and model (one pass each) and the cost
of sampling at a step budget, ``NFE * F_model + F_decoder`` (docs/math.md section 4.7). Works for
any pipeline: the identity autoencoder costs nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

FLOPS_FILE = "flops.json"


def count_flops(fn: Callable[[], Any]) -> int:
    """Floating-point operations of ``fn()`` as counted by ``torch.utils.flop_counter``."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _parameters(module: Any) -> int:
    return sum(p.numel() for p in module.parameters()) if isinstance(module, nn.Module) else 0


def flops_report(pipe: Any, *, steps: int | None = 100, sampler: Any = None, batch: int = 4) -> dict[str, Any]:
    """FLOPs per sample split into encoder / decoder / latent model (one pass each), and the sampling
    cost at ``steps`` steps: ``NFE * latent_model + decoder``, with the NFE the sampler really uses
    (``steps`` times its evaluations per step, plus a final step where it has one; ``steps=None``:
    the sampler's own). Works for an observation-space pipeline too (encoder = decoder = 0).
    Parameter counts come flat, as ``parameters_<part>``."""
    ae = getattr(pipe, "autoencoder", None)
    data_shape = tuple(pipe.event_shape)
    latent_shape = tuple(getattr(pipe, "latent_shape", data_shape))
    net = pipe.network
    device = next(net.parameters(), torch.empty(0)).device
    x = torch.zeros(batch, *data_shape, device=device)
    z = torch.zeros(batch, *latent_shape, device=device)
    t = torch.full((batch,), 0.5, device=device)
    encoder = count_flops(lambda: ae.encode(x)) / batch if ae is not None else 0.0
    decoder = count_flops(lambda: ae.decode(z)) / batch if ae is not None else 0.0
    latent_model = count_flops(lambda: net(z, t)) / batch
    nfe = pipe.sample(1, sampler=sampler, steps=steps, seed=0).nfe
    steps = getattr(pipe.sampler_for(sampler, steps=steps), "steps", steps)
    steps = steps if steps is not None else "adaptive"  # a sampler that chooses its own steps
    enc_module = getattr(ae, "encoder", None)
    dec_module = getattr(ae, "decoder", None)
    return {
        "steps": steps,
        "nfe": int(nfe),
        "encoder": encoder,
        "decoder": decoder,
        "latent_model": latent_model,
        "sampling_per_sample": nfe * latent_model + decoder,
        "training_forward_per_sample": encoder + decoder + latent_model,
        "parameters_latent_model": _parameters(net),
        "parameters_encoder": _parameters(enc_module),
        "parameters_decoder": _parameters(dec_module),
        "parameters_autoencoder": _parameters(ae),
        "parameters_total": _parameters(net) + _parameters(ae),
    }


def write_flops(run_dir: str | Path, report: dict[str, Any]) -> Path:
    """Write ``report`` to ``RUN/flops.json``."""
    path = Path(run_dir) / FLOPS_FILE
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return path


def format_flops(report: dict[str, Any]) -> str:
    """One line per figure, e.g. ``latent model   1.23 MFLOP``."""
    def human(v: float) -> str:
        for unit, scale in (("GFLOP", 1e9), ("MFLOP", 1e6), ("kFLOP", 1e3)):
            if v >= scale:
                return f"{v / scale:.3g} {unit}"
        return f"{v:.3g} FLOP"

    return "\n".join([
        f"encoder (one pass)        {human(report['encoder'])}",
        f"decoder (one pass)        {human(report['decoder'])}",
        f"latent model (one pass)   {human(report['latent_model'])}",
        f"sampling, {report['steps']} steps ({report['nfe']} NFE)  {human(report['sampling_per_sample'])} per sample",
    ])

