"""LSGM against closed forms: Theorem 1's cross entropy, unbiased importance sampling of t with less variance, the
mixed score at alpha = 0, the NELBO through the ODE; stage 2 resumes exactly; a diverging Table 6 cell is a result."""
import dataclasses
import json
import math

import pytest
import torch

from diffrep import train
from diffrep.config import Config, LSGMExperiment, NetConfig, SDEConfig
from diffrep.evaluate.nelbo import backbone_nelbo, lsgm_nelbo, lsgm_samples
from diffrep.methods.base import DataShape, RunSpec, method_named
from diffrep.methods.lsgm import Variant, build_lsgm
from diffrep.methods.run import load_model, train_run
from diffrep.objectives import (
    LSGM_SCHEMES,
    cross_entropy_constant,
    drop_all_iw,
    ll_iw,
    weighted_eps_matching,
)
from diffrep.sde import VPSDE, GeometricVPSDE
from diffrep.train import NonFiniteLossError, Schedule, fit, new_state

SDES = {"vp": VPSDE(), "geometric_vp": GeometricVPSDE()}
PAIRS = [("ll_uniform", "ll_iw"), ("drop_all_uniform", "drop_all_iw"), ("drop_sigma2t_uniform", "drop_sigma2t_iw")]


def normal_eps_hat(sde):
    """eps_hat = sigma_t z_t: the exact eps of p_t = N(0, I), the mixed score at alpha = 0."""
    return lambda zt, t: sde.noise_level(t).reshape(-1, *([1] * (zt.dim() - 1))) * zt


def estimates(scheme, sde, z0, eps, generator, weight="likelihood_weight"):
    """Per-sample estimates of int_eps^1 w/2 E||eps - sigma_t z_t||^2 dt with t from `scheme`."""
    draw = scheme(sde, eps, z0.shape[0], generator)
    noise = torch.randn(z0.shape, generator=generator, dtype=z0.dtype)
    return weighted_eps_matching(normal_eps_hat(sde), z0, sde, draw.t.to(z0), getattr(draw, weight).to(z0), noise)


def test_theorem1_cross_entropy_equals_the_analytic_one():
    """LSGM Thm. 1 with the exact score of p = N(0, I) under the VPSDE, for q = N(m, s^2 I), by Monte Carlo."""
    sde, eps, n, d, s2 = VPSDE(), 1e-5, 200_000, 4, 0.3
    g = torch.Generator().manual_seed(0)
    m = torch.tensor([0.5, -1.0, 0.2, 1.5], dtype=torch.float64)
    z0 = m + math.sqrt(s2) * torch.randn(n, d, generator=g, dtype=torch.float64)
    values = estimates(ll_iw, sde, z0, eps, g) + cross_entropy_constant(sde, eps, d)
    mean_eps = sde.mean_coeff(torch.tensor(eps, dtype=torch.float64))
    var_eps = mean_eps**2 * s2 + sde.var(torch.tensor(eps, dtype=torch.float64))  # q diffused to t = eps
    analytic = 0.5 * d * math.log(2 * math.pi) + 0.5 * float((mean_eps * m).pow(2).sum() + d * var_eps)
    error = values.std().item() / math.sqrt(n)
    assert error < 0.01 * analytic
    assert abs(values.mean().item() - analytic) < 4 * error


@pytest.mark.parametrize("kind", ["vp", "geometric_vp"])
@pytest.mark.parametrize("uniform,importance", PAIRS)
def test_importance_sampling_is_unbiased_with_less_variance(kind, uniform, importance):
    """LSGM sec. 3.4, Fig. 2: for q = p = N(0, I) the IS estimate of E_t[w(t)/2 f(t)] equals the uniform one, with less
    variance; for w_ll both equal D/2 (ln sigma^2(1) - ln sigma^2(eps)) (App. B)."""
    sde, eps, n, d = SDES[kind], 1e-2, 100_000, 8
    if kind == "geometric_vp" and importance == "drop_all_iw":
        with pytest.raises(TypeError, match="linear VPSDE"):
            drop_all_iw(sde, eps, 4)
        return
    g = torch.Generator().manual_seed(1)
    z0 = torch.randn(n, d, generator=g, dtype=torch.float64)
    a, b = (estimates(LSGM_SCHEMES[s], sde, z0, eps, g, "prior_weight") for s in (uniform, importance))
    error = math.sqrt((a.var() + b.var()).item() / n)
    assert abs(a.mean().item() - b.mean().item()) < 4 * error
    assert b.var() < a.var() * (1.0 if kind == "vp" or uniform != "ll_uniform" else 1.05)
    if uniform == "ll_uniform":
        logs = [math.log(float(sde.var(torch.tensor(t, dtype=torch.float64)))) for t in (eps, 1.0)]
        assert abs(b.mean().item() - 0.5 * d * (logs[1] - logs[0])) < 4 * b.std().item() / math.sqrt(n)


@pytest.mark.parametrize("name", sorted(LSGM_SCHEMES))
def test_schemes_draw_t_in_range_with_positive_weights(name):
    draw = LSGM_SCHEMES[name](VPSDE(), 1e-2, 1000, torch.Generator().manual_seed(0))
    assert draw.t.min() >= 1e-2 - 1e-6 and draw.t.max() <= 1 + 1e-6
    assert (draw.prior_weight > 0).all() and (draw.likelihood_weight > 0).all()


def small_config(**lsgm) -> Config:
    """A tiny LSGM on 8x8 images with 17 gray levels."""
    cfg = Config()
    cfg.train.checkpoint_every, cfg.train.log_every = 10, 5
    sizes = {"vae": NetConfig(channels=[8, 16], emb_dim=16), "prior": NetConfig(channels=[8, 16], emb_dim=16),
                 "stage1_iterations": 20, "stage2_iterations": 30, "batch_size": 16, "warmup": 5}
    cfg.experiments.lsgm = dataclasses.replace(LSGMExperiment(), **{**sizes, **lsgm})
    return cfg


def digits_like(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return torch.randint(0, 17, (n, 1, 8, 8), generator=g).float() / 16, torch.arange(n) % 10


@pytest.mark.parametrize("kind", ["vp", "geometric_vp"])
def test_mixing_coefficient_zero_gives_the_normal_score(kind):
    """alpha = sigmoid(logit) -> 0: eps_hat = sigma_t z_t, the score -z_t, which is the exact score of N(0, I) diffused
    by either VP SDE (m(t)^2 + sigma_t^2 = 1 when sigma2_0 = 0)."""
    cfg = small_config(sde=SDEConfig(kind="vp", eps=0.01))
    model = build_lsgm(cfg, Variant(f"{kind}-ll_uniform-rew"), "digits", DataShape((1, 8, 8), 10))
    model.prior.mixing_logit.data.fill_(-1e4)
    z, t = torch.randn(32, 2, 4, 4), torch.rand(32) * 0.99 + 0.01
    assert torch.allclose(model.prior.score_fn(z, t), -z, rtol=1e-6, atol=1e-6)
    sde = model.prior.sde
    assert torch.allclose(sde.mean_coeff(t) ** 2 + sde.var(t), torch.ones_like(t), atol=1e-6)


def test_nelbo_through_the_ode_equals_the_closed_form_for_a_normal_prior():
    """A VAE whose prior is exactly N(0, I) (alpha = 0): the NELBO with log p(z_0) from the probability-flow ODE equals
    reconstruction + exact KL within 1 %, and log p(z_0) equals log N(z_0; 0, I)."""
    cfg = small_config()
    torch.manual_seed(0)
    model = build_lsgm(cfg, Variant("vp-ll_iw-rew"), "digits", DataShape((1, 8, 8), 10)).eval()
    model.prior.mixing_logit.data.fill_(-1e4)
    x, _ = digits_like(256)
    ode, nfe = lsgm_nelbo(model, x, torch.Generator().manual_seed(5), eps=1e-5, tolerance=1e-5)
    closed = backbone_nelbo(model, x, torch.Generator().manual_seed(5))
    assert nfe > 0 and abs(ode.mean() / closed.mean() - 1) < 0.01


def train_stage(tmp_path, cfg, name, x, y, init=None, freeze=False):
    spec = RunSpec("digits", "lsgm", name, init=init, freeze_encoder=freeze)
    train_run(cfg, spec, x, y, tmp_path / name)
    return tmp_path / name / "model.pt"


def test_stage2_resumes_after_a_kill_to_the_same_weights(tmp_path, monkeypatch, caplog):
    cfg = small_config()
    x, y = digits_like()
    vae = train_stage(tmp_path, cfg, "lsgm-vae", x, y)
    whole = train_stage(tmp_path / "whole", cfg, "lsgm-vp-drop_sigma2t_iw-ll_iw", x, y, str(vae))
    calls, step = {"n": 0}, train.train_step

    def killed_at_15(*args):
        calls["n"] += 1
        if calls["n"] > 15:
            raise KeyboardInterrupt  # the kill: after the checkpoint at step 10
        return step(*args)

    monkeypatch.setattr(train, "train_step", killed_at_15)
    with pytest.raises(KeyboardInterrupt):
        train_stage(tmp_path / "killed", cfg, "lsgm-vp-drop_sigma2t_iw-ll_iw", x, y, str(vae))
    monkeypatch.setattr(train, "train_step", step)
    caplog.clear()
    with caplog.at_level("INFO", logger="diffrep"):
        resumed = train_stage(tmp_path / "killed", cfg, "lsgm-vp-drop_sigma2t_iw-ll_iw", x, y, str(vae))
    assert any(r.getMessage().startswith("resumed") and r.getMessage().endswith("at step 10") for r in caplog.records)
    a, b = (torch.load(p, weights_only=False)["state"] for p in (whole, resumed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((whole.parent / train.DIVERGENCE).read_text())["diverged"] is False


def test_a_diverging_cell_is_recorded_not_raised(tmp_path):
    """Table 6's NaN: a stage-2 cell whose loss goes non-finite ends with its step and loss recorded."""
    cfg = small_config(lr_prior=1e4, lr_vae_stage2=1e4, warmup=0)
    x, y = digits_like()
    vae = train_stage(tmp_path, cfg, "lsgm-vae", x, y)
    model = train_stage(tmp_path, cfg, "lsgm-vp-ll_uniform-rew-nomix", x, y, str(vae))
    record = json.loads((model.parent / train.DIVERGENCE).read_text())
    assert record["diverged"] is True and 1 <= record["step"] <= 30 and model.is_file()
    # every planned snapshot is there (the workflow expects them): those not reached hold the last good weights
    kept = [torch.load(model.parent / "snapshots" / f"{i}.pt", weights_only=False) for i in range(cfg.experiments.lsgm.snapshots)]
    final = torch.load(model, weights_only=False)["state"]
    late = [k for k in kept if k["step"] > record["step"]]
    assert late and all(torch.equal(k["state"][n], final[n]) for k in late for n in final)


def test_divergence_raises_unless_it_is_a_result(tmp_path):
    def nan_at_3(m, x, g):
        m.calls = getattr(m, "calls", 0) + 1
        return m(x).sum(1) * (math.nan if m.calls == 3 else 1.0)

    for flag in (False, True):
        model = torch.nn.Linear(2, 2)
        sched = Schedule(10, 4, 1e-3, 0, 1.0, 0.9, 5, 5, 0, divergence_is_result=flag)
        state = new_state(model, model.parameters(), sched)
        if not flag:
            with pytest.raises(NonFiniteLossError):
                fit(state, nan_at_3, torch.randn(8, 2), sched, tmp_path / "raise", "fp")
            continue
        fit(state, nan_at_3, torch.randn(8, 2), sched, tmp_path / "record", "fp")
        assert json.loads((tmp_path / "record" / train.DIVERGENCE).read_text())["step"] == 3
    assert method_named("lsgm-vp-ll_iw-rew").schedule(Config(), RunSpec("digits", "lsgm", "lsgm-vp-ll_iw-rew",
                                                                         init="x")).divergence_is_result
    assert not method_named("lsgm-vae").schedule(Config(), RunSpec("digits", "lsgm", "lsgm-vae")).divergence_is_result


def test_frozen_vae_trains_only_the_prior_and_samples_decode(tmp_path):
    cfg = small_config()
    x, y = digits_like()
    vae = train_stage(tmp_path, cfg, "lsgm-vae-binary", x, y)
    path = train_stage(tmp_path, cfg, "lsgm-geometric_vp-ll_uniform-rew-binary", x, y, str(vae), freeze=True)
    before, after = (torch.load(p, weights_only=False)["state"] for p in (vae, path))
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("vae."))
    model, _, _ = load_model(path)
    images, nfe, _ = lsgm_samples(model, 4, (2, 4, 4), eps=1e-5, tolerance=1e-3, generator=torch.Generator())
    assert images.shape == (4, 1, 8, 8) and nfe > 0 and 0 <= images.min() and images.max() <= 1


def test_a_channel_without_kl_is_switched_off_when_stage2_starts():
    """LSGM App. G: a latent channel whose mean KL is at most `inactive_kl` gets the N(0, I) prior (logit -15); the
    others keep their learnable mixing logit."""
    cfg = small_config()
    torch.manual_seed(0)
    model = build_lsgm(cfg, Variant("vp-ll_iw-rew"), "digits", DataShape((1, 8, 8), 10))
    head = model.vae.encoder.head
    with torch.no_grad():  # channel 0: mean 0, logvar 0 whatever x, so KL(q || N(0, I)) = 0; channel 1: mean ~ 2
        head.weight[[0, 2]] = 0.0
        head.bias[[0, 2]] = 0.0
        head.bias[1] = 2.0
    x, _ = digits_like()
    method_named("lsgm-vp-ll_iw-rew").loss(cfg, RunSpec("digits", "lsgm", "lsgm-vp-ll_iw-rew", init="x"), model)(
        model, x, torch.Generator().manual_seed(0))
    assert model.prior.active.tolist() == [False, True]
    z, t = torch.randn(8, 2, 4, 4), torch.rand(8) * 0.9 + 0.1
    model.prior.mixing_logit.data.fill_(3.0)
    eps = model.prior(z, t)
    std = model.prior.sde.noise_level(t).reshape(-1, 1, 1, 1)
    assert torch.allclose(eps[:, 0], std[:, 0] * z[:, 0], atol=1e-5)  # N(0, I): eps_hat = sigma_t z_t
    assert not torch.allclose(eps[:, 1], std[:, 0] * z[:, 1], atol=1e-3)


def test_padded_images_keep_their_likelihood_on_the_original_pixels():
    """The authors' MNIST: images padded with zeros to 32 x 32 for the VAE, the likelihood and samples cropped back."""
    cfg = small_config(pad_to={"digits": 12})
    model = build_lsgm(cfg, Variant(binary=True), "digits", DataShape((1, 8, 8), 10))
    x, _ = digits_like(4)
    seen = model.observe(x, torch.Generator().manual_seed(0))
    assert seen.shape == (4, 1, 12, 12) and seen[..., :2, :].abs().sum() == 0 and seen[..., -2:].abs().sum() == 0
    assert torch.equal(model.crop(seen), torch.bernoulli(x, generator=torch.Generator().manual_seed(0)))
    z = torch.randn(4, *model.latent_shape((1, 8, 8)))
    assert model.latent_shape((1, 8, 8)) == (2, 6, 6) and model.decode(z).shape == (4, 1, 8, 8)
    logits = model.vae.decoder(z)
    by_hand = torch.nn.functional.cross_entropy(logits[..., 2:10, 2:10], model.crop(seen).long(), reduction="none")
    assert torch.allclose(model.reconstruction(z, seen), by_hand.flatten(1).sum(1))
    with pytest.raises(ValueError, match="pad_to"):
        build_lsgm(small_config(pad_to={"digits": 6}), Variant(), "digits", DataShape((1, 8, 8), 10))


def test_cosine_decay_runs_from_the_base_rate_to_its_final_share():
    sched = Schedule(111, 4, 1e-2, 10, 1.0, 0.9, 5, 5, 0, final_lr_scale=0.01)
    rates = [train.learning_rate(step, sched) for step in range(111)]
    assert rates[0] == pytest.approx(1e-3) and rates[10] == pytest.approx(1e-2) and rates[-1] == pytest.approx(1e-4)
    assert rates[60] == pytest.approx(1e-4 + (1e-2 - 1e-4) / 2) and all(a >= b for a, b in zip(rates[10:], rates[11:]))
    constant = dataclasses.replace(sched, final_lr_scale=1.0)
    assert all(train.learning_rate(step, constant) == 1e-2 for step in range(10, 111))
