"""The ``eval`` command: sample quality of a trained run against held-out data (:mod:`.evaluate`),
with the metrics of :mod:`.metrics`, the classifier Fréchet distance of
:mod:`.feature_classifier` and the FLOPs per sample of :mod:`.flops`.

    interpgen eval RUN [--num N] [--steps K | --nfe N] [--sampler NAME] [--seed S] [--guidance W]
                       [--set sample.KEY=VALUE ...] [--json] [--feature-net FILE] [--no-classifier]

The sampling options are ``interpgen sample``'s (:func:`interpgen.cli.sampling_arguments`).
Added through ``registry.add_command`` exactly as a third-party plugin adds a command.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from interpgen import hookimpl
from interpgen.registry import Registry


def configure(p: argparse.ArgumentParser) -> None:
    from interpgen.cli import sampling_arguments

    sampling_arguments(p, num_help="number of samples (default: the held-out rows, or the recipe's sample.num)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--feature-net", metavar="FILE", help="TorchScript feature extractor (e.g. your own Inception) "
                   "for a Fréchet distance in its feature space")
    p.add_argument("--no-classifier", action="store_true", help="skip the classifier Fréchet distance")
    reference = p.add_mutually_exclusive_group()
    reference.add_argument("--reference-run", metavar="RUN", help="score against another run's data, e.g. the "
                           "original run of a reflow round")
    reference.add_argument("--reference-data", metavar="NAME", help="score against a named data set")


def run(args: argparse.Namespace) -> int:
    from interpgen.cli import sampling_settings

    from .evaluate import EVAL_FILE, evaluate_run, format_report, load_run

    pipe = load_run(args.run)
    choice = sampling_settings(pipe, args, labels=pipe.sampling_labels(1))
    report = evaluate_run(args.run, pipe=pipe, num=choice.settings.num if "num" in choice.given else None,
                          sampler=choice.settings.sampler, seed=choice.settings.seed,
                          guidance=choice.settings.guidance, nfe_budget=choice.budget,
                          classifier=not args.no_classifier, feature_net=args.feature_net,
                          reference_run=args.reference_run, reference_data=args.reference_data)
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
