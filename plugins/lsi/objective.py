"""Latent Stochastic Interpolants (LSI, Singh & Lagun, arXiv 2506.02276; math.md 4).

An encoder ``q(z1 | x)``, a decoder ``p(x | z1)`` and a latent interpolant model ``h_theta`` are
trained under one objective (math.md 4.4), for the linear bridge ``kappa = t``, ``nu = 1 - t``:

    z1  = mu(x) + c xi                                   (stochastic encoder, reparameterised)
    z_t = sigma sqrt(t(1-t)) eps + t z1 + (1-t) z0,       z0 ~ p0 (any prior)
    T   = -sigma sqrt(t) eps + sqrt(1-t) (z1 - z0) + sqrt(t) z_t        (InterpFlow target, 4.3)
    L   = w_rec * (-log p(x | z1)) / n_x  +  beta * (1/2) w(t) mean ||T - h^_theta(z_t, t)||^2

with ``t = 1 - (1 - s)^c_t``, ``s ~ U[0, 1)`` (``c_t = 1``: uniform) and ``w = 1`` (reported
practice) or ``w = 1/(sigma^2 (1-t))`` (the ELBO weight; UNVERIFIED handling, math.md 4.3). The
network ``h^`` is the InterpFlow parameterisation of the drift, ``h = (h^ - sqrt(t) z)/sqrt(1-t)``
(math.md 4.3). Gradients reach the encoder through ``z1`` when ``beta > 0``; ``stop_gradient``
detaches ``z1`` in the latent term (the two-stage baseline, math.md 4.3).

**Relation to observation-space SI** (math.md 4.3, 4.7): the bridge is the SI interpolant
``alpha = 1 - t``, ``beta = t``, ``gamma = sigma sqrt(t(1-t))`` and, since
``T - h^ = sqrt(1-t) (h_phi - h)``, the latent term is ``(1-t)/2 ||h - h_phi||^2`` with the
bridge drift ``h_phi = (z1 - z_t)/(1-t)``, which is exactly SI's regression target of
``b + eps s`` with ``eps = sigma^2/2`` (velocity target ``alpha' x0 + beta' x1 + gamma' z`` plus
``sigma^2/2`` times the score target ``-z/gamma``). So ``h`` learns the forward-SDE drift
``b + (sigma^2/2) s`` of SI (math.md 1.3); with a ``N(0, I)`` prior the score is
``s = (t h - z)/(1 - t + sigma^2 t)`` (math.md 4.5) and ``b = h - (sigma^2/2) s``, which is how
:class:`LatentField` gives SI's samplers a velocity and a score.

Sampling (math.md 4.5) draws ``z0`` from the prior, integrates the latent SDE family and runs the
decoder once; the encoder is never run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from interpgen.latent_config import Latent
from interpgen.objective import drop_labels
from interpgen.pipeline import Pipeline, part
from interpgen.protocols import Batch, ConversionError
from interpgen.tensors import expand_like

FLOPS_FILE = "flops.json"

__all__ = ["FLOPS_FILE", "Latent", "LatentField", "LatentPipeline", "count_flops", "flops_report", "format_flops",
           "interpflow_target", "lsi_latent_loss", "lsi_times", "write_flops"]


# -- the objective (math.md 4.3, 4.4) ------------------------------------------------------------

def lsi_times(num: int, c: float, *, t_eps: float = 0.0, generator: torch.Generator | None = None,
              device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """Training times ``t = 1 - (1 - s)^c`` with ``s ~ U[0, 1)`` (math.md 4.3), kept ``<= 1 - t_eps``.
    ``c = 1`` is uniform; the time-``t`` density is ``(1-t)^(1/c - 1) / c``."""
    s = torch.rand(num, generator=generator, device=device, dtype=dtype)
    t = 1.0 - (1.0 - s) ** c
    return t.clamp(max=1.0 - t_eps) if t_eps > 0 else t


def interpflow_target(z0: Tensor, z1: Tensor, eps: Tensor, zt: Tensor, t: Tensor, sigma: float) -> Tensor:
    """``T = -sigma sqrt(t) eps + sqrt(1-t) (z1 - z0) + sqrt(t) z_t`` (math.md 4.3): the bounded
    regression target ``sqrt(1-t) h_phi + sqrt(t) z_t`` of the linear bridge; ``z1 - z0`` at
    ``t = 0`` and ``z1 - sigma eps`` at ``t = 1``."""
    st, s1t = expand_like(t.sqrt(), z1), expand_like((1.0 - t).clamp_min(0.0).sqrt(), z1)
    return -sigma * st * eps + s1t * (z1 - z0) + st * zt


def drift_from_interpflow(h_hat: Tensor, z: Tensor, t: Tensor) -> Tensor:
    """``h = (h^ - sqrt(t) z) / sqrt(1 - t)`` (math.md 4.3); singular at ``t = 1``."""
    return (h_hat - expand_like(t.sqrt(), z) * z) / expand_like((1.0 - t).sqrt(), z)


def _require_linear_bridge(bridge: Any) -> None:
    if getattr(bridge, "schedule", None) != "linear" or not hasattr(bridge, "x1_from_drift"):
        raise ValueError(
            "the LSI objective uses the InterpFlow parameterisation, derived for the linear bridge "
            "kappa = t, nu = 1 - t (math.md 4.3): use interpolant = {name = \"lsi_bridge\", "
            f"schedule = \"linear\"}}, got {type(bridge).__name__}"
            + (f" with schedule {bridge.schedule!r}" if hasattr(bridge, "schedule") else ""))


def lsi_latent_loss(network: Callable[..., Tensor], bridge: Any, prior: Any, coupling: Any, z1: Tensor,
                    labels: Tensor | None, config: Latent, *, generator: torch.Generator | None = None,
                    label_dropout: float = 0.0, num_classes: int | None = None) -> Tensor:
    """``(1/2) E[w(t) mean ||T - h^(z_t, t)||^2]`` over a batch of latents ``z1`` (math.md 4.4).

    Draws, in this order from ``generator``: ``z0 ~ prior`` (then paired with ``z1`` by the
    coupling), the dropped labels (if ``label_dropout > 0``), ``s`` for the times, ``eps``."""
    _require_linear_bridge(bridge)
    batch = z1.shape[0]
    z0 = prior.sample(batch, tuple(z1.shape[1:]), generator=generator, device=z1.device, dtype=z1.dtype)
    z0, z1 = coupling.pair(z0, z1, labels)
    if labels is not None and label_dropout > 0:
        if num_classes is None:
            raise ValueError("objective.label_dropout needs labelled data with a known number of classes")
        labels = drop_labels(labels, label_dropout, num_classes, generator=generator)
    t = lsi_times(batch, config.time_change_c, t_eps=config.t_eps, generator=generator,
                  device=z1.device, dtype=z1.dtype)
    eps = torch.randn(z1.shape, generator=generator, device=z1.device, dtype=z1.dtype)
    zt = bridge.interpolate(z0, z1, eps, t)
    target = interpflow_target(z0, z1, eps, zt, t, bridge.sigma)
    pred = network(zt, t, labels) if labels is not None else network(zt, t)
    per_sample = (pred - target).pow(2).reshape(batch, -1).mean(dim=1)
    if config.weighting == "exact":
        per_sample = per_sample / (bridge.sigma ** 2 * (1.0 - t))
    return 0.5 * per_sample.mean()


# -- the latent field seen by samplers (math.md 4.5) -------------------------------------------------

class LatentField:
    """The InterpFlow network as a field on the LSI bridge (math.md 4.3, 4.5).

    ``evaluate`` runs the network once and offers ``drift`` (``h``), ``x1`` (``E[z1|z_t]``) and, for
    a standard Gaussian prior, ``score`` (``(t h - z)/(1 - t + sigma^2 t)``) and ``velocity``
    (``h - (sigma_t^2/2) s``, the probability-flow drift, SI's ``b``)."""

    def __init__(self, network: Callable[..., Tensor], bridge: Any, *, gaussian_prior: bool, t_eps: float,
                 labels: Tensor | None = None):
        self.network = network
        self.interpolant = bridge
        self.gaussian_prior = gaussian_prior
        self.t_eps = float(t_eps)
        self.labels = labels
        self.nfe = 0

    def available(self) -> tuple[str, ...]:
        return ("drift", "x1", "velocity", "score") if self.gaussian_prior else ("drift", "x1")

    def drift(self, z: Tensor, t: Tensor) -> Tensor:
        self.nfe += 1
        h_hat = self.network(z, t, self.labels) if self.labels is not None else self.network(z, t)
        return drift_from_interpflow(h_hat, z, t)

    def evaluate(self, x: Tensor, t: Tensor, wants: tuple[str, ...]) -> tuple[Tensor, ...]:
        h = self.drift(x, t)
        out = []
        score = None
        for want in wants:
            if want == "drift":
                out.append(h)
            elif want == "x1":
                out.append(self.interpolant.x1_from_drift(h, x, t))
            elif want in ("score", "velocity"):
                if not self.gaussian_prior:
                    raise ConversionError(
                        f"an LSI model with a non-Gaussian prior cannot give {want!r}: the drift alone does "
                        "not determine the score (math.md 4.5); sample with lsi_sde and stochasticity = 1")
                if score is None:
                    score = self.interpolant.score_from_drift(h, x, t)
                if want == "score":
                    out.append(score)
                else:
                    var = expand_like(self.interpolant.diffusion_squared(t), x)
                    out.append(h - 0.5 * var * score)
            else:
                raise ConversionError(f"an LSI latent field gives {', '.join(self.available())}, not {want!r}")
        return tuple(out)

    def time_range(self, stochastic: bool) -> tuple[float, float]:
        """``h`` is singular at ``t = 1``: samplers stop at ``1 - t_eps``."""
        return (0.0, 1.0 - self.t_eps)


# -- the pipeline ---------------------------------------------------------------------------------

class _LatentView:
    """The training data as the base pipeline sees it while building latent parts: same batches,
    classes and normalisation, but the latent event shape."""

    def __init__(self, data: Any, latent_shape: tuple[int, ...]):
        self.inner, self.event_shape = data, latent_shape
        self.num_classes = data.num_classes

    def data_affine(self) -> Any:
        return self.inner.data_affine()


class LatentPipeline(Pipeline):
    """A :class:`~interpgen.pipeline.Pipeline` whose model lives in an autoencoder's latent space.

    ``Pipeline(...)``, ``Pipeline.from_recipe`` and ``Pipeline.load`` give one when ``latent`` is
    set or the autoencoder is not the identity. ``event_shape`` stays the data's shape;
    ``latent_shape`` is the model's. ``loss`` is the LSI objective (module docstring) and depends on
    ``step`` for ``pretrain_then_freeze``; ``sample`` returns decoded data.
    """

    def __init__(self, *, data: Any, autoencoder: Any = None, latent: Latent | None = None, **kwargs: Any):
        self._autoencoder_spec = autoencoder
        self.latent = latent if latent is not None else Latent()
        super().__init__(data=data, autoencoder=autoencoder, latent=self.latent, **kwargs)

    def _setup(self, data: Any, prior: Any, interpolant: Any, coupling: Any, network: Any, objective: Any,
               registry: Any, root: Any, sampler: Any) -> None:
        from interpgen.plugin_manager import registry as default_registry

        self.registry = registry or default_registry()
        self.root = Path(root) if root is not None else Path.cwd()
        built = self._build(data, root=self.root)
        data_shape = tuple(built.event_shape)
        context = {"event_shape": data_shape, "num_classes": built.num_classes, "registry": self.registry,
                   "root": self.root}
        spec = self._autoencoder_spec if self._autoencoder_spec is not None else part(
            "autoencoder", "identity", self.registry)
        self.autoencoder = self._build(spec, **context)
        self.latent_shape = tuple(self.autoencoder.latent_shape(data_shape))
        if interpolant is None:
            interpolant = part("interpolant", "lsi_bridge", self.registry)
        super()._setup(_LatentView(built, self.latent_shape), prior, interpolant, coupling, network, objective,
                       self.registry, root, sampler)
        self.specs["data"] = data
        self.specs["autoencoder"] = spec
        self.data = built
        self.event_shape = data_shape
        _require_linear_bridge(self.interpolant)
        self._configure_autoencoder()

    def _configure_autoencoder(self) -> None:
        cfg = self.latent
        if cfg.beta == 0 and not cfg.stop_gradient:
            raise ValueError("latent.beta = 0 leaves the latent model untrained; for the two-stage "
                             "(beta -> 0) baseline set latent.stop_gradient = true instead")
        frozen = bool(getattr(self.autoencoder, "frozen", False))
        if frozen and cfg.encoder_training != "frozen":
            raise ValueError(f"the autoencoder is frozen (pretrained), but latent.encoder_training is "
                             f"{cfg.encoder_training!r}: set it to 'frozen'")
        if cfg.encoder_training == "frozen" and isinstance(self.autoencoder, nn.Module):
            self.autoencoder.requires_grad_(False)

    @classmethod
    def _autoencoder_trains_at(cls, cfg: Latent, step: int) -> bool:
        return cfg.encoder_training == "joint" or (
            cfg.encoder_training == "pretrain_then_freeze" and step < cfg.pretrain_steps)

    # -- training ---------------------------------------------------------------------------------
    def loss(self, batch: Batch, *, generator: torch.Generator | None = None, network: Any = None) -> Tensor:
        """The LSI objective on one batch (math.md 4.4; module docstring).

        ``joint``: reconstruction + ``beta`` latent term, gradients to the encoder through ``z1``
        unless ``stop_gradient``. ``frozen``: the latent term on latents of the fixed autoencoder.
        ``pretrain_then_freeze``: reconstruction only while ``step < pretrain_steps``, then as
        ``frozen``. Draw order: the encoder noise ``xi``, then :func:`lsi_latent_loss`'s draws."""
        cfg = self.latent
        net = network if network is not None else self.network
        x = batch.x1
        trains_ae = self._autoencoder_trains_at(cfg, self.step)
        with torch.set_grad_enabled(trains_ae and torch.is_grad_enabled()):
            mean, scale = self.autoencoder.encode(x)
            xi = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
            z1 = mean + scale * xi
        total = x.new_zeros(())
        if trains_ae and cfg.reconstruction_weight > 0:
            nll = -self.autoencoder.reconstruction_log_prob(x, z1) / x[0].numel()
            total = total + cfg.reconstruction_weight * nll.mean()
        if cfg.encoder_training == "pretrain_then_freeze" and self.step < cfg.pretrain_steps:
            return total
        latent_z1 = z1 if (trains_ae and not cfg.stop_gradient) else z1.detach()
        term = lsi_latent_loss(net, self.interpolant, self.prior, self.coupling, latent_z1, batch.labels, cfg,
                               generator=generator, label_dropout=self.objective.label_dropout,
                               num_classes=self.data.num_classes)
        return total + cfg.beta * term

    def pairs_ahead(self) -> bool:
        """Never: the latent pairs need this step's encoder."""
        return False

    @property
    def has_unused_parameters(self) -> bool:  # type: ignore[override]
        """``pretrain_then_freeze`` trains only the autoencoder, then only the latent network."""
        return self.latent.encoder_training == "pretrain_then_freeze"

    def trainable_modules(self) -> list[nn.Module]:
        """The latent network first, then the autoencoder (saved with every checkpoint, trained only
        where its parameters require gradients), then learnable prior/coupling/interpolant."""
        mods = [self.network]
        if isinstance(self.autoencoder, nn.Module) and any(True for _ in self.autoencoder.parameters()):
            mods.append(self.autoencoder)
        return mods + super().trainable_modules()[1:]

    def save_autoencoder(self, path: str | Path) -> Path:
        """Write the autoencoder's state (what the ``pretrained`` autoencoder loads)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"autoencoder": self.autoencoder.state_dict()}, path)
        return path

    # -- sampling (math.md 4.5) ---------------------------------------------------------------------
    def field(self, *, ema: bool = True, labels: Tensor | None = None, guidance: float | None = None) -> LatentField:
        """The latent model as a field; ``guidance`` ``w`` guides the InterpFlow output,
        ``h^_w = h^_null + w (h^_y - h^_null)`` (math.md 4.5 default; the paper's form is UNVERIFIED).
        The drift is affine in ``h^``, so this guides the drift, score and velocity alike."""
        net = self.sampling_network(ema=ema, labels=labels, guidance=guidance)
        t_eps = max(float(self.objective.t_eps or 0.0), 1e-3)
        return LatentField(net, self.interpolant, gaussian_prior=bool(getattr(self.prior, "standard_normal", False)),
                           t_eps=t_eps, labels=labels)

    @torch.no_grad()
    def sample_latents(self, num: int, *, sampler: Any = None, steps: int | None = None,
                       seed: int | None = 0, labels: Tensor | None = None, ema: bool = True,
                       guidance: float | None = None) -> tuple[Tensor, int]:
        """``num`` latents ``z1`` from the prior through the latent SDE family, and the NFE used."""
        return self.integrate_from_prior(num, self.latent_shape, sampler=sampler, steps=steps, seed=seed,
                                         labels=labels, ema=ema, guidance=guidance)

    @torch.no_grad()
    def decode(self, z: Tensor) -> Tensor:
        """The decoder's mean ``D(z)`` in model space (run once per sample)."""
        ae = self.autoencoder
        was_training = getattr(ae, "training", False)
        if isinstance(ae, nn.Module):
            ae.eval()
        try:
            return ae.decode(z)
        finally:
            if isinstance(ae, nn.Module):
                ae.train(was_training)

    @torch.no_grad()
    def sample_with_nfe(self, num: int, *, sampler: Any = None, steps: int | None = None, seed: int | None = 0,
                        labels: Tensor | None = None, data_space: bool = True, ema: bool = True,
                        guidance: float | None = None) -> tuple[Tensor, int]:
        """Decoded samples ``(num, *event_shape)`` (in data space unless told otherwise) and the
        latent model's NFE; the encoder is never run (math.md 4.5)."""
        z, nfe = self.sample_latents(num, sampler=sampler, steps=steps, seed=seed, labels=labels, ema=ema,
                                     guidance=guidance)
        x = self.decode(z)
        return (self.to_data_space(x) if data_space else x), nfe

    def log_likelihood(self, *args: Any, **kwargs: Any) -> Tensor:
        raise NotImplementedError("log-likelihoods of latent (LSI) models are not implemented: the decoder "
                                  "makes them an ELBO, not a change of variables")


# -- cost accounting ------------------------------------------------------------------------------

def count_flops(fn: Callable[[], Any]) -> int:
    """Floating-point operations of ``fn()`` as counted by ``torch.utils.flop_counter``."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _parameters(module: Any) -> int:
    return sum(p.numel() for p in module.parameters()) if isinstance(module, nn.Module) else 0


def flops_report(pipe: Pipeline, *, steps: int | None = 100, sampler: Any = None, batch: int = 4) -> dict[str, Any]:
    """FLOPs per sample split into encoder / decoder / latent model (one pass each), and the sampling
    cost at ``steps`` steps: ``NFE * latent_model + decoder``, with the NFE the sampler really uses
    (``steps`` times its evaluations per step, plus a final step where it has one; ``steps=None``:
    the sampler's own). Works for an observation-space pipeline too (encoder = decoder = 0).
    Parameter counts come flat, as ``parameters_<part>``."""
    ae = getattr(pipe, "autoencoder", None)
    data_shape = tuple(pipe.event_shape)
    latent_shape = tuple(getattr(pipe, "latent_shape", data_shape))
    net = pipe.network
    device = next(net.parameters(), torch.empty(0)).device
    x = torch.zeros(batch, *data_shape, device=device)
    z = torch.zeros(batch, *latent_shape, device=device)
    t = torch.full((batch,), 0.5, device=device)
    encoder = count_flops(lambda: ae.encode(x)) / batch if ae is not None else 0.0
    decoder = count_flops(lambda: ae.decode(z)) / batch if ae is not None else 0.0
    latent_model = count_flops(lambda: net(z, t)) / batch
    _, nfe = pipe.sample_with_nfe(1, sampler=sampler, steps=steps, seed=0)
    steps = getattr(pipe.sampler_for(sampler, steps=steps), "steps", steps)
    enc_module = getattr(ae, "encoder", None)
    dec_module = getattr(ae, "decoder", None)
    return {
        "steps": steps,
        "nfe": int(nfe),
        "encoder": encoder,
        "decoder": decoder,
        "latent_model": latent_model,
        "sampling_per_sample": nfe * latent_model + decoder,
        "training_forward_per_sample": encoder + decoder + latent_model,
        "parameters_latent_model": _parameters(net),
        "parameters_encoder": _parameters(enc_module),
        "parameters_decoder": _parameters(dec_module),
        "parameters_autoencoder": _parameters(ae),
        "parameters_total": _parameters(net) + _parameters(ae),
    }


def write_flops(run_dir: str | Path, report: dict[str, Any]) -> Path:
    """Write ``report`` to ``RUN/flops.json``."""
    path = Path(run_dir) / FLOPS_FILE
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return path


def format_flops(report: dict[str, Any]) -> str:
    """One line per figure, e.g. ``latent model   1.23 MFLOP``."""
    def human(v: float) -> str:
        for unit, scale in (("GFLOP", 1e9), ("MFLOP", 1e6), ("kFLOP", 1e3)):
            if v >= scale:
                return f"{v / scale:.3g} {unit}"
        return f"{v:.3g} FLOP"

    return "\n".join([
        f"encoder (one pass)        {human(report['encoder'])}",
        f"decoder (one pass)        {human(report['decoder'])}",
        f"latent model (one pass)   {human(report['latent_model'])}",
        f"sampling, {report['steps']} steps ({report['nfe']} NFE)  {human(report['sampling_per_sample'])} per sample",
    ])

