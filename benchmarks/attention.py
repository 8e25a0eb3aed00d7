"""Forward + backward of a stack of DiT blocks with each attention backend (docs/networks.md).

    python benchmarks/attention.py                                   # DiT-XL/2 blocks, 32x32 latents, CUDA
    python benchmarks/attention.py --device cpu --size S --depth 2 --latent 8 --batch 2 --steps 2

The blocks are those of the ``dit`` network (plugins/networks/dit.py) built for latents of shape
``(4, latent, latent)`` with the given size and patch (XL/2 on 32x32 latents, i.e. 256x256 images
through an 8x downsampling autoencoder, gives 256 tokens of width 1152), cast to ``--dtype``
(bf16 by default). Their adaLN-Zero modulations are given random weights so that every branch
contributes (at initialisation each block is the identity). One step is

    h = blocks(tokens, c);  loss = mean(h^2);  loss.backward()

and the script reports, per backend, the median step time, tokens per second
(``batch * tokens / step time``), the peak memory allocated during the timed steps (CUDA only;
``-`` on CPU) and the largest difference of the first forward output from the ``sdpa`` one.
A backend that cannot run here (xformers without CUDA or not installed) is listed with the reason.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from interpgen.plugin_manager import registry as default_registry
from interpgen_plugins.networks.attention import attention_backend
from interpgen_plugins.networks.dit import DiTParams, build_dit

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def make_blocks(args: argparse.Namespace, backend: str, device: torch.device, dtype: torch.dtype):
    params = DiTParams(size=args.size, patch=args.patch, depth=args.depth, attention=backend)
    shape = (4, args.latent, args.latent)
    torch.manual_seed(0)
    net = build_dit(params, in_shape=shape, out_shape=shape, num_classes=1000, registry=default_registry())
    with torch.no_grad():
        for block in net.blocks:
            block.modulation.weight.normal_(std=0.02)
            block.modulation.bias.normal_(std=0.1)
    net = net.to(device=device, dtype=dtype)
    tokens = (args.latent // args.patch) ** 2
    width = params.dimensions()[1]
    g = torch.Generator(device="cpu").manual_seed(1)
    h = torch.randn(args.batch, tokens, width, generator=g).to(device=device, dtype=dtype).requires_grad_(True)
    c = torch.randn(args.batch, width, generator=g).to(device=device, dtype=dtype)
    return net.blocks, h, c, tokens


def run_blocks(blocks, h, c):
    for block in blocks:
        h = block(h, c)
    return h


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(args: argparse.Namespace, backend: str, device: torch.device, dtype: torch.dtype,
          reference: torch.Tensor | None) -> tuple[dict, torch.Tensor | None]:
    try:
        attend = attention_backend(backend, default_registry())
        probe = torch.zeros(1, 1, 8, 8, device=device, dtype=dtype)
        attend(probe, probe, probe)
    except Exception as exc:  # noqa: BLE001 - report why a backend cannot run here
        return {"backend": backend, "skipped": f"{type(exc).__name__}: {exc}"}, None
    blocks, h, c, tokens = make_blocks(args, backend, device, dtype)
    out = run_blocks(blocks, h, c)
    first = out.detach().float().cpu()
    diff = None if reference is None else float((first - reference).abs().max())

    def step() -> float:
        synchronize(device)
        started = time.perf_counter()
        run_blocks(blocks, h, c).float().square().mean().backward()
        synchronize(device)
        h.grad = None
        for p in blocks.parameters():
            p.grad = None
        return time.perf_counter() - started

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = statistics.median(step() for _ in range(args.steps))
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    used = getattr(attend, "backend_for", None)
    result = {
        "backend": backend,
        "runs_as": used(h.detach()[:, None]).name if used else getattr(attend, "name", backend),
        "step_ms": seconds * 1e3,
        "tokens_per_s": args.batch * tokens / seconds,
        "peak_mib": peak,
        "max_abs_diff_vs_sdpa": diff,
    }
    return result, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", default="XL", choices=["S", "B", "L", "XL"])
    parser.add_argument("--patch", type=int, default=2)
    parser.add_argument("--depth", type=int, default=None, help="blocks to stack (default: the size's depth)")
    parser.add_argument("--latent", type=int, default=32, help="latent side (4 channels)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--dtype", default="bf16", choices=list(DTYPES))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--backends", default="sdpa,math,xformers,auto")
    parser.add_argument("--threads", type=int, default=1, help="CPU intra-op threads")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if "sdpa" in backends:  # the reference for the difference column runs first
        backends.remove("sdpa")
        backends.insert(0, "sdpa")
    results, reference = [], None
    for backend in backends:
        result, out = bench(args, backend, device, dtype, reference)
        if backend == "sdpa":
            reference = out
        results.append(result)
    depth, width, heads = DiTParams(size=args.size, depth=args.depth).dimensions()
    setup = (f"DiT-{args.size}/{args.patch} blocks (depth {depth}, width {width}, heads {heads}), latents "
             f"4x{args.latent}x{args.latent} ({(args.latent // args.patch) ** 2} tokens), batch {args.batch}, "
             f"{args.dtype}, device {device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    if args.json:
        print(json.dumps({"setup": setup, "results": results}, indent=2))
        return
    print(setup)
    print("| backend | runs as | step (ms) | tokens / s | peak memory (MiB) | max abs diff vs sdpa |")
    print("|---|---|---|---|---|---|")
    for r in results:
        if "skipped" in r:
            print(f"| {r['backend']} | skipped: {r['skipped']} | | | | |")
            continue
        peak = f"{r['peak_mib']:.0f}" if r["peak_mib"] is not None else "-"
        diff = f"{r['max_abs_diff_vs_sdpa']:.3g}" if r["max_abs_diff_vs_sdpa"] is not None else "-"
        print(f"| {r['backend']} | {r['runs_as']} | {r['step_ms']:.1f} | {r['tokens_per_s']:.0f} | {peak} | {diff} |")


if __name__ == "__main__":
    main()
