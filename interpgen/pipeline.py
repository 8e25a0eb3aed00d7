"""The Python API: put parts together, train, sample, compute log-likelihoods.

Each part is either a registered part's params (from :func:`part` or a recipe) that is built with
the run's context, or the user's own object that follows the protocol (a prior class written in a
script works without registering it)::

    import interpgen as ig

    pipe = ig.Pipeline(data=ig.part("dataset", "moons"), prior=MyPrior(),
                       interpolant=ig.part("interpolant", "linear"))
    pipe.fit(ig.Train(steps=2000))
    x = pipe.sample(1000, sampler=ig.part("sampler", "heun", steps=8))
    logp = pipe.log_likelihood(x)
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import attrs
import torch
from torch import Tensor, nn

from interpgen.config import RecipeConverter
from interpgen.fields import ModelField
from interpgen.plugin_manager import registry as default_registry
from interpgen.protocols import Batch, Coupling, DataSource, Interpolant, Prior, Sampler
from interpgen.recipe import DEFAULT_PARTS, Objective, Recipe, resolve
from interpgen.registry import Registry


def part(kind: str, name: str, /, registry: Registry | None = None, **params: Any) -> Any:
    """The params of registered part ``name`` of ``kind``, checked as strictly as a recipe."""
    reg = registry or default_registry()
    return RecipeConverter(reg).structure_part(kind, {"name": name, **params}, path=kind)


class Pipeline:
    """A model in the making: data, prior, interpolant, coupling, network and objective."""

    def __new__(cls, *args: Any, autoencoder: Any = None, latent: Any = None, **kwargs: Any) -> Pipeline:
        """A latent (LSI) pipeline, :class:`interpgen.latent.LatentPipeline`, when ``latent`` is set
        or the autoencoder is not the identity (``is_identity`` False or absent)."""
        if cls is Pipeline and (latent is not None or not (autoencoder is None or getattr(autoencoder, "is_identity", False))):
            from interpgen.latent import LatentPipeline

            cls = LatentPipeline
        return super().__new__(cls)

    def __init__(self, *, data: Any, prior: Any = None, interpolant: Any = None, coupling: Any = None,
                 network: Any = None, objective: Objective | None = None, registry: Registry | None = None,
                 root: str | Path | None = None, sampler: Any = None, seed: int | None = 0,
                 autoencoder: Any = None, latent: Any = None):
        """``seed`` fixes the networks' (and learnable priors') initial weights; None leaves
        torch's global random state to decide. The global state is left as it was.
        ``autoencoder`` and ``latent`` (see :meth:`__new__`) are used by the latent pipeline."""
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            self._setup(data, prior, interpolant, coupling, network, objective, registry, root, sampler)

    def _setup(self, data: Any, prior: Any, interpolant: Any, coupling: Any, network: Any,
               objective: Objective | None, registry: Registry | None, root: str | Path | None,
               sampler: Any) -> None:
        self.registry = registry or default_registry()
        reg = self.registry
        self.root = Path(root) if root is not None else Path.cwd()
        self.specs = {  # what a recipe would say, where the part is a registered one
            "data": data,
            "prior": prior if prior is not None else part("prior", DEFAULT_PARTS["prior"]["name"], reg),
            "interpolant": interpolant if interpolant is not None else part("interpolant", "linear", reg),
            "coupling": coupling if coupling is not None else part("coupling", "independent", reg),
            "model": network if network is not None else part("network", "mlp", reg),
        }
        self.data: DataSource = self._build(data, root=self.root)
        shape = tuple(self.data.event_shape)
        self.event_shape = shape
        context = {"event_shape": shape, "num_classes": self.data.num_classes, "registry": reg, "root": self.root}
        self.prior: Prior = self._build(self.specs["prior"], **context)
        self.interpolant: Interpolant = self._build(self.specs["interpolant"], **context)
        self.coupling: Coupling = self._build(self.specs["coupling"], **context)
        objective = objective or Objective()
        if objective.t_eps is None:
            objective = attrs.evolve(objective, t_eps=max(
                float(self.interpolant.default_t_eps(p)) for p in objective.predictions))
        self.objective = objective
        heads = len(objective.predictions)
        out_shape = (shape[0] * heads, *shape[1:])
        self.network: nn.Module = self._build(self.specs["model"], in_shape=shape, out_shape=out_shape, **context)
        self.ema: nn.Module | None = None
        self.sampler = sampler if sampler is not None else part("sampler", DEFAULT_PARTS["sample"]["sampler"]["name"], reg)
        self.data_affine = self.data.data_affine()
        self.step = 0
        self._check_compatible()

    # -- construction -------------------------------------------------------------------------
    def _build(self, spec: Any, **context: Any) -> Any:
        entry = self.registry.entry_for(spec)
        return entry.create(spec, **context) if entry is not None else spec

    def _check_compatible(self) -> None:
        preds = self.objective.predictions
        gaussian = bool(getattr(self.prior, "standard_normal", False))
        for name in preds:  # every target must exist (e.g. no score target without a Gaussian base)
            probe = torch.zeros(1, *self.event_shape)
            self.interpolant.target(name, probe, probe, probe, torch.full((1,), 0.5), gaussian_base=gaussian)
        sampler = self._build(self.sampler)
        if getattr(sampler, "stochastic", False):
            self.check_sampler(sampler)
        if getattr(self.interpolant, "base_is_data", False) and not getattr(self.prior, "is_data", False):
            raise ValueError("the mirror interpolant maps the data to itself: use prior = {name = \"dataset\"} "
                             "with the training data as its data")
        check = getattr(self.coupling, "check_compatible", None)
        if callable(check):  # a coupling that constrains the other parts (schrodinger_bridge, paired)
            check(interpolant=self.interpolant, prior=self.prior, data=self.data)

    def check_sampler(self, sampler: Any) -> None:
        """An SDE sampler needs a score: say so before anything runs."""
        if getattr(sampler, "stochastic", False) and "score" not in self.field().available():
            raise ValueError(
                f"sampler {type(sampler).__name__} integrates an SDE and needs the score, which a model "
                f"trained on {self.objective.prediction!r} with this prior and interpolant cannot give: "
                "train a score (prediction = \"velocity+score\"), use a standard Gaussian prior, "
                "or choose an ODE sampler (euler, heun, rk4, dopri5)")

    @classmethod
    def from_recipe(cls, recipe: Recipe, *, registry: Registry | None = None, root: str | Path | None = None) -> Pipeline:
        reg = registry or default_registry()
        recipe = resolve(recipe)
        pipe = cls(data=recipe.data, prior=recipe.prior, interpolant=recipe.interpolant, coupling=recipe.coupling,
                   network=recipe.model, objective=recipe.objective, registry=reg, root=root,
                   sampler=recipe.sample.sampler, seed=recipe.train.seed,
                   autoencoder=recipe.autoencoder, latent=recipe.latent)
        pipe.recipe = recipe
        return pipe

    # -- fields and sampling ----------------------------------------------------------------------
    def field(self, *, ema: bool = True, labels: Tensor | None = None, guidance: float | None = None) -> ModelField:
        """The trained model as a :class:`~interpgen.protocols.Field` (EMA weights by default).

        ``guidance`` ``w`` applies classifier-free guidance to the whole network output,
        ``out(null) + w (out(labels) - out(null))`` (:class:`interpgen.guidance.GuidedNetwork`);
        None or 1 is the plain conditional model."""
        net = self.sampling_network(ema=ema, labels=labels, guidance=guidance)
        return ModelField(net, self.interpolant, self.objective.predictions,
                          gaussian_base=bool(getattr(self.prior, "standard_normal", False)),
                          t_eps=float(self.objective.t_eps), labels=labels)

    def sampling_network(self, *, ema: bool = True, labels: Tensor | None = None,
                         guidance: float | None = None) -> nn.Module:
        """The network sampling evaluates: the EMA copy unless ``ema=False``, wrapped in
        :class:`~interpgen.guidance.GuidedNetwork` when ``guidance`` is set and not 1."""
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
        """Build a sampler from params (or a name), optionally with another step count."""
        spec = self.sampler if sampler is None else sampler
        if isinstance(spec, str):
            spec = part("sampler", spec, self.registry)
        if steps is not None:
            if not (attrs.has(type(spec)) and "steps" in attrs.fields_dict(type(spec))):
                raise ValueError(f"sampler {type(spec).__name__} takes no step count (adaptive); leave --steps out")
            spec = attrs.evolve(spec, steps=steps)
        built = self._build(spec)
        self.check_sampler(built)
        return built

    @torch.no_grad()
    def sample(self, num: int, *, sampler: Any = None, steps: int | None = None, seed: int | None = 0,
               labels: Tensor | None = None, data_space: bool = True, ema: bool = True,
               guidance: float | None = None) -> Tensor:
        """``num`` samples, shape ``(num, *event_shape)``, in data space unless told otherwise."""
        return self.sample_with_nfe(num, sampler=sampler, steps=steps, seed=seed, labels=labels,
                                    data_space=data_space, ema=ema, guidance=guidance)[0]

    @torch.no_grad()
    def sample_with_nfe(self, num: int, *, sampler: Any = None, steps: int | None = None, seed: int | None = 0,
                        labels: Tensor | None = None, data_space: bool = True, ema: bool = True,
                        guidance: float | None = None) -> tuple[Tensor, int]:
        x, nfe = self.integrate_from_prior(num, self.event_shape, sampler=sampler, steps=steps, seed=seed,
                                           labels=labels, ema=ema, guidance=guidance)
        return (self.to_data_space(x) if data_space else x), nfe

    @torch.no_grad()
    def integrate_from_prior(self, num: int, shape: tuple[int, ...], *, sampler: Any = None,
                             steps: int | None = None, seed: int | None = 0, labels: Tensor | None = None,
                             ema: bool = True, guidance: float | None = None) -> tuple[Tensor, int]:
        """Draw ``num`` prior samples of ``shape`` and integrate :meth:`field` from them; returns
        the model-space end points and the network evaluations used. Runs on the network's device
        (a GPU after training there) with the network in eval mode."""
        solver = self.sampler_for(sampler, steps=steps)
        net = self.ema if (ema and self.ema is not None) else self.network
        device = next(net.parameters(), torch.empty(0)).device
        generator = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
        was_training = net.training
        net.eval()
        try:
            x0 = self.prior.sample(num, shape, generator=generator, device=device)
            result = solver.sample(self.field(ema=ema, labels=labels, guidance=guidance), x0, generator=generator)
        finally:
            net.train(was_training)
        return result.x, result.nfe

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
        """``log rho1(x)`` by the change of variables (math.md 1.9). With ``data_space`` the
        Jacobian of the data normalisation is included, so the density is of the data as given."""
        from interpgen.likelihood import log_likelihood

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

    # -- training -------------------------------------------------------------------------------
    def fit(self, train: Any = None, *, run_dir: str | Path | None = None, progress: bool = False,
            resume: bool = False) -> list[float]:
        """Train; returns the logged losses. See :func:`interpgen.train.fit`."""
        from interpgen.recipe import Train
        from interpgen.train import fit

        return fit(self, train or Train(), run_dir=run_dir, progress=progress, resume=resume)

    @classmethod
    def load(cls, run_dir: str | Path, *, registry: Registry | None = None, checkpoint: str | Path | None = None) -> Pipeline:
        """A trained pipeline from a run directory, without touching the training data: the
        event shape, classes and data normalisation come from the checkpoint."""
        from interpgen import run_dir as rd
        from interpgen.recipe import load_recipe
        from interpgen.train import restore_state

        run = Path(run_dir)
        if not (run / rd.RECIPE).is_file():
            raise rd.CheckpointError(f"{run.resolve()} is not an interpgen run directory (no {rd.RECIPE})")
        reg = registry or default_registry()
        recipe = load_recipe(run / rd.RECIPE, reg)
        state = rd.load_checkpoint(Path(checkpoint) if checkpoint else rd.latest_checkpoint(run))
        stand_in = _TrainedData(tuple(state["event_shape"]), state.get("num_classes"), state.get("data_affine"))
        pipe = cls(data=stand_in, prior=recipe.prior, interpolant=recipe.interpolant, coupling=recipe.coupling,
                   network=recipe.model, objective=recipe.objective, registry=reg,
                   root=state.get("root"), sampler=recipe.sample.sampler,
                   autoencoder=recipe.autoencoder, latent=recipe.latent)
        pipe.specs["data"] = recipe.data
        pipe.recipe = recipe
        restore_state(pipe, state)
        return pipe

    def loss(self, batch: Batch, *, generator: torch.Generator | None = None,
             network: Any = None) -> Tensor:
        """The training loss on one batch (math.md 1.4; see :mod:`interpgen.objective`).
        ``network`` replaces ``self.network`` (the trainer passes its distributed wrapper)."""
        from interpgen.objective import interpolant_loss

        return interpolant_loss(network if network is not None else self.network, self.interpolant,
                                self.prior, self.coupling, self.objective, batch.x1, batch.labels,
                                x0=batch.x0, coupled=batch.coupled, num_classes=self.data.num_classes,
                                generator=generator)

    def pairs_ahead(self) -> bool:
        """Whether the trainer may draw x0 and pair it with the next batch in a background
        thread (:mod:`interpgen.pair_ahead`): the coupling asks for it (``pairs_ahead``), the
        prior has nothing to train, and the data brings no x0 of its own."""
        learnable_prior = isinstance(self.prior, nn.Module) and any(p.requires_grad for p in self.prior.parameters())
        return (bool(getattr(self.coupling, "pairs_ahead", False)) and not learnable_prior
                and not getattr(self.data, "paired", False))

    #: True when some trainable parameters get no gradient in some training steps (DDP must then
    #: be told to look for them); see LatentPipeline.
    has_unused_parameters: bool = False

    def trainable_modules(self) -> list[nn.Module]:
        mods = [self.network]
        for obj in (self.prior, self.coupling, self.interpolant):
            if isinstance(obj, nn.Module) and any(p.requires_grad for p in obj.parameters()):
                mods.append(obj)
        return mods

    def init_ema(self) -> None:
        self.ema = copy.deepcopy(self.network).requires_grad_(False)


class _TrainedData:
    """Stands in for the training data when a trained run is loaded for sampling."""

    #: unknown: the training data is not loaded (a coupling's check_compatible accepts None)
    paired = None

    def __init__(self, event_shape: tuple[int, ...], num_classes: int | None, affine: Any):
        self.event_shape = event_shape
        self.num_classes = num_classes
        self._affine = tuple(affine) if affine is not None else None

    def data_affine(self) -> Any:
        return self._affine

    def batches(self, batch_size: int, *, generator: torch.Generator) -> Any:
        raise RuntimeError("this pipeline was loaded for sampling; build it from its recipe to train")

    def reference(self, num: int, *, generator: torch.Generator) -> Tensor:
        raise RuntimeError("this pipeline was loaded for sampling and has no data")
