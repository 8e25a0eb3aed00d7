"""Parameters and forward FLOPs of the built-in networks at the recipe sizes (docs/networks.md).

    python benchmarks/network_flops.py            # the markdown table
    python benchmarks/network_flops.py --time     # plus CPU training-step times of the small models

FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` on one forward pass and divided
by the batch size: every multiply-accumulate of a matmul or convolution counts 2 FLOPs (the
DiT paper's "Gflops" column counts multiply-accumulates, i.e. half of this). Element-wise work
(norms, activations, softmax) is not counted. The networks are built with the ``math`` attention
backend so the attention matmuls are visible to the counter (the count is the same for every
backend). ``--time`` measures forward + backward + Adam step at batch 128 with one intra-op
thread, the models interleaved, and reports the median.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import attrs
import torch
from torch.utils.flop_counter import FlopCounterMode

from interpgen.plugin_manager import registry as default_registry
from interpgen_plugins.networks.dit import DiTParams
from interpgen_plugins.networks.mlp import MLPParams
from interpgen_plugins.networks.unet import UNetParams

FACES = UNetParams(channels=16, channel_mult=(1, 2, 2))
CIFAR_CPU = UNetParams(channels=32, channel_mult=(1, 2, 2, 2), attention_resolutions=(16,))
CIFAR_DDPM = UNetParams(channels=128, channel_mult=(1, 2, 2, 2), blocks=2, attention_resolutions=(16,),
                        dropout=0.1)


@attrs.frozen
class Case:
    label: str
    network: str
    params: Any
    shape: tuple[int, ...]
    num_classes: int | None
    timed: bool = False


CASES = [
    Case("mlp (hidden 256, depth 4): 2-D", "mlp", MLPParams(hidden=256, depth=4), (2,), None, True),
    Case("unet defaults: digits", "unet", UNetParams(), (1, 8, 8), 10, True),
    Case("unet (16, (1,2,2)): faces", "unet", FACES, (1, 24, 24), None, True),
    Case("unet (16, (1,2,2)): faces", "unet", FACES, (1, 25, 25), None, True),
    Case("unet (32, (1,2,2,2), attn 16): CIFAR-10", "unet", CIFAR_CPU, (3, 32, 32), 10),
    Case("unet DDPM-size (128, (1,2,2,2), 2 blocks, attn 16): CIFAR-10", "unet", CIFAR_DDPM, (3, 32, 32), 10),
    Case("dit S/2: latents", "dit", DiTParams(size="S", patch=2), (4, 32, 32), 1000),
    Case("dit B/2: latents", "dit", DiTParams(size="B", patch=2), (4, 32, 32), 1000),
    Case("dit S/2: latents", "dit", DiTParams(size="S", patch=2), (4, 8, 8), 10),
    Case("dit B/2: latents", "dit", DiTParams(size="B", patch=2), (4, 8, 8), 10),
]


def build(case: Case) -> torch.nn.Module:
    params = case.params
    if hasattr(params, "attention"):
        params = attrs.evolve(params, attention="math")
    reg = default_registry()
    return reg.create("network", case.network, params, in_shape=case.shape, out_shape=case.shape,
                      num_classes=case.num_classes, event_shape=case.shape, registry=reg)


def example(case: Case, batch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, *case.shape, generator=g)
    t = torch.rand(batch, generator=g)
    labels = torch.randint(0, case.num_classes, (batch,), generator=g) if case.num_classes else None
    return x, t, labels


def forward_flops(net: torch.nn.Module, case: Case, batch: int = 2) -> float:
    x, t, labels = example(case, batch)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(x, t, labels)
    return counter.get_total_flops() / batch


def step_times(nets: dict[int, torch.nn.Module], cases: list[Case], *, batch: int, repeats: int) -> dict[int, float]:
    optims = {i: torch.optim.Adam(net.parameters(), 1e-3) for i, net in nets.items()}
    data = {i: example(cases[i], batch) for i in nets}

    def step(i: int) -> float:
        x, t, labels = data[i]
        started = time.perf_counter()
        optims[i].zero_grad()
        (nets[i](x, t, labels) - x).pow(2).mean().backward()
        optims[i].step()
        return time.perf_counter() - started

    for i in nets:
        for _ in range(3):
            step(i)
    samples: dict[int, list[float]] = {i: [] for i in nets}
    for _ in range(repeats):
        for i in nets:
            samples[i].append(step(i))
    return {i: statistics.median(s) for i, s in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--time", action="store_true", help="also time training steps of the small models")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rows, timed = [], {}
    for i, case in enumerate(CASES):
        net = build(case)
        count = sum(p.numel() for p in net.parameters())
        rows.append((case, count, forward_flops(net, case)))
        if args.time and case.timed:
            timed[i] = net
    times = step_times(timed, CASES, batch=args.batch, repeats=args.repeats) if timed else {}
    header = "| network | input | classes | parameters | forward GFLOPs / sample |"
    if times:
        header += f" train step, batch {args.batch}, 1 thread (ms) |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for i, (case, count, flops) in enumerate(rows):
        shape = "x".join(map(str, case.shape))
        line = f"| {case.label} | {shape} | {case.num_classes or '-'} | {count / 1e6:.3f} M | {flops / 1e9:.4g} |"
        if times:
            line += f" {times[i] * 1e3:.1f} |" if i in times else " |"
        print(line)


if __name__ == "__main__":
    main()
