"""ScoreVAE's math against closed forms: a linear-Gaussian model under the VP SDE, where the prior score, the latent
posterior score and the conditional score are all known exactly; the objective against DRL's; the metrics by hand."""
from __future__ import annotations

import math

import pytest
import torch

from diffrep.evaluate.reconstruction import (
    LPIPS_INPUTS,
    backbone_input,
    classifier_distances,
    l2_distances,
    load_lpips,
    lpips_distances,
    vgg_weights,
)
from diffrep.nets.classifier import DomainClassifier
from diffrep.objectives import (
    bayes_decoder_score,
    drl_objective,
    encoder_log_density,
    latent_posterior_score,
    likelihood_weight,
    scorevae_objective,
)
from diffrep.sampling import sample
from diffrep.sde import VESDE, VPSDE

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
D = torch.float64  # closed forms: compare in double precision


class LinearGaussian:
    """x0 ~ N(0, s^2 I_d), z = A x0 + n, n ~ N(0, tau^2 I_k), A = a [I_k 0] (so every covariance in z is diagonal)."""

    def __init__(self, sde: VPSDE, d: int = 3, k: int = 2, s: float = 0.8, a: float = 1.5, tau: float = 0.3):
        self.sde, self.d, self.k, self.s2, self.tau2 = sde, d, k, s * s, tau * tau
        self.A = a * torch.eye(k, d, dtype=D)

    def _kernel(self, t):
        return self.sde.mean_coeff(t)[:, None], self.sde.var(t)[:, None]

    def prior_score(self, x, t):
        """grad log p_t(x) with p_t = N(0, (m^2 s^2 + sigma^2) I)."""
        m, var = self._kernel(t)
        return -x / (m**2 * self.s2 + var)

    def encoder(self, x, t):
        """p(z | x_t) = N(A c x_t, (a^2 v + tau^2) I): the exact latent posterior, as mean and log-variance."""
        m, var = self._kernel(t)
        total = m**2 * self.s2 + var
        c, v = m * self.s2 / total, self.s2 * var / total
        logvar = torch.log(v * self.A.pow(2).sum(1) + self.tau2)
        return (c * x) @ self.A.T, logvar.expand(x.shape[0], self.k)

    def conditional(self, z, m, var):
        """Mean and covariance of x_t | z for a kernel N(m x0, var I): the joint Gaussian conditioned."""
        szz = self.s2 * self.A @ self.A.T + self.tau2 * torch.eye(self.k, dtype=D)
        gain = m * self.s2 * self.A.T @ torch.linalg.inv(szz)
        cov = (m**2 * self.s2 + var) * torch.eye(self.d, dtype=D) - gain @ (m * self.s2 * self.A)
        return z @ gain.T, cov

    def conditional_score(self, x, z, t):
        """grad_x log p_t(x | z), exactly."""
        rows = []
        for xi, zi, ti in zip(x, z, t):
            mean, cov = self.conditional(zi[None], self.sde.mean_coeff(ti), self.sde.var(ti))
            rows.append(-torch.linalg.solve(cov, xi - mean[0]))
        return torch.stack(rows)


@pytest.fixture
def model():
    return LinearGaussian(VPSDE(0.1, 20.0))


def test_bayes_rule_gives_the_exact_conditional_score(model):
    """prior score + grad log p(z | x_t) = grad log p(x_t | z), at times from eps to 1, both log-density variants."""
    g = torch.Generator().manual_seed(0)
    x, z = torch.randn(6, 3, generator=g, dtype=D), torch.randn(6, 2, generator=g, dtype=D)
    t = torch.tensor([1e-3, 0.01, 0.1, 0.4, 0.8, 1.0], dtype=D)
    exact = model.conditional_score(x, z, t)
    for full in (True, False):  # the latent posterior's variance does not depend on x_t here: both agree
        log_q = lambda xt, tt, full=full: encoder_log_density(z, *model.encoder(xt, tt), full=full)
        torch.testing.assert_close(bayes_decoder_score(model.prior_score, log_q, x, t), exact, rtol=1e-8, atol=1e-8)


def test_conditional_sampler_returns_the_posterior(model):
    """Euler-Maruyama on the reverse SDE driven by the assembled score samples p(x0 | z)."""
    n, z = 4000, torch.tensor([[1.2, -0.7]], dtype=D)
    log_q = lambda xt, tt: encoder_log_density(z.expand(xt.shape[0], -1), *model.encoder(xt, tt))
    score = lambda xt, tt: bayes_decoder_score(model.prior_score, log_q, xt, tt)
    x_init = torch.randn(n, 3, generator=torch.Generator().manual_seed(1), dtype=D)
    x, nfe = sample(score, model.sde, (n, 3), "em", 250, snr=0.0, x_init=x_init, generator=torch.Generator().manual_seed(2))
    mean, cov = model.conditional(z, torch.tensor(1.0, dtype=D), torch.tensor(0.0, dtype=D))
    assert nfe == 250
    torch.testing.assert_close(x.mean(0), mean[0], atol=4 * math.sqrt(model.s2 / n) + 0.01, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), cov, atol=0.05, rtol=0)
    assert cov[0, 0] < 0.1 < cov[2, 2]  # the code pins the observed coordinates; the third keeps its prior spread


def test_encoder_log_density_full_and_authors_variant():
    g = torch.Generator().manual_seed(2)
    z, mean, logvar = (torch.randn(5, 4, generator=g) for _ in range(3))
    exact = torch.distributions.Normal(mean, (0.5 * logvar).exp()).log_prob(z).sum(1)
    torch.testing.assert_close(encoder_log_density(z, mean, logvar), exact)
    dropped = exact + 0.5 * logvar.sum(1) + 2 * math.log(2 * math.pi)
    torch.testing.assert_close(encoder_log_density(z, mean, logvar, full=False), dropped)


def test_latent_posterior_score_differs_between_variants_when_the_variance_depends_on_x():
    """grad_x of -1/2 sum logvar(x) is what the authors' variant leaves out: logvar = x gives a gradient of -1/2."""
    x, z = torch.randn(3, 2), torch.randn(3, 2)
    full = latent_posterior_score(lambda v: encoder_log_density(z, torch.zeros_like(v), v), x, False)
    authors = latent_posterior_score(lambda v: encoder_log_density(z, torch.zeros_like(v), v, full=False), x, False)
    torch.testing.assert_close(full - authors, torch.full_like(x, -0.5))


def test_latent_posterior_score_keeps_the_graph_for_training():
    w = torch.tensor(2.0, requires_grad=True)
    x = torch.randn(4, 3)
    grad = latent_posterior_score(lambda v: -0.5 * (w * v).pow(2).sum(1), x, create_graph=True)
    torch.testing.assert_close(grad, -(w.detach() ** 2) * x)
    (dw,) = torch.autograd.grad(grad.sum(), w)
    torch.testing.assert_close(dw, -2 * w.detach() * x.sum())


def test_scorevae_objective_is_drl_objective_with_sigma2_weighting():
    """With lambda = sigma^2 (weight 1) the ScoreVAE loss is DRL's eq. 7 with the KL weight beta: one implementation."""
    sde, x0 = VPSDE(), torch.randn(5, 1, 2, 2)
    lin = torch.nn.Linear(4, 6)
    encode = lambda x: tuple(lin(x.flatten(1)).chunk(2, dim=1))
    score = lambda xt, t, z: -xt * (1 + z.sum(1)).reshape(-1, 1, 1, 1)
    t, noise = torch.rand(5), torch.randn(5, 1, 2, 2)
    ours = scorevae_objective(score, encode, x0, t, sde, noise, torch.Generator().manual_seed(3), 0.01, torch.ones(5))
    drl = drl_objective(score, lambda x, tt: encode(x), x0, t, sde, noise, torch.Generator().manual_seed(3), kl=0.01)
    torch.testing.assert_close(ours, drl)


def test_likelihood_weight_is_g2_over_sigma2():
    sde, t = VPSDE(0.1, 20.0), torch.tensor([1e-3, 0.5, 1.0])
    torch.testing.assert_close(likelihood_weight(sde, t), sde.beta(t) / sde.var(t))


def test_l2_by_hand():
    x = torch.zeros(2, 1, 2, 2)
    y = x.clone()
    y[0] += 0.5  # four pixels off by 0.5: norm 1
    y[1, 0, 1, 1] = 0.3  # one pixel off by 0.3: norm 0.3
    torch.testing.assert_close(l2_distances(x, y), torch.tensor([1.0, 0.3]))
    assert l2_distances(x, y).mean().item() == pytest.approx(0.65)


@pytest.fixture(scope="module")
def lpips_model():
    lpips = pytest.importorskip("lpips")
    torch.manual_seed(0)
    return lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, verbose=False).eval()


def test_lpips_input_mapping_is_applied_once(lpips_model):
    """The library variant equals lpips' own normalize=True on [0, 1] inputs, the authors' its raw call; identical
    images are at distance 0 either way."""
    g = torch.Generator().manual_seed(4)
    x, y = (torch.rand(3, 3, 32, 32, generator=g) for _ in range(2))
    for variant in LPIPS_INPUTS:
        assert lpips_distances(lpips_model, x, x, variant).abs().max() < 1e-6
    with torch.no_grad():
        library, authors = lpips_model(x, y, normalize=True).flatten(), lpips_model(x, y).flatten()
    torch.testing.assert_close(lpips_distances(lpips_model, x, y, "lpips"), library)
    torch.testing.assert_close(lpips_distances(lpips_model, x, y, "lpips_authors"), authors)
    assert not torch.allclose(library, authors)


def test_small_grey_images_are_resized_for_vgg(lpips_model):
    x = torch.rand(2, 1, 8, 8)
    big = backbone_input(x)
    assert big.shape == (2, 3, 32, 32) and 0 <= big.min() and big.max() <= 1
    assert lpips_distances(lpips_model, x, x, "lpips").abs().max() < 1e-6


def test_vgg_trunk_is_read_from_a_local_file(lpips_model, tmp_path, monkeypatch):
    """Nothing is downloaded: without the file there is no LPIPS; with it the trunk is torchvision's layer by layer."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert vgg_weights() is None and vgg_weights(str(tmp_path / "absent.pth")) is None
    trunk = {f"features.{k.split('.', 1)[1]}": torch.full_like(v, i)
             for i, (k, v) in enumerate(lpips_model.net.state_dict().items())}
    path = tmp_path / "hub" / "checkpoints" / "vgg16-397923af.pth"
    path.parent.mkdir(parents=True)
    torch.save(trunk, path)
    assert vgg_weights() == path
    loaded = load_lpips(path).net.state_dict()
    assert all(torch.equal(v, torch.full_like(v, i)) for i, v in enumerate(loaded.values()))


def test_classifier_distance_is_zero_for_identical_images_and_bounded():
    torch.manual_seed(0)
    clf = DomainClassifier(1, 8, 10, (4, 8), 16).eval()
    x, y = torch.rand(4, 1, 8, 8), torch.rand(4, 1, 8, 8)
    assert classifier_distances(clf, x, x).abs().max() < 1e-6
    d = classifier_distances(clf, x, y)
    assert ((d >= 0) & (d <= 4 + 1e-6)).all()


@pytest.mark.parametrize("sde", [VPSDE(), VESDE()], ids=["vp", "ve"])
def test_likelihood_weight_stays_on_the_device_of_t(sde):
    """On torch's meta device (as on a GPU) a weight built from a CPU tensor fails; it must follow t."""
    weight = likelihood_weight(sde, torch.rand(4, device="meta"))
    assert weight.device.type == "meta" and weight.shape == (4,)
