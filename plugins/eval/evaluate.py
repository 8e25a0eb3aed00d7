"""``interpgen eval RUN``: sample quality of a trained run against held-out data.

The run's data source is rebuilt from its saved recipe (the data set's folder comes from the
checkpoint), samples are drawn in model space, and they are compared with reference rows (the
held-out part of a finite data set; its training rows, labelled so, when ``holdout = 0``; fresh
draws of a synthetic one):

* ``sampling``: the sampler's registered name, the steps it took, the network evaluations per
  sample (and the ``--nfe`` budget), the time;
* ``metrics``: sliced Wasserstein-2, MMD^2 and energy distance (:mod:`.metrics`), with ``sizes``;
* ``baseline``: the same numbers for real data against the same reference (training rows, or a
  second fresh draw), i.e. what a perfect model would score at these sizes;
* ``classifier_frechet``: for labelled finite data, the squared Fréchet distance in the feature
  space of a small classifier trained on the data (:mod:`.feature_classifier`), with the
  classifier's held-out accuracy: ``value`` (samples conditioned like a random half of the
  reference rows against the other half) and ``baseline`` (the first half against the other),
  at the same sizes and averaged over the same 20 cuts, and ``all_rows`` (every sample against
  every reference row), each with its sizes;
* ``feature_net_frechet``: with ``feature_net`` (a TorchScript file, e.g. an Inception network
  wrapped by the user), the same distances in its feature space.

The report is a dict of sections (``run``, ``sampling``, ``metrics``, ``baseline``, ...), so
further measures (e.g. FLOPs per sample) add a section of their own. It is written atomically to
``RUN/eval.json``.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import Tensor

from . import metrics
from interpgen.registry import Registry

EVAL_FILE = "eval.json"
#: Metrics of the ``metrics`` and ``baseline`` sections: name -> function of (x, y).
SAMPLE_METRICS: dict[str, Any] = {
    "sliced_wasserstein": lambda x, y: metrics.sliced_wasserstein(x, y, p=2),
    "mmd": metrics.mmd,
    "energy_distance": metrics.energy_distance,
}


def rebuild_data(pipe: Any, registry: Registry) -> Any:
    """The run's data source, built from the saved recipe with the run's data root."""
    spec = pipe.recipe.data
    entry = registry.entry_for(spec)
    if entry is None:
        raise ValueError("the run's data is not a registered data set; evaluate it from Python instead")
    source = entry.create(spec, root=pipe.root, registry=registry)
    if tuple(source.event_shape) != tuple(pipe.event_shape):
        raise ValueError(f"the data set now has event shape {tuple(source.event_shape)}, but the run was trained "
                         f"on {tuple(pipe.event_shape)}; has the data changed since training?")
    return source


def _no_heldout(source: Any) -> bool:
    """A finite source that holds no rows out (``holdout = 0``): its held-out part is its
    training part (a built-in finite data set then has ``heldout = None``)."""
    return callable(getattr(source, "take", None)) and getattr(source, "heldout", "") is None


def _rows(source: Any, num: int, generator: torch.Generator) -> tuple[Tensor, Tensor | None, Tensor, dict[str, str]]:
    """``(reference, its labels or None, real rows for the baseline, what each one is)``.

    Finite data: ``num`` distinct held-out rows in random order, and as many training rows for
    the baseline. With ``holdout = 0`` both come from the training rows, disjoint (at most half
    of them each), and are labelled so. Synthetic data: two fresh draws."""
    if not callable(getattr(source, "take", None)):
        reference = source.reference(num, generator=generator)
        return reference, None, source.reference(num, generator=generator), {
            "reference": "fresh draw", "baseline": "rows of a second fresh draw"}
    labelled = getattr(source, "num_classes", None) is not None
    n = source.part_size("train")
    if _no_heldout(source):
        order = torch.randperm(n, generator=generator)
        count = min(num, n // 2)
        x, labels = source.take("train", order[:count])
        return x, labels if labelled else None, source.take("train", order[count:2 * count])[0], {
            "reference": "training rows (holdout = 0: nothing is held out)", "baseline": "other training rows"}
    x, labels = source.take("heldout", torch.randperm(source.part_size("heldout"), generator=generator)[:num])
    real = source.take("train", torch.randperm(n, generator=generator)[: min(num, n)])[0]
    return x, labels if labelled else None, real, {"reference": "heldout", "baseline": "training rows"}


def _sample_labels(labels: Tensor | None, num: int) -> Tensor | None:
    """Sample ``i`` is conditioned on the label of reference row ``i`` (cycled past the end), so
    the first rows of the samples and of the reference have the same classes."""
    if labels is None:
        return None
    return labels.repeat(num // labels.shape[0] + 1)[:num]


def _frechet(extract: Any, samples: Tensor, reference: Tensor, *, splits: int = 20, seed: int = 0) -> dict[str, Any]:
    """Squared Fréchet distances in the feature space of ``extract``, each with the sizes it was
    computed at (the distance is biased upwards at small sizes, so only numbers at equal sizes
    compare).

    The reference is cut at random into halves A and B, ``splits`` times. ``value`` (the headline):
    the samples with A's indices (conditioned on A's labels) against B, averaged over the cuts.
    ``baseline``: A against B, real data against real data the feature classifier never saw
    (training rows would be a biased baseline: the classifier has learnt them), over the same
    cuts, so at the same sizes as ``value``. ``all_rows``: all samples against all reference rows.
    Too few rows to cut: ``value`` is the all-rows number and there is no baseline."""
    from .feature_classifier import classifier_features

    ref = classifier_features(extract, reference)
    smp = classifier_features(extract, samples)
    every = metrics.feature_frechet_distance(smp, ref)
    all_sizes = f"{smp.shape[0]} samples vs {ref.shape[0]} reference rows"
    n = ref.shape[0]
    half = n // 2
    if half < 2 or smp.shape[0] < n:
        return {"value": every, "sizes": all_sizes}
    generator = torch.Generator().manual_seed(seed)
    real, matched = [], []
    for _ in range(splits):
        order = torch.randperm(n, generator=generator)
        a, b = order[:half], order[half:]
        real.append(metrics.feature_frechet_distance(ref[a], ref[b]))
        matched.append(metrics.feature_frechet_distance(smp[a], ref[b]))
    return {"value": sum(matched) / splits, "baseline": sum(real) / splits,
            "sizes": f"{half} samples (baseline: {half} reference rows) vs the other {n - half} reference rows, "
                     f"mean over {splits} random halvings",
            "half_size": half, "splits": splits, "all_rows": every, "all_rows_sizes": all_sizes}


def _sampler(pipe: Any, sampler: Any, steps: int | None) -> tuple[Any, str]:
    """The sampler's params (``steps`` folded in) and its registered name."""
    from interpgen.pipeline import part

    spec = pipe.sampler if sampler is None else sampler
    if isinstance(spec, str):
        spec = part("sampler", spec, pipe.registry)
    if steps is not None:
        pipe.sampler_for(spec, steps=steps)  # refuses a step count for an adaptive sampler
        spec = attrs.evolve(spec, steps=steps)
    entry = pipe.registry.entry_for(spec)
    return spec, entry.name if entry is not None else type(spec).__name__


def evaluate(pipe: Any, source: Any, *, num: int | None = None, steps: int | None = None, sampler: Any = None,
             seed: int = 0, guidance: float | None = None, classifier: bool = True,
             feature_net: str | Path | None = None, cache: Path | None = None,
             nfe_budget: int | None = None) -> dict[str, Any]:
    """The report sections for ``pipe`` against ``source`` (see the module docstring).

    ``num`` samples (default: the held-out part's size for finite data, ``recipe.sample.num``
    otherwise) are compared with as many reference rows (at most the held-out part). ``sampler``:
    params or a registered name (default: the recipe's), ``steps`` replacing its own;
    ``guidance``: classifier-free guidance for a class-conditional model (None or 1: none)."""
    generator = torch.Generator().manual_seed(seed)
    if num is None:
        num = source.part_size("heldout") if callable(getattr(source, "part_size", None)) else 2000
    if isinstance(num, bool) or not isinstance(num, int) or num < 2:
        raise ValueError(f"--num must be an integer >= 2, got {num!r}")
    spec, name = _sampler(pipe, sampler, steps)
    reference, reference_labels, real, parts = _rows(source, num, generator)
    reference, real = reference.to(torch.float32), real.to(torch.float32)
    ref_num = reference.shape[0]
    labels = _sample_labels(reference_labels, num)
    guided = guidance if guidance is not None and guidance != 1.0 else None
    start = time.perf_counter()
    result = pipe.sample(num, sampler=spec, seed=seed, labels=labels, guidance=guided, data_space=False)
    samples, nfe = result.x, result.nfe
    seconds = time.perf_counter() - start
    samples = samples.to(torch.float32)
    finite = bool(torch.isfinite(samples).all())
    used = getattr(spec, "steps", None)
    report: dict[str, Any] = {
        "sampling": {"sampler": name, "steps": used if used is not None else "adaptive", "num": num,
                     "nfe_per_sample": nfe, **({"nfe_budget": nfe_budget} if nfe_budget is not None else {}),
                     "seconds": round(seconds, 3), "conditional": labels is not None,
                     **({"guidance": guided or 1.0} if labels is not None else {}), "finite": finite},
        "reference": {"num": ref_num, "part": parts["reference"], "space": "model"},
    }
    if not finite:
        samples = torch.nan_to_num(samples, nan=0.0, posinf=1e6, neginf=-1e6)
    report["metrics"] = {**{key: fn(samples, reference) for key, fn in SAMPLE_METRICS.items()},
                         "sizes": f"{num} samples vs {ref_num} reference rows"}
    report["baseline"] = {**{key: fn(real, reference) for key, fn in SAMPLE_METRICS.items()},
                          "sizes": f"{real.shape[0]} {parts['baseline']} vs {ref_num} reference rows"}
    if classifier:
        if getattr(source, "num_classes", None) is None or not callable(getattr(source, "take", None)):
            report["classifier_frechet"] = {"skipped": "needs a finite data set with class labels"}
        else:
            from .feature_classifier import cached_classifier

            trained = cached_classifier(source, directory=cache)
            accuracy = "classifier_train_accuracy" if _no_heldout(source) else "classifier_test_accuracy"
            report["classifier_frechet"] = {**_frechet(trained.model, samples, reference, seed=seed),
                                            accuracy: trained.test_accuracy,
                                            "classifier": str(trained.path), "from_cache": trained.from_cache}
    if feature_net is not None:
        net = load_feature_net(feature_net)
        report["feature_net_frechet"] = {**_frechet(net, samples, reference, seed=seed), "feature_net": str(feature_net)}
    from .flops import flops_report  # FLOPs per sample: encoder / decoder / model

    report["flops"] = flops_report(pipe, steps=None, sampler=spec)
    return report


def load_feature_net(path: str | Path) -> torch.nn.Module:
    """A user-supplied TorchScript feature extractor (``torch.jit.save``): called on model-space
    batches ``(B, *event)`` (images in [-1, 1]), it returns ``(B, F)`` features. Nothing is
    downloaded: wrap your own Inception weights (resizing and normalisation included) this way."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"feature network {file.resolve()} does not exist")
    try:
        with warnings.catch_warnings():  # torch deprecates TorchScript, but it is what users have
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(file), map_location="cpu").eval()
    except Exception as exc:
        raise ValueError(f"{file.resolve()} is not a TorchScript feature network (save one with "
                         f"torch.jit.save(torch.jit.script(net), path)): {type(exc).__name__}: {exc}") from None


def load_run(run_dir: str | Path, registry: Registry | None = None) -> Any:
    """The trained pipeline of ``run_dir`` (a CheckpointError names a missing folder)."""
    from interpgen.pipeline import Pipeline
    from interpgen.protocols import CheckpointError

    run = Path(run_dir)
    if not run.is_dir():
        raise CheckpointError(f"run directory {run.resolve()} does not exist")
    return Pipeline.load(run, registry=registry)


def evaluate_run(run_dir: str | Path, *, num: int | None = None, steps: int | None = None, sampler: Any = None,
                 seed: int | None = None, guidance: float | None = None, classifier: bool = True,
                 feature_net: str | Path | None = None, registry: Registry | None = None, cache: Path | None = None,
                 write: bool = True, pipe: Any = None, nfe_budget: int | None = None,
                 reference_run: str | Path | None = None, reference_data: Any = None) -> dict[str, Any]:
    """Load the run (or take ``pipe``, loaded from it), evaluate it (see :func:`evaluate`) and write
    ``RUN/eval.json``. The reference is the run's own data, or another run's (``reference_run``, e.g.
    the original run of a reflow round) or a named data set (``reference_data``):
    :func:`.reference.reference_source`."""
    from interpgen.plugin_manager import registry as default_registry
    from interpgen.train import atomic_write_bytes

    from .reference import reference_source

    run = Path(run_dir)
    pipe = pipe if pipe is not None else load_run(run, registry)
    reg = registry or pipe.registry or default_registry()
    source, reference_about = reference_source(pipe, reg, reference_run=reference_run, data=reference_data)
    seed = seed if seed is not None else int(pipe.recipe.sample.seed)
    if num is None and not callable(getattr(source, "part_size", None)):
        num = int(pipe.recipe.sample.num)
    report: dict[str, Any] = {"run": {"dir": str(run.resolve()), "step": int(pipe.step),
                                      "data": reg.entry_for(pipe.recipe.data).name, "seed": seed,
                                      "scored_against": reference_about}}
    report.update(evaluate(pipe, source, num=num, steps=steps, sampler=sampler, seed=seed, guidance=guidance,
                           classifier=classifier, feature_net=feature_net, cache=cache, nfe_budget=nfe_budget))
    if write:
        atomic_write_bytes(run / EVAL_FILE, (json.dumps(report, indent=2) + "\n").encode())
    return report


def format_report(report: dict[str, Any]) -> str:
    """A plain-text table: one line per number, grouped by section."""
    lines = []
    for section, values in report.items():
        if not isinstance(values, dict):
            continue
        lines.append(f"[{section}]")
        for key, value in values.items():
            text = f"{value:.6g}" if isinstance(value, float) else str(value)
            lines.append(f"  {key:<26} {text}")
    return "\n".join(lines)
