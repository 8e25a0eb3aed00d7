"""``interpgen eval RUN``: sample quality of a trained run against held-out data.

The run's data source is rebuilt from its saved recipe (the data set's folder comes from the
checkpoint), samples are drawn in model space, and they are compared with the source's
``reference()`` rows (the held-out part of a finite data set, fresh draws of a synthetic one):

* ``metrics``: sliced Wasserstein-2, MMD^2 and energy distance (:mod:`.metrics`);
* ``baseline``: the same numbers for real data against the same reference (training rows, or a
  second fresh draw), i.e. what a perfect model would score at this sample size;
* ``classifier_frechet``: for labelled finite data, the squared Fréchet distance in the feature
  space of a small classifier trained on the data (:mod:`.feature_classifier`), with the
  classifier's held-out accuracy and a real-vs-real value (one random half of the reference rows
  against the other, next to the samples conditioned like the first half against the same
  other half, averaged over 20 cuts);
* ``feature_net_frechet``: with ``feature_net`` (a TorchScript file, e.g. an Inception network
  wrapped by the user), the same distance in its feature space.

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


def _reference(source: Any, num: int, generator: torch.Generator) -> tuple[Tensor, Tensor | None]:
    """``num`` reference rows with their labels (None without labels): distinct held-out rows of
    a finite source in random order, fresh draws of a synthetic one."""
    if not callable(getattr(source, "take", None)):
        return source.reference(num, generator=generator), None
    index = torch.randperm(source.part_size("heldout"), generator=generator)[:num]
    x, labels = source.take("heldout", index)
    return x, (labels if getattr(source, "num_classes", None) is not None else None)


def _sample_labels(labels: Tensor | None, num: int) -> Tensor | None:
    """Sample ``i`` is conditioned on the label of reference row ``i`` (cycled past the end), so
    the first rows of the samples and of the reference have the same classes."""
    if labels is None:
        return None
    return labels.repeat(num // labels.shape[0] + 1)[:num]


def _real_rows(source: Any, num: int, generator: torch.Generator) -> Tensor:
    """Real data other than the reference: training rows (finite) or a fresh draw (synthetic)."""
    if callable(getattr(source, "take", None)):
        n = source.part_size("train")
        index = torch.randperm(n, generator=generator)[: min(num, n)]
        return source.take("train", index)[0]
    return source.reference(num, generator=generator)


def _frechet(extract: Any, samples: Tensor, reference: Tensor, *, splits: int = 20, seed: int = 0) -> dict[str, Any]:
    """Squared Fréchet distances in the feature space of ``extract``.

    ``value``: all samples against all reference rows. ``baseline``: reference rows against
    reference rows, i.e. real data the feature classifier never saw (training rows would be a
    biased baseline: the classifier has learnt them): the reference is cut at random into halves
    A and B and the distance of A to B is averaged over ``splits`` cuts. ``matched``: over the
    same cuts, the samples with A's indices (conditioned on A's labels) against B: the number to
    put next to ``baseline``, at the same sample sizes (the distance is biased by sample size)."""
    from .feature_classifier import classifier_features

    ref = classifier_features(extract, reference)
    smp = classifier_features(extract, samples)
    report: dict[str, Any] = {"value": metrics.feature_frechet_distance(smp, ref)}
    n = ref.shape[0]
    half = n // 2
    if half >= 2 and smp.shape[0] >= n:
        generator = torch.Generator().manual_seed(seed)
        real, matched = [], []
        for _ in range(splits):
            order = torch.randperm(n, generator=generator)
            a, b = order[:half], order[half:]
            real.append(metrics.feature_frechet_distance(ref[a], ref[b]))
            matched.append(metrics.feature_frechet_distance(smp[a], ref[b]))
        report.update(matched=sum(matched) / splits, baseline=sum(real) / splits, half_size=half, splits=splits)
    return report


def evaluate(pipe: Any, source: Any, *, num: int | None = None, steps: int | None = None, sampler: Any = None,
             seed: int = 0, classifier: bool = True, feature_net: str | Path | None = None,
             cache: Path | None = None) -> dict[str, Any]:
    """The report sections for ``pipe`` against ``source`` (see the module docstring).

    ``num`` samples (default: the held-out part's size for finite data, ``recipe.sample.num``
    otherwise) are compared with as many reference rows (at most the held-out part)."""
    generator = torch.Generator().manual_seed(seed)
    if num is None:
        num = source.part_size("heldout") if callable(getattr(source, "part_size", None)) else 2000
    if not isinstance(num, int) or num < 2:
        raise ValueError(f"--num must be an integer >= 2, got {num!r}")
    ref_num = min(num, source.part_size("heldout")) if callable(getattr(source, "part_size", None)) else num
    reference, reference_labels = _reference(source, ref_num, generator)
    reference = reference.to(torch.float32)
    real = _real_rows(source, ref_num, generator).to(torch.float32)
    labels = _sample_labels(reference_labels, num)
    start = time.perf_counter()
    result = pipe.sample(num, sampler=sampler, steps=steps, seed=seed, labels=labels, data_space=False)
    samples, nfe = result.x, result.nfe
    seconds = time.perf_counter() - start
    samples = samples.to(torch.float32)
    finite = bool(torch.isfinite(samples).all())
    report: dict[str, Any] = {
        "sampling": {"sampler": type(pipe.sampler_for(sampler, steps=steps)).__name__, "steps": steps,
                     "num": num, "nfe_per_sample": nfe, "seconds": round(seconds, 3),
                     "conditional": labels is not None, "finite": finite},
        "reference": {"num": ref_num, "part": "heldout" if callable(getattr(source, "take", None)) else "fresh draw",
                      "space": "model"},
    }
    if not finite:
        samples = torch.nan_to_num(samples, nan=0.0, posinf=1e6, neginf=-1e6)
    report["metrics"] = {name: fn(samples, reference) for name, fn in SAMPLE_METRICS.items()}
    report["baseline"] = {name: fn(real, reference) for name, fn in SAMPLE_METRICS.items()}
    if classifier:
        if getattr(source, "num_classes", None) is None or not callable(getattr(source, "take", None)):
            report["classifier_frechet"] = {"skipped": "needs a finite data set with class labels"}
        else:
            from .feature_classifier import cached_classifier

            trained = cached_classifier(source, directory=cache)
            report["classifier_frechet"] = {**_frechet(trained.model, samples, reference, seed=seed),
                                            "classifier_test_accuracy": trained.test_accuracy,
                                            "classifier": str(trained.path), "from_cache": trained.from_cache}
    if feature_net is not None:
        net = load_feature_net(feature_net)
        report["feature_net_frechet"] = {**_frechet(net, samples, reference, seed=seed), "feature_net": str(feature_net)}
    from .flops import flops_report  # FLOPs per sample: encoder / decoder / model

    report["flops"] = flops_report(pipe, steps=steps, sampler=sampler)
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


def evaluate_run(run_dir: str | Path, *, num: int | None = None, steps: int | None = None, sampler: Any = None,
                 seed: int | None = None, classifier: bool = True, feature_net: str | Path | None = None,
                 registry: Registry | None = None, cache: Path | None = None, write: bool = True,
                 reference_run: str | Path | None = None, reference_data: Any = None) -> dict[str, Any]:
    """Load the run, evaluate it (see :func:`evaluate`) and write ``RUN/eval.json``. The reference
    is the run's own data, or another run's (``reference_run``, e.g. the original run of a reflow
    round) or a named data set (``reference_data``): :func:`.reference.reference_source`."""
    from interpgen.protocols import CheckpointError
    from interpgen.pipeline import Pipeline
    from interpgen.train import atomic_write_bytes
    from interpgen.plugin_manager import registry as default_registry

    run = Path(run_dir)
    if not run.is_dir():
        raise CheckpointError(f"run directory {run.resolve()} does not exist")
    reg = registry or default_registry()
    pipe = Pipeline.load(run, registry=reg)
    from .reference import reference_source

    source, reference_about = reference_source(pipe, reg, reference_run=reference_run, data=reference_data)
    seed = seed if seed is not None else int(pipe.recipe.sample.seed)
    if num is None and not callable(getattr(source, "part_size", None)):
        num = int(pipe.recipe.sample.num)
    report: dict[str, Any] = {"run": {"dir": str(run.resolve()), "step": int(pipe.step),
                                      "data": reg.entry_for(pipe.recipe.data).name, "seed": seed,
                                      "scored_against": reference_about}}
    report.update(evaluate(pipe, source, num=num, steps=steps, sampler=sampler, seed=seed,
                           classifier=classifier, feature_net=feature_net, cache=cache))
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
