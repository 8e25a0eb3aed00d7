"""The built-in priors (plugins/priors): closed-form densities, sample moments, gradients of the
learnable ones, shape checks and their messages, the "another dataset" prior, recipe parsing."""

from __future__ import annotations

import math
from collections.abc import Iterator

import attrs
import numpy as np
import pytest
import torch

import interpgen_plugins.priors as priors_plugin
from interpgen.config import RecipeConverter, RecipeError
from interpgen.plugin_manager import load_plugins
from interpgen.protocols import Prior
from interpgen.registry import Registry
from interpgen_plugins.priors import (DatasetPriorParams, DiagonalGaussianParams, GaussianMixtureParams,
                                      GaussianParams, PointMassParams, UniformParams)

LOG_2PI = math.log(2 * math.pi)


# -- helpers ------------------------------------------------------------------------------------

@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    priors_plugin.interpgen_register(reg)
    reg.add("dataset", "blobs", BlobsParams, build=build_blobs)
    return reg


@pytest.fixture
def float64() -> Iterator[None]:
    """Build priors in float64 so that recipe values such as 0.3 are held exactly as numpy holds them."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def build(registry: Registry, name: str, params=None, event_shape=(2,), **context):
    return registry.create("prior", name, params, event_shape=event_shape, registry=registry, **context)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def assert_moments(x: torch.Tensor, mean: np.ndarray, var: np.ndarray, n_se: float = 5.0) -> None:
    """Sample mean and variance per feature within ``n_se`` standard errors of the truth.

    The standard errors are estimated from the samples themselves (std/sqrt(n) for the mean,
    std of the squared deviations / sqrt(n) for the variance). With a fixed seed the test is
    deterministic; 5 standard errors is where a correct sampler would fail with probability
    below 1e-6 per feature, while a wrong mean or scale of a few percent is detected.
    """
    x = x.double().numpy()
    n = x.shape[0]
    m = x.mean(axis=0)
    dev2 = (x - m) ** 2
    v = dev2.mean(axis=0)
    se_mean = x.std(axis=0) / math.sqrt(n)
    se_var = dev2.std(axis=0) / math.sqrt(n)
    assert np.all(np.abs(m - mean) < n_se * se_mean), (m, mean, se_mean)
    assert np.all(np.abs(v - var) < n_se * se_var), (v, var, se_var)


def normal_log_pdf(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """log N(x; mean, std^2) entrywise, written out in float64."""
    return -0.5 * ((x - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)


# -- a tiny data source for the "dataset" prior --------------------------------------------------

@attrs.frozen(kw_only=True)
class BlobsParams:
    """Test data: N(center, 0.1^2 I) in ``dim`` dimensions."""

    center: float = 3.0
    dim: int = 2
    short: bool = False  # return one row too few (a broken source)


class Blobs:
    num_classes = None

    def __init__(self, params: BlobsParams, context: dict):
        self.params = params
        self.context = context
        self.event_shape = (params.dim,)

    def batches(self, batch_size, *, generator):
        while True:
            yield self.reference(batch_size, generator=generator), None

    def reference(self, num, *, generator):
        n = num - 1 if self.params.short else num
        return self.params.center + 0.1 * torch.randn((n, self.params.dim), generator=generator)

    def data_affine(self):
        return None


def build_blobs(params: BlobsParams, **context) -> Blobs:
    return Blobs(params, context)


# -- every prior follows the protocol --------------------------------------------------------------

ALL_PRIORS = [
    ("gaussian", GaussianParams()),
    ("diagonal_gaussian", DiagonalGaussianParams(mean=(1.0, 2.0), std=0.5)),
    ("diagonal_gaussian", DiagonalGaussianParams(learnable=True)),
    ("gmm", GaussianMixtureParams(means=((0.0, 0.0), (1.0, 1.0)))),
    ("gmm", GaussianMixtureParams(components=3, learnable=True)),
    ("uniform", UniformParams()),
    ("point_mass", PointMassParams(location=(1.0, -1.0))),
    ("dataset", DatasetPriorParams(data=BlobsParams())),
]


@pytest.mark.parametrize(("name", "params"), ALL_PRIORS)
def test_each_prior_follows_the_protocol_and_samples_its_shape(registry, name, params):
    prior = build(registry, name, params)
    assert isinstance(prior, Prior)
    assert isinstance(prior, torch.nn.Module)
    x = prior.sample(7, (2,), generator=gen())
    assert x.shape == (7, 2) and x.dtype == torch.get_default_dtype()
    x64 = prior.sample(3, (2,), generator=gen(), dtype=torch.float64)
    assert x64.dtype == torch.float64
    # the same generator seed gives the same draws
    assert torch.equal(prior.sample(5, (2,), generator=gen(4)), prior.sample(5, (2,), generator=gen(4)))
    assert prior.sample(0, (2,), generator=gen()).shape == (0, 2)


def test_registered_through_the_entry_point():
    plugins = load_plugins(strict=False)
    assert "priors" not in [f.name for f in plugins.failed]
    assert set(plugins.registry.names("prior")) >= {
        "gaussian", "diagonal_gaussian", "gmm", "uniform", "point_mass", "dataset"}


def test_standard_normal_flag(registry):
    assert build(registry, "gaussian").standard_normal is True
    assert build(registry, "diagonal_gaussian").standard_normal is True  # mean 0, std 1, fixed
    assert build(registry, "diagonal_gaussian", DiagonalGaussianParams(mean=0.1)).standard_normal is False
    assert build(registry, "diagonal_gaussian", DiagonalGaussianParams(learnable=True)).standard_normal is False
    assert build(registry, "gmm", GaussianMixtureParams(means=(0.0,))).standard_normal is True
    assert build(registry, "gmm", GaussianMixtureParams(means=(0.0, 1.0))).standard_normal is False
    assert build(registry, "uniform").standard_normal is False
    assert build(registry, "point_mass").standard_normal is False
    assert build(registry, "dataset", DatasetPriorParams(data=BlobsParams())).standard_normal is False


def test_only_the_dataset_prior_is_data(registry):
    # the mirror interpolant (math.md 1.6) asks for a prior whose x0 are data
    for name, params in ALL_PRIORS:
        assert build(registry, name, params).is_data is (name == "dataset"), name


# -- closed-form densities (float64) -----------------------------------------------------------

def test_gaussian_log_prob_closed_form(registry, float64):
    prior = build(registry, "gaussian", event_shape=(2, 3, 4))  # any event shape
    x = torch.randn(5, 2, 3, 4, generator=gen(1), dtype=torch.float64)
    xn = x.numpy().reshape(5, -1)
    expected = -0.5 * (xn ** 2).sum(axis=1) - 0.5 * 24 * np.log(2 * np.pi)
    np.testing.assert_allclose(prior.log_prob(x).numpy(), expected, rtol=1e-13)


def test_diagonal_gaussian_log_prob_closed_form(registry, float64):
    mean, std = np.array([0.5, -1.0, 2.0]), np.array([0.3, 1.5, 2.0])
    prior = build(registry, "diagonal_gaussian",
                  DiagonalGaussianParams(mean=tuple(mean), std=tuple(std)), event_shape=(3,))
    x = torch.randn(6, 3, generator=gen(2), dtype=torch.float64) * 2
    expected = normal_log_pdf(x.numpy(), mean, std).sum(axis=1)
    np.testing.assert_allclose(prior.log_prob(x).numpy(), expected, rtol=1e-12)
    # a scalar std broadcasts over features
    prior = build(registry, "diagonal_gaussian", DiagonalGaussianParams(mean=1.0, std=2.0), event_shape=(3,))
    expected = normal_log_pdf(x.numpy(), np.ones(3), 2 * np.ones(3)).sum(axis=1)
    np.testing.assert_allclose(prior.log_prob(x).numpy(), expected, rtol=1e-12)


def test_gmm_log_prob_closed_form_with_unnormalised_weights(registry, float64):
    weights = np.array([2.0, 6.0])  # normalised to 0.25, 0.75
    means = np.array([[-1.0, 0.5], [2.0, 1.0]])
    stds = np.array([[0.7, 0.7], [1.2, 0.4]])
    prior = build(registry, "gmm", GaussianMixtureParams(
        weights=tuple(weights), means=tuple(map(tuple, means)), stds=(0.7, (1.2, 0.4))))
    x = torch.randn(8, 2, generator=gen(3), dtype=torch.float64) * 2
    xn = x.numpy()
    density = sum(w / weights.sum() * np.exp(normal_log_pdf(xn, m, s).sum(axis=1))
                  for w, m, s in zip(weights, means, stds))
    np.testing.assert_allclose(prior.log_prob(x).numpy(), np.log(density), rtol=1e-12)
    np.testing.assert_allclose(prior.weights.numpy(), [0.25, 0.75], rtol=1e-15)


def test_gmm_log_prob_is_stable_far_from_every_component(registry, float64):
    prior = build(registry, "gmm", GaussianMixtureParams(means=(0.0, 1.0), stds=(0.1, 0.1)), event_shape=(1,))
    x = torch.tensor([[60.0]], dtype=torch.float64)
    # the nearer component dominates: log(1/2 N(60; 1, 0.01))
    expected = math.log(0.5) + normal_log_pdf(np.array(60.0), np.array(1.0), np.array(0.1))
    assert prior.log_prob(x).item() == pytest.approx(float(expected), rel=1e-12)


def test_uniform_log_prob_inside_on_the_edge_and_outside(registry, float64):
    prior = build(registry, "uniform", UniformParams(low=(-1.0, 0.0), high=(1.0, 0.5)))
    x = torch.tensor([[0.0, 0.25], [-1.0, 0.5], [1.1, 0.25], [0.0, -1e-9]], dtype=torch.float64)
    lp = prior.log_prob(x)
    inside = -(math.log(2.0) + math.log(0.5))
    assert lp[0].item() == pytest.approx(inside, rel=1e-15)
    assert lp[1].item() == pytest.approx(inside, rel=1e-15)  # the closed box includes its faces
    assert lp[2].item() == -math.inf and lp[3].item() == -math.inf


def test_point_mass_samples_the_location_and_has_no_density(registry):
    prior = build(registry, "point_mass", PointMassParams(location=(1.5, -2.0)))
    x = prior.sample(4, (2,), generator=gen())
    assert torch.equal(x, torch.tensor([[1.5, -2.0]]).expand(4, 2))
    x[0, 0] = 9.0  # samples are fresh tensors, not views of the prior's location
    assert torch.equal(prior.sample(1, (2,)), torch.tensor([[1.5, -2.0]]))
    with pytest.raises(NotImplementedError, match="prior 'point_mass' has no density"):
        prior.log_prob(x)


# -- sample moments ------------------------------------------------------------------------------

N_MC = 20_000


def test_gaussian_moments(registry):
    x = build(registry, "gaussian", event_shape=(3,)).sample(N_MC, (3,), generator=gen(10))
    assert_moments(x, np.zeros(3), np.ones(3))


def test_diagonal_gaussian_moments(registry):
    prior = build(registry, "diagonal_gaussian", DiagonalGaussianParams(mean=(1.0, -3.0), std=(0.5, 2.0)))
    assert_moments(prior.sample(N_MC, (2,), generator=gen(11)), np.array([1.0, -3.0]), np.array([0.25, 4.0]))


def test_gmm_moments(registry):
    w, m, s = np.array([0.2, 0.8]), np.array([[-2.0, 0.0], [1.0, 3.0]]), np.array([[0.5, 0.5], [1.0, 0.2]])
    prior = build(registry, "gmm", GaussianMixtureParams(weights=(1.0, 4.0), means=((-2.0, 0.0), (1.0, 3.0)),
                                                         stds=(0.5, (1.0, 0.2))))
    mean = (w[:, None] * m).sum(axis=0)
    var = (w[:, None] * (s ** 2 + m ** 2)).sum(axis=0) - mean ** 2
    assert_moments(prior.sample(N_MC, (2,), generator=gen(12)), mean, var)


def test_uniform_moments(registry):
    prior = build(registry, "uniform", UniformParams(low=(0.0, -3.0), high=(1.0, 5.0)))
    x = prior.sample(N_MC, (2,), generator=gen(13))
    assert bool((x[:, 0] >= 0).all() and (x[:, 0] < 1).all() and (x[:, 1] >= -3).all() and (x[:, 1] < 5).all())
    assert_moments(x, np.array([0.5, 1.0]), np.array([1 / 12, 64 / 12]))


def test_samples_follow_device_and_dtype(registry):
    prior = build(registry, "diagonal_gaussian", DiagonalGaussianParams(mean=1.0))
    x = prior.sample(3, (2,), generator=gen(), device="cpu", dtype=torch.float64)
    assert x.dtype == torch.float64 and x.device.type == "cpu"
    prior.double()  # a prior's samples default to where its tensors are
    assert prior.sample(3, (2,), generator=gen()).dtype == torch.float64


# -- learnable priors -----------------------------------------------------------------------------

def test_learnable_diagonal_gaussian_gradients(registry):
    prior = build(registry, "diagonal_gaussian", DiagonalGaussianParams(mean=(0.5, 1.0), std=2.0, learnable=True))
    assert {n for n, _ in prior.named_parameters()} == {"mean", "log_std"}
    x = torch.randn(16, 2, generator=gen(5))
    prior.log_prob(x).sum().backward()
    # d/dm log N = (x - m)/s^2 and d/dlog s log N = ((x - m)/s)^2 - 1, summed over the batch
    dev = x - torch.tensor([0.5, 1.0])
    torch.testing.assert_close(prior.mean.grad, (dev / 4).sum(0))
    torch.testing.assert_close(prior.log_std.grad, (dev ** 2 / 4 - 1).sum(0))
    prior.zero_grad()
    # reparameterised samples x0 = m + s xi carry gradients: d sum(x0)/dm = num, d sum(x0)/dlog s = sum(s xi)
    x0 = prior.sample(10, (2,), generator=gen(6))
    x0.sum().backward()
    torch.testing.assert_close(prior.mean.grad, torch.full((2,), 10.0))
    torch.testing.assert_close(prior.log_std.grad, (x0 - prior.mean).detach().sum(0))


def test_learnable_gmm_gradients(registry):
    prior = build(registry, "gmm", GaussianMixtureParams(means=((-1.0, 0.0), (1.0, 0.0)), learnable=True))
    assert {n for n, _ in prior.named_parameters()} == {"logits", "means", "log_stds"}
    prior.log_prob(torch.randn(16, 2, generator=gen(7))).sum().backward()
    for name, p in prior.named_parameters():
        assert p.grad is not None and bool((p.grad != 0).all()), name
    prior.zero_grad()
    x0 = prior.sample(50, (2,), generator=gen(8))
    x0.sum().backward()
    # each component's mean receives one unit per sample drawn from it (both components drawn)
    counts = prior.means.grad[:, 0]
    assert counts.sum().item() == 50 and bool((counts > 0).all())
    torch.testing.assert_close(prior.means.grad[:, 1], counts)
    assert bool((prior.log_stds.grad != 0).all())
    # the discrete component draw is not reparameterised: no gradient reaches the weights
    assert prior.logits.grad is None or bool((prior.logits.grad == 0).all())


def test_fixed_priors_have_no_parameters_or_state(registry):
    for name, params in ALL_PRIORS:
        if getattr(params, "learnable", False):
            continue
        prior = build(registry, name, params)
        assert list(prior.parameters()) == [] and prior.state_dict() == {}, name


def test_learnable_gmm_fits_a_two_component_mixture(registry, float64):
    """Maximum likelihood by Adam recovers a known, well separated 2-component mixture."""
    g = gen(0)
    n = 1000
    labels = (torch.rand(n, generator=g) < 0.7).long()
    centres = torch.tensor([[-2.0, 0.0], [2.0, 1.0]])
    scales = torch.tensor([[0.5, 0.5], [0.5, 0.8]])
    data = centres[labels] + scales[labels] * torch.randn(n, 2, generator=g)
    model = build(registry, "gmm", GaussianMixtureParams(components=2, learnable=True, seed=1))
    start = model.means.detach().clone()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        (-model.log_prob(data).mean()).backward()
        opt.step()
    order = torch.argsort(model.means[:, 0].detach())
    means, weights = model.means.detach()[order], model.weights.detach()[order]
    # The components are 8 stds apart, so the maximum-likelihood fit is (to far below 1e-3) each
    # component's sample mean and sample fraction; 5e-3 allows for the optimiser's last steps.
    sample_means = torch.stack([data[labels == k].mean(0) for k in range(2)])
    sample_fraction = labels.double().mean()
    torch.testing.assert_close(means, sample_means, atol=5e-3, rtol=0)
    torch.testing.assert_close(weights, torch.stack([1 - sample_fraction, sample_fraction]), atol=5e-3, rtol=0)
    # and hence the true means within a few standard errors (<= 0.8 / sqrt(300) ~ 0.05)
    torch.testing.assert_close(means, centres, atol=0.1, rtol=0)
    torch.testing.assert_close(model.stds.detach()[order], scales, atol=0.1, rtol=0)
    assert (start - centres).abs().max() > 0.5  # it did not start at the answer


def test_gmm_components_start_is_seeded(registry):
    a = build(registry, "gmm", GaussianMixtureParams(components=3, learnable=True, seed=4))
    b = build(registry, "gmm", GaussianMixtureParams(components=3, learnable=True, seed=4))
    c = build(registry, "gmm", GaussianMixtureParams(components=3, learnable=True, seed=5))
    assert torch.equal(a.means, b.means) and not torch.equal(a.means, c.means)
    assert a.means.shape == (3, 2)
    torch.testing.assert_close(a.weights.detach(), torch.full((3,), 1 / 3))


# -- shape checks and their messages ---------------------------------------------------------------

@pytest.mark.parametrize(("name", "params", "message"), [
    ("diagonal_gaussian", DiagonalGaussianParams(mean=(0.0, 1.0, 2.0)),
     "prior 'diagonal_gaussian': mean has 3 values but the data has 2 features"),
    ("diagonal_gaussian", DiagonalGaussianParams(std=(1.0,)),
     "prior 'diagonal_gaussian': std has 1 values but the data has 2 features"),
    ("gmm", GaussianMixtureParams(means=((0.0, 1.0, 2.0), 1.0)),
     "prior 'gmm': means[0] has 3 values but the data has 2 features"),
    ("gmm", GaussianMixtureParams(means=(0.0, 1.0), stds=(1.0, (1.0, 2.0, 3.0))),
     "prior 'gmm': stds[1] has 3 values but the data has 2 features"),
    ("uniform", UniformParams(low=(0.0, 0.0, 0.0), high=1.0),
     "prior 'uniform': low has 3 values but the data has 2 features"),
    ("point_mass", PointMassParams(location=(1.0, 2.0, 3.0)),
     "prior 'point_mass': location has 3 values but the data has 2 features"),
])
def test_parameters_that_do_not_fit_the_data(registry, name, params, message):
    with pytest.raises(ValueError) as info:
        build(registry, name, params)
    assert str(info.value) == message


def test_image_event_shapes_name_the_shape(registry):
    with pytest.raises(ValueError) as info:
        build(registry, "diagonal_gaussian", DiagonalGaussianParams(mean=(0.0, 1.0, 2.0)), event_shape=(3, 4, 4))
    assert str(info.value) == ("prior 'diagonal_gaussian': mean has 3 values but the data has 48 features "
                               "(event shape (3, 4, 4))")
    prior = build(registry, "diagonal_gaussian", DiagonalGaussianParams(mean=tuple(range(4))), event_shape=(2, 2))
    assert torch.equal(prior.mean, torch.tensor([[0.0, 1.0], [2.0, 3.0]]))  # row-major order


def test_sample_and_log_prob_check_the_shape(registry):
    prior = build(registry, "gaussian")
    with pytest.raises(ValueError) as info:
        prior.sample(4, (3,), generator=gen())
    assert str(info.value) == "prior 'gaussian' was built for event shape (2,) but was asked for samples of shape (3,)"
    with pytest.raises(ValueError) as info:
        prior.log_prob(torch.zeros(4, 3))
    assert str(info.value) == "prior 'gaussian' expects x of shape (B, 2), got (4, 3)"
    with pytest.raises(ValueError, match="num must be an int >= 0, got -1"):
        prior.sample(-1, (2,))
    with pytest.raises(ValueError, match="event_shape must be a non-empty tuple of positive ints"):
        build(registry, "gaussian", event_shape=(0,))


@pytest.mark.parametrize(("make", "message"), [
    (lambda: DiagonalGaussianParams(std=-1.0), "std must be > 0, got -1.0"),
    (lambda: DiagonalGaussianParams(std=(1.0, 0.0)), "std must be > 0, got (1.0, 0.0)"),
    (lambda: DiagonalGaussianParams(mean=(1.0, 2.0), std=(1.0, 2.0, 3.0)), "mean has 2 values but std has 3"),
    (lambda: DiagonalGaussianParams(mean=math.nan), "mean must be finite, got nan"),
    (lambda: DiagonalGaussianParams(mean=()), "mean must have at least one value, got ()"),
    (lambda: UniformParams(low=1.0, high=1.0), "low must be < high, got low 1.0 and high 1.0"),
    (lambda: UniformParams(low=(0.0, 2.0), high=1.0), "low must be < high (feature 1), got low 2.0 and high 1.0"),
    (lambda: GaussianMixtureParams(means=(0.0, 1.0), weights=(1.0, -1.0)), "weights must be > 0, got (1.0, -1.0)"),
    (lambda: GaussianMixtureParams(means=(0.0, 1.0), weights=(1.0,)), "weights has 1 entries but there are 2 components"),
    (lambda: GaussianMixtureParams(means=(0.0, 1.0), stds=(1.0, 0.0)), "stds[1] must be > 0, got 0.0"),
    (lambda: GaussianMixtureParams(means=((0.0, 1.0), (1.0,))),
     "the vectors in means must have one length (one value per feature), found lengths 1, 2"),
    (lambda: GaussianMixtureParams(means=((0.0, 1.0),), stds=((1.0, 1.0, 1.0),)),
     "the vectors in means and stds must have one length (one value per feature), found lengths 2, 3"),
    (lambda: GaussianMixtureParams(components=2), "components without means needs learnable = true"),
    (lambda: GaussianMixtureParams(), "give exactly one of means"),
    (lambda: GaussianMixtureParams(means=(0.0,), components=1, learnable=True), "give exactly one of means"),
    (lambda: GaussianMixtureParams(components=0, learnable=True), "components must be an integer >= 1 or left out, got 0"),
    (lambda: GaussianMixtureParams(means=1.0), "means must be a non-empty list (one entry per component), got 1.0"),
    (lambda: GaussianMixtureParams(means=((0.0, "a"),)), "means[0] must hold numbers, got str 'a'"),
])
def test_params_reject_bad_values(make, message):
    with pytest.raises((ValueError, TypeError)) as info:
        make()
    assert str(info.value).startswith(message), str(info.value)


# -- the "another dataset" prior ---------------------------------------------------------------------

def test_dataset_prior_samples_the_source(registry, tmp_path):
    prior = build(registry, "dataset", DatasetPriorParams(data=BlobsParams(center=3.0)), root=tmp_path,
                  num_classes=10)
    # the source was built through the registry with the run's context (not the main data's classes)
    assert prior.source.context["root"] == tmp_path and prior.source.context["registry"] is registry
    assert "num_classes" not in prior.source.context
    x = prior.sample(N_MC, (2,), generator=gen(20), dtype=torch.float64)
    assert x.dtype == torch.float64
    assert_moments(x, np.array([3.0, 3.0]), np.array([0.01, 0.01]))
    assert torch.equal(prior.sample(5, (2,), generator=gen(1)), prior.sample(5, (2,), generator=gen(1)))
    torch.manual_seed(3)
    a = prior.sample(5, (2,))
    torch.manual_seed(3)
    assert torch.equal(a, prior.sample(5, (2,)))  # without a generator it follows the global seed
    with pytest.raises(NotImplementedError, match="prior 'dataset' has no density"):
        prior.log_prob(x)


def test_dataset_prior_event_shape_must_match(registry):
    with pytest.raises(ValueError) as info:
        build(registry, "dataset", DatasetPriorParams(data=BlobsParams(dim=3)), event_shape=(2,))
    assert str(info.value).startswith(
        "prior 'dataset': the dataset 'blobs' has event shape (3,) but the data has event shape (2,)")


def test_dataset_prior_rejects_a_source_returning_the_wrong_count(registry):
    prior = build(registry, "dataset", DatasetPriorParams(data=BlobsParams(short=True)))
    with pytest.raises(ValueError, match=r"returned samples of shape \(3, 2\) when asked for 4 of shape \(2,\)"):
        prior.sample(4, (2,), generator=gen())


def test_dataset_prior_from_a_recipe_table(registry):
    conv = RecipeConverter(registry)
    params = conv.structure_part("prior", {"name": "dataset", "data": {"name": "blobs", "center": -1.0}})
    assert params == DatasetPriorParams(data=BlobsParams(center=-1.0))
    assert conv.unstructure_part(params) == {"name": "dataset", "data": {"name": "blobs", "center": -1.0,
                                                                          "dim": 2, "short": False}}
    assert conv.structure_part("prior", conv.unstructure_part(params)) == params
    prior = build(registry, "dataset", params)
    assert prior.sample(3, (2,), generator=gen()).mean().item() == pytest.approx(-1.0, abs=0.3)
    with pytest.raises(RecipeError, match="unknown dataset 'nope'"):
        conv.structure_part("prior", {"name": "dataset", "data": "nope"})


# -- recipe parsing of scalar-or-vector fields --------------------------------------------------------

def test_scalar_or_vector_fields_from_a_recipe_round_trip(registry):
    # fields typed ``float | tuple[float, ...]``: the kernel's converter takes a number or a list
    conv = RecipeConverter(registry)
    tables = [
        {"name": "diagonal_gaussian", "mean": 1, "std": [0.5, 2], "learnable": True},
        {"name": "uniform", "low": [-1, 0], "high": 2},
        {"name": "point_mass", "location": [1.0, 2.0]},
    ]
    for table in tables:
        params = conv.structure_part("prior", table)
        again = conv.structure_part("prior", conv.unstructure_part(params))
        assert again == params
    assert conv.structure_part("prior", tables[0]) == DiagonalGaussianParams(mean=1.0, std=(0.5, 2.0), learnable=True)
    for bad in ("1.0", True, [1.0, "2"]):  # scalars stay strict either way
        with pytest.raises(RecipeError, match="mean"):
            conv.structure_part("prior", {"name": "diagonal_gaussian", "mean": bad}, path="prior")
    with pytest.raises(RecipeError) as info:
        conv.structure_part("prior", {"name": "uniform", "low": 2.0}, path="prior")
    assert "low must be < high, got low 2.0 and high 1.0 @ prior" in str(info.value)


def test_gmm_nested_fields_from_a_recipe(registry):
    # ``tuple[float | tuple[float, ...], ...]`` nests the number-or-list union inside a tuple
    conv = RecipeConverter(registry)
    table = {"name": "gmm", "means": [[0, 1], 2.5], "stds": [1.0, [2.0, 3.0]], "weights": [1, 3]}
    params = conv.structure_part("prior", table)
    assert params == GaussianMixtureParams(means=((0.0, 1.0), 2.5), stds=(1.0, (2.0, 3.0)), weights=(1.0, 3.0))
    assert conv.structure_part("prior", conv.unstructure_part(params)) == params
    with pytest.raises(RecipeError) as info:
        conv.structure_part("prior", {"name": "gmm", "means": [[0, "1"]]}, path="prior")
    assert "expected a number, got str '1' @ prior.means[0][1]" in str(info.value)
