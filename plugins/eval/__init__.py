"""The ``eval`` command: sample quality of a trained run against held-out data (:mod:`.evaluate`),
with the metrics of :mod:`.metrics`, the classifier Fréchet distance of
:mod:`.feature_classifier` and the FLOPs per sample of :mod:`.flops`.

    interpgen eval RUN [--num N] [--steps K] [--sampler NAME] [--seed S] [--json]
                       [--feature-net FILE] [--no-classifier]

Added through ``registry.add_command`` exactly as a third-party plugin adds a command.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from interpgen import hookimpl
from interpgen.registry import Registry


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory")
    p.add_argument("--num", type=int, help="number of samples (default: the held-out rows, or the recipe's sample.num)")
    p.add_argument("--steps", type=int, help="solver steps (default: the recipe's sampler)")
    p.add_argument("--sampler", help="sampler name, e.g. euler, heun, rk4, dopri5")
    p.add_argument("--seed", type=int, help="random seed (default: the recipe's sample.seed)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--feature-net", metavar="FILE", help="TorchScript feature extractor (e.g. your own Inception) "
                   "for a Fréchet distance in its feature space")
    p.add_argument("--no-classifier", action="store_true", help="skip the classifier Fréchet distance")


def run(args: argparse.Namespace) -> int:
    from .evaluate import EVAL_FILE, evaluate_run, format_report

    report = evaluate_run(args.run, num=args.num, steps=args.steps, sampler=args.sampler, seed=args.seed,
                          classifier=not args.no_classifier, feature_net=args.feature_net)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
        print(f"wrote {Path(args.run) / EVAL_FILE}")
    return 0


@hookimpl
def interpgen_register(registry: Registry) -> None:
    registry.add_command("eval", run, configure=configure,
                         help="compare a trained run's samples with held-out data; writes RUN/eval.json")
