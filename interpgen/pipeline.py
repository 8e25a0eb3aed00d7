"""The Python API: put parts together, train, sample, compute log-likelihoods (docs/guide.md).

A part is a registered part's params (from :func:`part` or a recipe), built with the run's
context, or the user's own object that follows the protocol. Every pipeline has an autoencoder
(``identity`` by default) and an objective (``si`` by default): the model lives in the
autoencoder's latent space (``latent_shape``; the data space for the identity) and the objective
decides the loss and how the network is read as a field, so a latent model is this same class::

    pipe = ig.Pipeline(data=ig.part("dataset", "moons"), prior=MyPrior())
    pipe.fit(ig.Train(steps=2000))
    x = pipe.sample(1000, sampler=ig.part("sampler", "heun", steps=8)).x
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import Tensor, nn

from interpgen.config import USER_PART, RecipeConverter
from interpgen.plugin_manager import registry as default_registry
from interpgen.protocols import (Batch, CheckpointError, Coupling, DataSource, Field, Interpolant, Objective, Prior,
                                 Sampler)
from interpgen.recipe import DEFAULT_PARTS, Recipe, Sample, Train, dump_recipe, resolve, structure_recipe
from interpgen.registry import Registry

RECIPE = "recipe.toml"  # the resolved recipe in a run directory
#: The part keys of a recipe, in the order they are built.
PART_KEYS = ("data", "autoencoder", "prior", "interpolant", "coupling", "objective", "network")


def part(kind: str, name: str, /, registry: Registry | None = None, **params: Any) -> Any:
    """The params of registered part ``name`` of ``kind``, checked as strictly as a recipe."""
    reg = registry or default_registry()
    return RecipeConverter(reg).structure_part(kind, {"name": name, **params}, path=kind)


@attrs.frozen
class Samples:
    """:meth:`Pipeline.sample`'s result: ``x`` ``(num, *shape)``, network evaluations per sample, labels."""

    x: Tensor
    nfe: int
    labels: Tensor | None = None


class Pipeline:
    """A model in the making: data, autoencoder, prior, interpolant, coupling, objective, network.

    ``seed`` fixes the initial weights (networks, learnable priors, autoencoders); None leaves
    torch's global random state to decide. The global state is left as it was."""

    def __init__(self, *, data: Any, prior: Any = None, interpolant: Any = None, coupling: Any = None,
                 network: Any = None, autoencoder: Any = None, objective: Any = None, sampler: Any = None,
                 registry: Registry | None = None, root: str | Path | None = None, seed: int | None = 0,
                 train: Train | None = None):
        self.registry = reg = registry or default_registry()
        given = {"data": data, "prior": prior, "interpolant": interpolant, "coupling": coupling,
                 "network": network, "autoencoder": autoencoder, "objective": objective}
        specs = {key: value if value is not None else part(key, DEFAULT_PARTS[key]["name"], reg)
                 for key, value in given.items()}
        if sampler is None:
            sampler = part("sampler", DEFAULT_PARTS["sample"]["sampler"]["name"], reg)
        self.recipe = Recipe(**specs, train=train or Train(), sample=Sample(sampler=sampler))
        self.root = Path(root) if root is not None else Path.cwd()
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            self._setup()

    def _setup(self) -> None:
        recipe, reg = self.recipe, self.registry
        self.data: DataSource = self._build(recipe.data, root=self.root)
        self.event_shape = tuple(self.data.event_shape)
        context = {"event_shape": self.event_shape, "num_classes": self.data.num_classes, "registry": reg,
                   "root": self.root}
        self.autoencoder = self._build(recipe.autoencoder, **context)
        self.latent_shape = tuple(self.autoencoder.latent_shape(self.event_shape))
        context["event_shape"] = self.latent_shape
        self.prior: Prior = self._build(recipe.prior, **context)
        self.interpolant: Interpolant = self._build(recipe.interpolant, **context)
        self.coupling: Coupling = self._build(recipe.coupling, **context)
        objective = self._build(recipe.objective, prior=self.prior, **context).resolve(self.interpolant)
        self.recipe = attrs.evolve(recipe, objective=objective)
        self.objective: Objective = objective
        shape = self.latent_shape
        self.network: nn.Module = self._build(recipe.network, in_shape=shape,
                                              out_shape=(shape[0] * objective.heads, *shape[1:]), **context)
        self.ema: nn.Module | None = None
        self.sampler = recipe.sample.sampler
        self.data_affine, self.data_range = self.data.data_affine(), getattr(self.data, "normalised_range", None)
        self.step, self.run_dir = 0, None  # run_dir: the run directory load() read
        self._check_compatible()

    def _build(self, spec: Any, **context: Any) -> Any:
        entry = self.registry.entry_for(spec)
        return entry.create(spec, **context) if entry is not None else spec

    def _check_compatible(self) -> None:
        """Parts that constrain the others say so through ``check_compatible(**parts)`` (e.g. the
        mirror interpolant, the schrodinger_bridge coupling); then the objective's ``setup``."""
        for built in (self.interpolant, self.coupling, self.prior):
            check = getattr(built, "check_compatible", None)
            if callable(check):
                check(interpolant=self.interpolant, prior=self.prior, data=self.data)
        self.objective.setup(self)
        self.check_sampler(self._build(self.sampler))

    def check_sampler(self, sampler: Any) -> None:
        """An SDE sampler needs a score: say so before anything runs."""
        if getattr(sampler, "stochastic", False) and "score" not in self.field().available():
            raise ValueError(
                f"sampler {type(sampler).__name__} integrates an SDE and needs the score, which this model "
                "cannot give with this prior and interpolant: train a score (prediction = \"velocity+score\"), "
                "use a standard Gaussian prior, or choose an ODE sampler (euler, heun, rk4, dopri5)")

    @classmethod
    def from_recipe(cls, recipe: Recipe, *, registry: Registry | None = None, root: str | Path | None = None) -> Pipeline:
        recipe = resolve(recipe)
        return cls(**{key: getattr(recipe, key) for key in PART_KEYS}, sampler=recipe.sample.sampler,
                   registry=registry, root=root, seed=recipe.train.seed, train=recipe.train)

    # -- fields and sampling ----------------------------------------------------------------------
    def field(self, *, ema: bool = True, labels: Tensor | None = None, guidance: float | None = None) -> Field:
        """The trained model as a :class:`~interpgen.protocols.Field` on model space (EMA weights by
        default). ``guidance`` ``w`` applies classifier-free guidance to the whole network output,
        ``out(null) + w (out(labels) - out(null))`` (:class:`interpgen.guidance.GuidedNetwork`);
        None or 1 is the plain conditional model."""
        net = self.sampling_network(ema=ema, labels=labels, guidance=guidance)
        return self.objective.field(self, net, labels=labels)

    def sampling_network(self, *, ema: bool = True, labels: Tensor | None = None,
                         guidance: float | None = None) -> nn.Module:
        """The EMA copy unless ``ema=False``, guided when ``guidance`` is set and not 1."""
        net = self.ema if (ema and self.ema is not None) else self.network
        if guidance is None or guidance == 1.0:
            return net
        from interpgen.guidance import GuidedNetwork

        if not self.data.num_classes:
            raise ValueError(f"guidance={guidance} needs a class-conditional model; this one was trained "
                             "without labels")
        if labels is None:
            raise ValueError("guidance needs the labels to guide towards (labels=...)")
        return GuidedNetwork(net, guidance, self.data.num_classes)

    def sampling_labels(self, num: int, label: int | None = None) -> Tensor | None:
        """Labels to sample with: None for a model trained without classes; ``label`` for every
        sample when given; otherwise every class in turn (``0, 1, ..., K-1, 0, ...``)."""
        classes = self.data.num_classes
        if not classes:
            if label is not None:
                raise ValueError(f"label {label} given, but this model was trained without classes")
            return None
        if label is None:
            return torch.arange(num) % classes
        if not 0 <= label < classes:
            raise ValueError(f"label must be in [0, {classes}) for this model, got {label}")
        return torch.full((num,), int(label), dtype=torch.long)

    def sampler_for(self, sampler: Any = None, *, steps: int | None = None) -> Sampler:
        """Build a sampler from params (or a name), optionally with another step count; build context: ``run_dir``."""
        spec = self.sampler if sampler is None else sampler
        if isinstance(spec, str):
            spec = part("sampler", spec, self.registry)
        if steps is not None:
            if not (attrs.has(type(spec)) and "steps" in attrs.fields_dict(type(spec))):
                raise ValueError(f"sampler {type(spec).__name__} takes no step count (adaptive); leave --steps out")
            spec = attrs.evolve(spec, steps=steps)
        built = self._build(spec, run_dir=self.run_dir)
        self.check_sampler(built)
        return built

    @torch.no_grad()
    def sample(self, num: int, *, sampler: Any = None, steps: int | None = None, seed: int | None = 0,
               labels: Tensor | None = None, guidance: float | None = None, ema: bool = True,
               decode: bool = True, data_space: bool = True, raw: bool = False) -> Samples:
        """``num`` samples: prior draws in model space integrated by the sampler (network's device, eval mode),
        decoded (``decode``), clamped to bounded data's ``normalised_range`` (images: ``[-1, 1]``) unless ``raw``,
        and mapped to data space (``data_space``). ``decode=False`` returns the model-space end points."""
        solver = self.sampler_for(sampler, steps=steps)
        net = self.ema if (ema and self.ema is not None) else self.network
        device = next(net.parameters(), torch.empty(0)).device
        generator = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
        was_training = net.training
        net.eval()
        try:
            x0 = self.prior.sample(num, self.latent_shape, generator=generator, device=device)
            result = solver.sample(self.field(ema=ema, labels=labels, guidance=guidance), x0, generator=generator)
        finally:
            net.train(was_training)
        x = result.x
        if decode:
            x = self.decode(x) if raw or self.data_range is None else self.decode(x).clamp(*self.data_range)
            if data_space:
                x = self.to_data_space(x)
        return Samples(x=x, nfe=int(result.nfe), labels=labels)

    @torch.no_grad()
    def decode(self, z: Tensor) -> Tensor:
        """The decoder's mean ``D(z)`` in (normalised) data space, in eval mode."""
        ae = self.autoencoder
        if not isinstance(ae, nn.Module):
            return ae.decode(z)
        was_training = ae.training
        try:
            return ae.eval().decode(z)
        finally:
            ae.train(was_training)

    def to_data_space(self, x: Tensor) -> Tensor:
        if self.data_affine is None:
            return x
        shift, scale = self.data_affine
        return shift.to(x) + scale.to(x) * x

    def to_model_space(self, x: Tensor) -> Tensor:
        if self.data_affine is None:
            return x
        shift, scale = self.data_affine
        return (x - shift.to(x)) / scale.to(x)

    def log_likelihood(self, x: Tensor, *, solver: Any = "dopri5", divergence: str = "auto",
                       data_space: bool = True, create_graph: bool = False, seed: int | None = 0,
                       ema: bool = True) -> Tensor:
        """``log rho1(x)`` by the change of variables (docs/math.md 1.9), of the data as given with
        ``data_space`` (the normalisation's Jacobian included). With an autoencoder other than the
        identity ``x`` must be latents and ``data_space`` False (the data's density is an ELBO)."""
        from interpgen.likelihood import log_likelihood

        latent = not getattr(self.autoencoder, "is_identity", False)
        if latent and data_space:
            raise ValueError("this model lives in an autoencoder's latent space: pass latents z with "
                             "data_space=False to get log p(z); the data's density is not a change of variables")
        ode = self.sampler_for(solver)
        xm = self.to_model_space(x) if data_space else x
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        result = log_likelihood(self.field(ema=ema), self.prior, xm, solver=ode, divergence=divergence,
                                generator=generator, create_graph=create_graph)
        logp = result.log_prob
        if data_space and self.data_affine is not None:
            scale = self.data_affine[1].to(logp).expand(self.event_shape)
            logp = logp - torch.log(scale.abs()).sum()
        return logp

    # -- training: the Trainable contract (interpgen.protocols.Trainable) ----------------------------
    def fit(self, train: Train | None = None, *, run_dir: str | Path | None = None, progress: bool = True,
            resume: bool = False, overwrite: bool = False) -> list[float]:
        """Train with the registered trainer ``train.trainer`` (the ``accelerate`` engine by default);
        returns the logged losses. ``run_dir`` gets what ``interpgen train`` writes."""
        cfg = train or self.recipe.train
        self.recipe = attrs.evolve(self.recipe, train=cfg)
        trainer = self.registry.create("trainer", cfg.trainer)
        return trainer(self, cfg, run_dir=run_dir, progress=progress, resume=resume, overwrite=overwrite)

    def loss(self, batch: Batch, *, generator: torch.Generator | None = None, network: Any = None) -> Tensor:
        """The objective's loss on one batch; ``network`` (a compiled copy) replaces ``self.network``."""
        return self.objective.loss(self, batch, generator=generator, network=network)

    def pairs_ahead(self) -> bool:
        """Whether the trainer may draw x0 and pair it with the next batch in a background
        thread: the coupling asks for it, the objective allows it, the prior has nothing to train,
        and the data brings no x0 of its own."""
        learnable_prior = isinstance(self.prior, nn.Module) and any(p.requires_grad for p in self.prior.parameters())
        return (bool(getattr(self.coupling, "pairs_ahead", False)) and getattr(self.objective, "pairs_ahead", False)
                and getattr(self.autoencoder, "is_identity", False) and not learnable_prior
                and not getattr(self.data, "paired", False))

    @property
    def unused_parameters(self) -> bool:  # some trainable parameters get no gradient in some steps
        return bool(getattr(self.objective, "unused_parameters", False))

    def trainable_modules(self) -> list[nn.Module]:
        """The network, the autoencoder when the objective trains it, learnable prior/coupling/interpolant."""
        ae = [self.autoencoder] if getattr(self.objective, "trains_autoencoder", False) else []
        return [self.network] + [m for m in (*ae, self.prior, self.coupling, self.interpolant)
                                 if isinstance(m, nn.Module) and any(p.requires_grad for p in m.parameters())]

    def init_ema(self) -> None:
        self.ema = copy.deepcopy(self.network).requires_grad_(False)

    def state_dict(self) -> dict[str, Any]:
        """Weights, the step, and what sampling needs without the data (shape, classes, normalisation)."""
        return {"network": self.network.state_dict(), "ema": self.ema.state_dict() if self.ema is not None else None,
                "modules": [m.state_dict() for m in self.trainable_modules()[1:]],
                "autoencoder": self.autoencoder.state_dict() if isinstance(self.autoencoder, nn.Module) else None,
                "prior": self.prior.state_dict() if isinstance(self.prior, nn.Module) else None,
                "event_shape": list(self.event_shape), "num_classes": self.data.num_classes,
                "data_affine": list(self.data_affine) if self.data_affine is not None else None,
                "root": str(self.root), "step": int(self.step), "data_range": self.data_range}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        try:
            self.network.load_state_dict(state["network"])
            if state.get("ema") is not None:
                if self.ema is None:
                    self.init_ema()
                self.ema.load_state_dict(state["ema"])
            for module, module_state in zip(self.trainable_modules()[1:], state.get("modules", [])):
                module.load_state_dict(module_state)
            for key in ("autoencoder", "prior"):  # saved whether they train or not (a frozen one, a prior's buffers)
                if state.get(key) is not None:
                    getattr(self, key).load_state_dict(state[key])
        except RuntimeError as exc:  # a checkpoint of a differently shaped model
            first = str(exc).strip().splitlines()
            raise CheckpointError(f"the checkpoint does not fit this model: {' '.join(first[:3])}") from None
        if state.get("data_affine") is not None:
            self.data_affine = tuple(state["data_affine"])
        self.data_range = tuple(state.get("data_range") or ()) or self.data_range
        self.step = int(state["step"])

    def run_files(self, train: Train | None = None) -> dict[str, str]:
        """The files a run directory keeps about this pipeline: the resolved recipe."""
        recipe = self.recipe if train is None else attrs.evolve(self.recipe, train=train)
        return {RECIPE: dump_recipe(recipe, self.registry)}

    @classmethod
    def load(cls, run_dir: str | Path, *, registry: Registry | None = None, checkpoint: str | Path | None = None,
             **objects: Any) -> Pipeline:
        """A trained pipeline from a run directory, without touching the training data: the event
        shape, classes and data normalisation come from the checkpoint. A run trained with the
        user's own objects (parts no plugin registers) is loaded by passing the same objects,
        ``Pipeline.load(run, prior=MyPrior())``; without them the error names what is missing."""
        import tomllib

        run = Path(run_dir)
        if not (run / RECIPE).is_file():
            raise CheckpointError(f"{run.resolve()} is not an interpgen run directory (no {RECIPE})")
        unknown = sorted(set(objects) - set(PART_KEYS))
        if unknown:
            raise TypeError(f"Pipeline.load got {', '.join(unknown)}; parts are {', '.join(PART_KEYS)}")
        reg = registry or default_registry()
        try:
            raw = tomllib.loads((run / RECIPE).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise CheckpointError(f"{run / RECIPE} cannot be read: {exc}") from None
        train = raw.get("train") if isinstance(raw.get("train"), dict) else {}
        state = reg.create("trainer", train.get("trainer", "accelerate")).load_state(run, checkpoint)
        stand_in = _TrainedData(tuple(state["event_shape"]), state.get("num_classes"), state.get("data_affine"))
        raw.update(objects)
        if isinstance(raw.get("data"), Mapping) and raw["data"].get("name") == USER_PART:
            raw["data"] = stand_in  # sampling needs no data: a run on the user's own data loads without it
        recipe = structure_recipe(raw, reg, source=str(run / RECIPE))
        pipe = cls.from_recipe(attrs.evolve(recipe, data=stand_in), registry=reg, root=state.get("root"))
        pipe.recipe = attrs.evolve(pipe.recipe, data=recipe.data)
        pipe.load_state_dict(state)
        pipe.run_dir = run
        return pipe


@attrs.frozen
class _TrainedData:
    """Stands in for the training data of a run loaded for sampling (``paired`` unknown: None)."""

    event_shape: tuple[int, ...]
    num_classes: int | None
    affine: Any
    paired = None

    def data_affine(self) -> Any:
        return tuple(self.affine) if self.affine is not None else None

    def batches(self, batch_size: int, *, generator: torch.Generator) -> Any:
        raise RuntimeError("this pipeline was loaded for sampling; build it from its recipe to train")

    def reference(self, num: int, *, generator: torch.Generator) -> Tensor:
        raise RuntimeError("this pipeline was loaded for sampling and has no data")
