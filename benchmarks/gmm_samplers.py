"""Sampler error against an exact 2-D Gaussian-mixture target at NFE budgets 2, 4, 8, 16, 64.

What it measures. The target is a 2-D Gaussian mixture of 8 anisotropic components on a circle
of radius 4 with unequal weights (``w_k`` proportional to ``k + 1``), the base is ``N(0, I)``
and the exact fields (velocity, score, ``x1`` prediction) come from
``OracleField(MixtureOracle(...))`` (math.md 8b), i.e. a perfectly trained model, so every error
reported is the sampler's own. Two interpolants: ``linear`` (``alpha = 1 - t``, ``beta = t``)
and ``gvp`` (one-sided trig, ``alpha = cos(pi t / 2)``, ``beta = sin(pi t / 2)``; math.md 1.8).

For each NFE budget (2, 4, 8, 16, 64) each sampler gets the most steps that fit the budget:
``euler`` NFE steps, ``midpoint``/``heun`` NFE/2, ``rk4`` NFE/4 (skipped below 4); the SDE
samplers spend one evaluation on their noiseless last step, so ``euler_maruyama`` takes NFE - 1
steps and ``stochastic_heun`` (NFE - 1) // 2 (skipped at NFE 2); they run with the ``optimal``
diffusion and a ``constant`` one, each with ``last_step = "mean"`` and ``"tweedie"``, and the
table shows the better of the two (by SW2; both are in the JSON). ``dopri5`` is adaptive and is
reported at a few tolerances with the NFE it used. The NFE reported is ``SampleResult.nfe``.

Error measures, each against the exact target:

1. ``sw2``: sliced Wasserstein-2 (:func:`interpgen_plugins.eval.metrics.sliced_wasserstein`, the same fixed
   directions for every call) between the samples and fresh exact mixture samples of the same
   size. The two-sample floor is the same distance for independent exact sets, drawn
   ``--floor-repeats`` times (mean, min, max): with 20k samples it is dominated by how many
   samples land in each component, so it varies by tens of percent from draw to draw. All
   samplers start from the same ``x0`` (and the SDEs share their noise), so differences between
   rows are paired and much smaller than the floor's spread; the tightest dopri5 row is the exact
   transport of this ``x0``, the paired floor of the ODE samplers.
2. ``path``: for ODE samplers, the mean Euclidean distance to a dopri5 solution at
   ``rtol = atol = 1e-9`` from the same ``x0`` (on the first ``--path-samples`` points): pure
   discretisation error, whose slope from NFE 16 to 64 gives the observed order. The reference
   is itself checked against dopri5 at 1e-11.
3. ``w_l1``: L1 distance between the fraction of samples assigned to each component (maximum
   posterior under the target mixture, i.e. nearest component in the Mahalanobis sense with the
   log weights) and the true weights; its floor is the same number for an exact sample set.
   ``off``: fraction of samples farther than 3 Mahalanobis units from every component (about
   1.1% for exact samples), which counts samples stranded between modes.

Speed. ``MixtureOracle`` builds and factorises every component covariance once per batch row;
the samplers evaluate the whole batch at one time, so :class:`SharedTimeMixtureOracle` computes
the same formulas once per call (it is checked against ``MixtureOracle.predict`` at start-up and
the run stops if they differ by more than 1e-10).

Run (about 2 minutes on 2 CPU cores with the defaults; ``--threads`` defaults to 1 because these
small tensors gain nothing from more threads and lose a lot when a core is busy)::

    python benchmarks/gmm_samplers.py --out benchmarks/results/gmm_samplers.json

It prints the tables and writes the JSON and a markdown file next to it (same name, ``.md``).
"""

from __future__ import annotations

import argparse
import json
import math
import time
import sys
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import interpgen
from interpgen_plugins.eval.metrics import sliced_wasserstein
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the oracles live with the tests
from oracles import MixtureOracle, OracleField  # noqa: E402
from interpgen.plugin_manager import registry

F64 = torch.float64
BUDGETS = (2, 4, 8, 16, 64)
ODE_SAMPLERS = {"euler": 1, "midpoint": 2, "heun": 2, "rk4": 4}  # evaluations per step
SDE_SAMPLERS = {"euler_maruyama": 1, "stochastic_heun": 2}
LAST_STEPS = ("mean", "tweedie")
DOPRI_TOLERANCES = (1e-2, 1e-3, 1e-4, 1e-6)
REFERENCE_TOL = 1e-9
CHECK_TOL = 1e-11
OFF_MODE_RADIUS = 3.0


# -- the target -------------------------------------------------------------------------------

def mixture_parameters(components: int, radius: float, radial_std: float, tangential_std: float
                       ) -> tuple[Tensor, Tensor, Tensor]:
    """``(weights (K,), means (K, 2), covs (K, 2, 2))``: means evenly on a circle, each component
    elongated along its radius, weights proportional to ``1, 2, ..., K``."""
    angles = torch.arange(components, dtype=F64) * (2 * math.pi / components)
    directions = torch.stack([angles.cos(), angles.sin()], dim=1)  # radial unit vectors
    tangents = torch.stack([-angles.sin(), angles.cos()], dim=1)
    covs = (radial_std ** 2 * directions[:, :, None] * directions[:, None, :]
            + tangential_std ** 2 * tangents[:, :, None] * tangents[:, None, :])
    weights = torch.arange(1, components + 1, dtype=F64)
    return weights / weights.sum(), radius * directions, covs


def apply(matrices: Tensor, vectors: Tensor) -> Tensor:
    """``M_k v_kb`` for ``matrices (K, d, d)`` and ``vectors (K, d, B)``: a batched matmul whose
    long axis is the sample one (tiny trailing axes make torch's reductions slow)."""
    return torch.bmm(matrices, vectors)


class SharedTimeMixtureOracle(MixtureOracle):
    """:class:`MixtureOracle` with a fast path when every batch row has the same ``t``.

    The formulas are those of math.md 8b: per component ``mu_k = alpha m0 + beta m_k``,
    ``Sigma_k = alpha^2 S0 + beta^2 S_k + gamma^2 I``, ``C_k = alpha alpha' S0 + beta beta' S_k
    + gamma gamma' I``, posterior ``pi_k``, and each field the ``pi_k``-average of its Gaussian
    form. The ``K`` covariances are inverted once per call instead of once per row, and the
    work is laid out as ``(K, d, B)`` so every reduction runs over a short leading axis.
    """

    def predict(self, name: str, x: Tensor, t: float | Tensor) -> Tensor:
        times = t if isinstance(t, Tensor) else torch.tensor([float(t)], dtype=F64)
        if times.numel() == 0 or not bool((times == times.reshape(-1)[0]).all()):
            return super().predict(name, x, t)
        if name == "noise" and self.interpolant.deterministic:
            name = "x0"
        t1 = times.reshape(-1)[:1].to(F64)
        i = self.interpolant
        a, b, g = float(i.alpha(t1)), float(i.beta(t1)), float(i.gamma(t1))
        ad, bd, ggd = float(i.alpha_dot(t1)), float(i.beta_dot(t1)), float(i.gamma_gamma_dot(t1))
        eye = torch.eye(self.dim, dtype=F64)
        mean = a * self.m0 + b * self.means  # (K, d)
        cov = a * a * self.S0 + b * b * self.covs + g * g * eye  # (K, d, d)
        diff = x.to(F64).T.unsqueeze(0) - mean.unsqueeze(-1)  # (K, d, B)
        w = apply(torch.linalg.inv(cov), diff)  # Sigma_k^{-1} (x - mu_k)
        log_joint = ((torch.log(self.weights) - 0.5 * torch.logdet(cov)).unsqueeze(-1)
                     - 0.5 * (diff * w).sum(1))  # (K, B), up to the common -d/2 log(2 pi)
        post = torch.softmax(log_joint, dim=0).unsqueeze(1)  # (K, 1, B)
        if name == "score":
            per = -w
        elif name == "velocity":
            half_cov_dot = a * ad * self.S0 + b * bd * self.covs + ggd * eye
            per = (ad * self.m0 + bd * self.means).unsqueeze(-1) + apply(half_cov_dot, w)
        elif name == "x1":
            per = self.means.unsqueeze(-1) + b * apply(self.covs, w)
        elif name == "x0":
            per = self.m0[:, None] + a * apply(self.S0.expand_as(cov), w)
        else:
            per = g * w
        return (post * per).sum(0).T


def check_fast_oracle(oracle: SharedTimeMixtureOracle, generator: torch.Generator) -> float:
    """Largest difference between the fast path and :meth:`MixtureOracle.predict` over every
    prediction at several times; raises if it exceeds 1e-10."""
    x = 5.0 * torch.randn(256, oracle.dim, generator=generator, dtype=F64)
    worst = 0.0
    for t in (0.001, 0.2, 0.5, 0.9, 0.999, 1.0):
        tt = torch.full((x.shape[0],), t, dtype=F64)
        for name in ("velocity", "score", "x1", "x0", "noise"):
            fast = oracle.predict(name, x, tt)
            slow = MixtureOracle.predict(oracle, name, x, tt)
            worst = max(worst, float((fast - slow).abs().max() / (1.0 + slow.abs().max())))
    if worst > 1e-10:
        raise RuntimeError(f"fast mixture oracle disagrees with MixtureOracle by {worst:.3g}")
    return worst


# -- error measures ---------------------------------------------------------------------------

class Scorer:
    """The three error measures against the exact target (see the module docstring)."""

    def __init__(self, oracle: MixtureOracle, reference: Tensor, projections: int, seed: int):
        self.oracle, self.reference = oracle, reference
        self.projections, self.seed = projections, seed
        self.precision = torch.linalg.inv(oracle.covs)
        self.log_norm = torch.log(oracle.weights) - 0.5 * torch.logdet(oracle.covs)

    def sw2(self, x: Tensor) -> float:
        return sliced_wasserstein(x, self.reference, num_projections=self.projections,
                                  generator=torch.Generator().manual_seed(self.seed))

    def weights(self, x: Tensor) -> tuple[float, float]:
        """``(L1 error of the component fractions, fraction of off-mode samples)``."""
        diff = x.to(F64).T.unsqueeze(0) - self.oracle.means.unsqueeze(-1)  # (K, d, B)
        mahalanobis2 = (diff * apply(self.precision, diff)).sum(1).T  # (B, K)
        mahalanobis2 = torch.nan_to_num(mahalanobis2, nan=float("inf"))
        nearest = (self.log_norm - 0.5 * mahalanobis2).argmax(dim=1)
        fractions = torch.bincount(nearest, minlength=self.oracle.weights.numel()).to(F64) / x.shape[0]
        off = (mahalanobis2.min(dim=1).values > OFF_MODE_RADIUS ** 2).to(F64).mean()
        return float((fractions - self.oracle.weights).abs().sum()), float(off)

    def all(self, x: Tensor) -> dict[str, float]:
        if not bool(torch.isfinite(x).all()):
            finite = torch.isfinite(x).all(dim=1)
            return {"sw2": float("inf"), "w_l1": float("nan"), "off": 1.0 - float(finite.to(F64).mean())}
        l1, off = self.weights(x)
        return {"sw2": self.sw2(x), "w_l1": l1, "off": off}


def summarise_floor(draws: list[dict[str, float]]) -> dict[str, Any]:
    """Mean, min and max of each measure over independent exact sample sets."""
    out: dict[str, Any] = {"draws": draws}
    for key in ("sw2", "w_l1", "off"):
        values = [d[key] for d in draws]
        out[key] = sum(values) / len(values)
        out[f"{key}_min"], out[f"{key}_max"] = min(values), max(values)
    return out


def path_error(x: Tensor, reference: Tensor) -> float:
    """Mean Euclidean distance between the first ``len(reference)`` rows and the reference."""
    return float((x[: reference.shape[0]] - reference).norm(dim=1).mean())


# -- running the samplers -----------------------------------------------------------------------

def make(kind: str, name: str, **params: Any) -> Any:
    part = interpgen.part(kind, name, **params)
    return registry().entry_for(part).create(part)


def run_ode(field: OracleField, x0: Tensor, name: str, steps: int) -> tuple[Tensor, int]:
    result = make("sampler", name, steps=steps).sample(field, x0)
    return result.x, result.nfe


def ode_rows(field: OracleField, x0: Tensor, reference: Tensor, scorer: Scorer) -> list[dict]:
    rows = []
    for name, per_step in ODE_SAMPLERS.items():
        for budget in BUDGETS:
            steps = budget // per_step
            if steps < 1:
                continue
            x, nfe = run_ode(field, x0, name, steps)
            rows.append({"sampler": name, "budget": budget, "steps": steps, "nfe": nfe,
                         "path": path_error(x, reference), **scorer.all(x)})
    for tol in DOPRI_TOLERANCES:
        result = make("sampler", "dopri5", rtol=tol, atol=tol).sample(field, x0)
        rows.append({"sampler": "dopri5", "tol": tol, "nfe": result.nfe,
                     "path": path_error(result.x, reference), **scorer.all(result.x)})
    return rows


def sde_rows(field: OracleField, x0: Tensor, scorer: Scorer, diffusions: dict[str, Any], seed: int,
             t_eps: float, last_step_size: float) -> list[dict]:
    rows = []
    for name, per_step in SDE_SAMPLERS.items():
        for label, diffusion in diffusions.items():
            for budget in BUDGETS:
                steps = (budget - 1) // per_step  # one evaluation goes to the last step
                if steps < 1:
                    continue
                variants = {}
                for last in LAST_STEPS:
                    sampler = make("sampler", name, steps=steps, diffusion=diffusion, last_step=last,
                                   t_eps=t_eps, last_step_size=last_step_size)
                    result = sampler.sample(field, x0, generator=torch.Generator().manual_seed(seed))
                    variants[last] = {"nfe": result.nfe, **scorer.all(result.x)}
                best = min(LAST_STEPS, key=lambda k: variants[k]["sw2"])
                rows.append({"sampler": name, "diffusion": label, "budget": budget, "steps": steps,
                             "last_step": best, **variants[best], "variants": variants})
    return rows


def run_interpolant(name: str, args: argparse.Namespace, target: tuple[Tensor, Tensor, Tensor],
                    reference: Tensor) -> dict:
    weights, means, covs = target
    oracle = SharedTimeMixtureOracle(registry().create("interpolant", name), m0=[0.0, 0.0], S0=torch.eye(2),
                                     weights=weights, means=means, covs=covs)
    check = check_fast_oracle(oracle, torch.Generator().manual_seed(args.seed + 11))
    field = OracleField(oracle)
    x0 = oracle.sample_prior(args.samples, torch.Generator().manual_seed(args.seed + 1))
    subset = x0[: args.path_samples]
    ref = make("sampler", "dopri5", rtol=REFERENCE_TOL, atol=REFERENCE_TOL).sample(field, subset)
    tighter = make("sampler", "dopri5", rtol=CHECK_TOL, atol=CHECK_TOL).sample(field, subset)
    scorer = Scorer(oracle, reference, args.projections, args.seed + 2)
    diffusions = {"optimal": make("diffusion", "optimal"),
                  f"constant({args.constant_eps:g})": make("diffusion", "constant", value=args.constant_eps)}
    return {
        "fast_oracle_max_rel_diff": check,
        "reference": {"tol": REFERENCE_TOL, "nfe": ref.nfe, "check_tol": CHECK_TOL, "check_nfe": tighter.nfe,
                      "max_diff_to_check": float((ref.x - tighter.x).norm(dim=1).max())},
        "ode": ode_rows(field, x0, ref.x, scorer),
        "sde": sde_rows(field, x0, scorer, diffusions, args.seed + 3, args.t_eps, args.last_step_size),
    }


# -- reporting --------------------------------------------------------------------------------

def fmt(v: float | None, digits: int = 3) -> str:
    if v is None:
        return "-"
    if v != v:
        return "nan"
    if math.isinf(v):
        return "inf"
    if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e4):
        return f"{v:.2e}"
    return f"{v:.{digits}f}"


def fixed_table(rows: list[dict], label_of: Any, cell_of: Any) -> list[str]:
    """A markdown table: one row per label, one column per NFE budget."""
    labels = list(dict.fromkeys(label_of(r) for r in rows))
    lines = ["| sampler | " + " | ".join(f"NFE {b}" for b in BUDGETS) + " |",
             "|---|" + "---|" * len(BUDGETS)]
    for label in labels:
        cells = []
        for budget in BUDGETS:
            match = [r for r in rows if label_of(r) == label and r["budget"] == budget]
            cells.append(cell_of(match[0]) if match else "-")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def observed_order(rows: list[dict], sampler: str) -> float | None:
    by_budget = {r["budget"]: r for r in rows if r["sampler"] == sampler and "budget" in r}
    if 16 in by_budget and 64 in by_budget and by_budget[64]["path"] > 0:
        return math.log(by_budget[16]["path"] / by_budget[64]["path"]) / math.log(4.0)
    return None


def row_label(r: dict) -> str:
    return f"{r['sampler']} ({r['diffusion']}, {r['last_step']})" if "diffusion" in r else r["sampler"]


def best_at(res: dict, budget: int) -> str:
    rows = [r for r in res["ode"] + res["sde"] if r.get("budget") == budget]
    best = min(rows, key=lambda r: r["sw2"])
    return f"{row_label(best)} {fmt(best['sw2'])}"


def markdown(results: dict) -> str:
    cfg = results["config"]
    floor = results["floor"]
    out = ["# Sampler error against an exact 2-D Gaussian mixture",
           "",
           f"Generated by `python benchmarks/gmm_samplers.py` ({cfg['wall_seconds']:.0f} s wall, "
           f"torch threads: {cfg['threads']}). Target: {cfg['components']} components on a circle of radius "
           f"{cfg['radius']}, radial/tangential std {cfg['radial_std']}/{cfg['tangential_std']}, weights "
           f"proportional to 1..{cfg['components']}; base N(0, I); exact fields from "
           f"`OracleField` over `MixtureOracle`'s formulas (evaluated once per call by "
           f"`SharedTimeMixtureOracle`, checked against `MixtureOracle.predict`: max relative difference "
           f"{fmt(max(r['fast_oracle_max_rel_diff'] for r in results['interpolants'].values()))}). {cfg['samples']} samples per run; SW2 with "
           f"{cfg['projections']} fixed directions against a fresh exact set; path error on the first "
           f"{cfg['path_samples']} points against dopri5 at rtol = atol = {REFERENCE_TOL:g}.",
           "",
           f"**Floors** (an independent exact sample set against the reference set, mean [min, max] "
           f"over {len(floor['draws'])} draws): SW2 = {fmt(floor['sw2'], 4)} [{fmt(floor['sw2_min'], 4)}, "
           f"{fmt(floor['sw2_max'], 4)}], weight L1 = {fmt(floor['w_l1'], 4)} [{fmt(floor['w_l1_min'], 4)}, "
           f"{fmt(floor['w_l1_max'], 4)}], off-mode fraction = {fmt(floor['off'], 4)}. All samplers share "
           "one x0 draw (and the SDEs one noise stream), so rows are paired: their differences are far "
           "less noisy than the floor's spread, and the tightest dopri5 row (the exact transport of "
           "that x0) is the paired floor of the ODE samplers.",
           "",
           "Cells: `SW2 / weight-L1 (NFE used)`; for ODE samplers a second table gives the mean "
           "pathwise error. SDE cells add the last step that won (m = mean, t = tweedie).",
           ""]
    for name, res in results["interpolants"].items():
        ref = res["reference"]
        out += [f"## `{name}` interpolant", "",
                f"Reference dopri5 ({ref['nfe']} NFE) differs from dopri5 at {ref['check_tol']:g} "
                f"({ref['check_nfe']} NFE) by at most {fmt(ref['max_diff_to_check'])}.", "",
                "### ODE samplers: SW2 / weight L1 (NFE)", ""]
        fixed = [r for r in res["ode"] if "budget" in r]
        out += fixed_table(fixed, lambda r: r["sampler"],
                           lambda r: f"{fmt(r['sw2'])} / {fmt(r['w_l1'])} ({r['nfe']})")
        out += ["", "### ODE samplers: mean pathwise error vs dopri5 reference", ""]
        out += fixed_table(fixed, lambda r: r["sampler"], lambda r: fmt(r["path"]))
        orders = {s: observed_order(fixed, s) for s in ODE_SAMPLERS}
        out += ["", "Observed order from NFE 16 to 64: "
                + ", ".join(f"{s} {fmt(o, 2)}" for s, o in orders.items()), "",
                "### dopri5 (adaptive)", "", "| rtol = atol | NFE | SW2 | weight L1 | path error |",
                "|---|---|---|---|---|"]
        for r in res["ode"]:
            if "tol" in r:
                out.append(f"| {r['tol']:g} | {r['nfe']} | {fmt(r['sw2'])} | {fmt(r['w_l1'])} | {fmt(r['path'])} |")
        out += ["", "### SDE samplers: SW2 / weight L1 (NFE, last step)", ""]
        out += fixed_table(res["sde"], lambda r: f"{r['sampler']}, {r['diffusion']}",
                           lambda r: f"{fmt(r['sw2'])} / {fmt(r['w_l1'])} ({r['nfe']}, {r['last_step'][0]})")
        out += ["", "Lowest SW2 at each budget (all fixed-budget rows): " + "; ".join(
            f"NFE {b}: {best_at(res, b)}" for b in BUDGETS), ""]
    return "\n".join(out) + "\n"


def finite_json(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (strict JSON has no inf/nan)."""
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def print_summary(results: dict) -> None:
    print(markdown(results))


# -- main -------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/gmm_samplers.json"),
                   help="JSON output; the markdown table goes next to it with suffix .md")
    p.add_argument("--samples", type=int, default=20_000, help="samples per sampler run and per exact set")
    p.add_argument("--path-samples", type=int, default=2_000, help="points used for the pathwise error")
    p.add_argument("--projections", type=int, default=64, help="sliced-Wasserstein directions")
    p.add_argument("--floor-repeats", type=int, default=5, help="exact sample sets drawn for the floor")
    p.add_argument("--components", type=int, default=8)
    p.add_argument("--radius", type=float, default=4.0)
    p.add_argument("--radial-std", type=float, default=0.45)
    p.add_argument("--tangential-std", type=float, default=0.15)
    p.add_argument("--constant-eps", type=float, default=1.0, help="value of the constant diffusion")
    p.add_argument("--t-eps", type=float, default=1e-3, help="SDE start time (sampler default)")
    p.add_argument("--last-step-size", type=float, default=0.04, help="SDE last step size (sampler default)")
    p.add_argument("--interpolants", nargs="+", default=["linear", "gvp"])
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads; the tensors are small, so 1 is fastest (more threads mostly contend)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    target = mixture_parameters(args.components, args.radius, args.radial_std, args.tangential_std)
    data = MixtureOracle(registry().create("interpolant", "linear"), m0=[0.0, 0.0], S0=torch.eye(2),
                         weights=target[0], means=target[1], covs=target[2])
    reference = data.sample_data(args.samples, torch.Generator().manual_seed(args.seed + 100))
    floor_scorer = Scorer(data, reference, args.projections, args.seed + 2)
    draws = [floor_scorer.all(data.sample_data(args.samples, torch.Generator().manual_seed(args.seed + 101 + r)))
             for r in range(args.floor_repeats)]
    results: dict[str, Any] = {"floor": summarise_floor(draws), "interpolants": {}}
    with torch.no_grad():
        for name in args.interpolants:
            began = time.perf_counter()
            results["interpolants"][name] = run_interpolant(name, args, target, reference)
            print(f"[{name}] done in {time.perf_counter() - began:.1f} s", flush=True)
    results["config"] = {
        "samples": args.samples, "path_samples": args.path_samples, "projections": args.projections,
        "components": args.components, "radius": args.radius, "radial_std": args.radial_std,
        "tangential_std": args.tangential_std, "weights": target[0].tolist(), "constant_eps": args.constant_eps,
        "t_eps": args.t_eps, "last_step_size": args.last_step_size, "budgets": list(BUDGETS),
        "dopri5_tolerances": list(DOPRI_TOLERANCES), "floor_repeats": args.floor_repeats, "seed": args.seed, "threads": torch.get_num_threads(),
        "wall_seconds": time.perf_counter() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(finite_json(results), indent=1, allow_nan=False) + "\n")
    args.out.with_suffix(".md").write_text(markdown(results))
    print_summary(results)
    print(f"wrote {args.out} and {args.out.with_suffix('.md')} in {results['config']['wall_seconds']:.1f} s")
    return results


if __name__ == "__main__":
    main()
