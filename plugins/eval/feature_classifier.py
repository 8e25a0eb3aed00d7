"""A small classifier trained on a data set, whose penultimate layer gives the features of the
classifier Fréchet distance (``interpgen eval``).

Inception FID needs weights that no PyPI package ships; a classifier trained on the data set
itself is an offline stand-in: samples whose features have the held-out data's mean and
covariance score near the real-vs-real value. The classifier is trained once per data set on its
training part (seeded, a few epochs), its accuracy on the held-out part is reported next to the
distance (a classifier that cannot tell the classes apart gives meaningless features), and it is
cached under ``$INTERPGEN_CACHE/classifiers/<hash>.pt`` (default ``~/.cache/interpgen``), keyed by
a hash of the data, the labels and the training settings, written atomically.

The data source must be a finite, labelled one that offers ``take(part, index)`` and
``part_size(part)`` for ``part`` in ``("train", "heldout")`` (the built-in finite data sets do).
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from interpgen.train import atomic_write_bytes

#: Bump when the architecture or training changes, so old cache entries are not reused.
CLASSIFIER_VERSION = "interpgen-feature-classifier-1"


class ClassifierSettings(NamedTuple):
    """How the feature classifier is trained."""

    epochs: int = 15
    batch_size: int = 64
    lr: float = 2e-3
    width: int = 32
    features: int = 64
    seed: int = 0


class FeatureClassifier(nn.Module):
    """Images ``(C, H, W)``: three 3x3 convolutions (the last two with stride 2), global average
    pooling, a linear layer to ``features`` (the penultimate layer) and a linear read-out.
    Vectors ``(D,)`` (or any other shape, flattened): a two-layer MLP to ``features`` and the
    read-out."""

    def __init__(self, event_shape: tuple[int, ...], num_classes: int, *, width: int = 32, features: int = 64):
        super().__init__()
        self.event_shape = tuple(event_shape)
        if len(self.event_shape) == 3:
            channels = self.event_shape[0]
            self.body = nn.Sequential(
                nn.Conv2d(channels, width, 3, padding=1), nn.SiLU(),
                nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.SiLU(),
                nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1), nn.SiLU(),
                nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                nn.Linear(2 * width, features), nn.SiLU(),
            )
        else:
            size = 1
            for n in self.event_shape:
                size *= n
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(size, 4 * width), nn.SiLU(),
                                      nn.Linear(4 * width, features), nn.SiLU())
        self.head = nn.Linear(features, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """The penultimate layer, ``(B, features)``."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


class TrainedClassifier(NamedTuple):
    """A feature classifier with its held-out accuracy and where it is cached."""

    model: FeatureClassifier
    test_accuracy: float
    path: Path | None
    from_cache: bool


def cache_dir() -> Path:
    """``$INTERPGEN_CACHE/classifiers``, default ``~/.cache/interpgen/classifiers``."""
    base = os.environ.get("INTERPGEN_CACHE")
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "interpgen") / "classifiers"


def _require_labelled(source: Any) -> None:
    if getattr(source, "num_classes", None) is None:
        raise ValueError("the classifier Fréchet distance needs class labels, and this data set has none")
    for method in ("take", "part_size"):
        if not callable(getattr(source, method, None)):
            raise ValueError(f"the classifier Fréchet distance needs a finite data set with {method}(); "
                             f"{type(source).__name__} has none")


def data_key(source: Any, settings: ClassifierSettings) -> str:
    """SHA-256 over the classifier version, the settings, and the rows and labels of both parts."""
    digest = hashlib.sha256()
    digest.update(repr((CLASSIFIER_VERSION, tuple(settings), tuple(source.event_shape), source.num_classes)).encode())
    for part in ("train", "heldout"):
        x, labels = source.take(part)
        digest.update(part.encode())
        digest.update(x.detach().to(torch.float32).contiguous().numpy().tobytes())
        digest.update(labels.to(torch.int64).contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


@torch.no_grad()
def accuracy(model: FeatureClassifier, source: Any, part: str = "heldout", batch_size: int = 512) -> float:
    """Fraction of the rows of ``part`` classified correctly."""
    model.eval()
    n, correct = source.part_size(part), 0
    for start in range(0, n, batch_size):
        x, labels = source.take(part, torch.arange(start, min(n, start + batch_size)))
        correct += int((model(x.to(torch.float32)).argmax(dim=1) == labels).sum())
    return correct / n


def train_classifier(source: Any, settings: ClassifierSettings = ClassifierSettings()) -> FeatureClassifier:
    """Train on the training part with Adam and cross-entropy, in shuffled epochs drawn from a
    generator seeded with ``settings.seed`` (the global random state is left alone)."""
    _require_labelled(source)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        model = FeatureClassifier(tuple(source.event_shape), int(source.num_classes),
                                  width=settings.width, features=settings.features)
    generator = torch.Generator().manual_seed(settings.seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.lr)
    n = source.part_size("train")
    model.train()
    for _ in range(settings.epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, settings.batch_size):
            x, labels = source.take("train", order[start:start + settings.batch_size])
            loss = nn.functional.cross_entropy(model(x.to(torch.float32)), labels)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return model.eval()


def cached_classifier(source: Any, settings: ClassifierSettings = ClassifierSettings(), *,
                      directory: Path | None = None) -> TrainedClassifier:
    """The feature classifier of ``source``: loaded from the cache when a matching one exists,
    otherwise trained, tested on the held-out part and saved (atomically)."""
    _require_labelled(source)
    folder = Path(directory) if directory is not None else cache_dir()
    path = folder / f"{data_key(source, settings)}.pt"
    model = FeatureClassifier(tuple(source.event_shape), int(source.num_classes),
                              width=settings.width, features=settings.features)
    if path.is_file():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict(state["model"])
            return TrainedClassifier(model.eval(), float(state["test_accuracy"]), path, True)
        except Exception:  # a damaged cache entry is retrained and overwritten
            pass
    model = train_classifier(source, settings)
    test_accuracy = accuracy(model, source, "heldout")
    buffer = io.BytesIO()
    torch.save({"version": CLASSIFIER_VERSION, "model": model.state_dict(), "test_accuracy": test_accuracy,
                "settings": dict(settings._asdict())}, buffer)
    atomic_write_bytes(path, buffer.getvalue())
    return TrainedClassifier(model, test_accuracy, path, False)


@torch.no_grad()
def classifier_features(model: nn.Module, x: Tensor, batch_size: int = 512) -> Tensor:
    """Penultimate-layer features of ``x`` (model space), in batches."""
    model.eval()
    extract = model.features if hasattr(model, "features") else model
    parts = [extract(chunk.to(torch.float32)).reshape(chunk.shape[0], -1) for chunk in x.split(batch_size)]
    return torch.cat(parts)
