"""The ``reflow`` command: (x0, x1) pairs from a trained run for the next rectified-flow round
(docs/math.md section 5; :mod:`.pairs`), and the straightness of the run's paths.

    interpgen reflow RUN --num N [--steps K] [--sampler NAME] [--seed S] --output PAIRS.npz

Train the next round on the pairs with the ``paired`` coupling (docs/couplings.md).
"""

from __future__ import annotations

import argparse

from interpgen import hookimpl
from interpgen.registry import Registry


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory")
    p.add_argument("--num", type=int, required=True, help="number of pairs")
    p.add_argument("--steps", type=int, help="solver steps (default: the recipe's sampler)")
    p.add_argument("--sampler", help="an ODE sampler that reports its time grid: euler, heun, midpoint, rk4 "
                   "(on any grid), or a plugin's that does (dopri5 and SDE samplers are refused)")
    p.add_argument("--seed", type=int, help="random seed (default: the recipe's sample.seed)")
    p.add_argument("--output", required=True, help="where to write the pairs (.npz with x0, x1, shift, scale)")


def run(args: argparse.Namespace) -> int:
    """Prior draws and the run's ODE samples from them, in model space."""
    from interpgen.pipeline import Pipeline

    from .pairs import generate_pairs, save_pairs

    pipe = Pipeline.load(args.run)
    seed = args.seed if args.seed is not None else pipe.recipe.sample.seed
    pairs = generate_pairs(pipe, args.num, sampler=args.sampler, steps=args.steps, seed=seed)
    out = save_pairs(args.output, pairs, pipe.data_affine)
    print(f"wrote {pairs.x1.shape[0]} pairs to {out} ({pairs.nfe} network evaluations per sample); "
          f"straightness of the input model's paths: {pairs.straightness:.6g}")
    return 0


@hookimpl
def interpgen_register(registry: Registry) -> None:
    registry.add_command("reflow", run, configure=configure,
                         help="sample (x0, x1) pairs from a trained run for the next reflow round")
