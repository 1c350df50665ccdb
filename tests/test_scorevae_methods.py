"""The ScoreVAE plug-ins: what each trains, what stays frozen, how the runs chain (prior -> encoder -> corrector), and
reconstruction from saved models."""
from __future__ import annotations

import pytest
import torch

from diffrep.config import resolve
from diffrep.evaluate.reconstruction import reconstruct
from diffrep.methods.base import DataShape, RunSpec, method_named
from diffrep.methods.run import load_model, train_run

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
SHAPE = DataShape((1, 8, 8), 10)
ITERATIONS = 3


@pytest.fixture(scope="module")
def cfg():
    iters = {f"{k}_iterations": ITERATIONS for k in ("prior", "encoder", "corrector", "vae", "diffdecoder")}
    return resolve({"train": {"warmup": 0, "checkpoint_every": 100, "log_every": 1},
                    "datasets": {"digits": {"net": {"channels": [8, 16], "emb_dim": 16, "code_hidden": 16},
                                            "batch_size": 8}},
                    "experiments": {"scorevae": {"datasets": ["digits"], "latent_dim": 4, **iters}}})


@pytest.fixture(scope="module")
def images():
    return torch.rand(32, 1, 8, 8, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def chain(cfg, images, tmp_path_factory):
    """prior -> ScoreVAE (from the prior) -> ScoreVAE+ (from ScoreVAE), a few iterations each."""
    root, labels = tmp_path_factory.mktemp("chain"), torch.arange(32) % 10
    paths, init = {}, None
    for method in ("scorevae_prior", "scorevae", "scorevae_plus"):
        spec = RunSpec("digits", "scorevae", method, init=init)
        train_run(cfg, spec, images, labels, root / method)
        paths[method] = init = str(root / method / "model.pt")
    return paths


def _state(path: str) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["state"]


def test_scorevae_trains_the_encoder_on_the_frozen_prior(chain):
    prior, vae = _state(chain["scorevae_prior"]), _state(chain["scorevae"])
    assert all(torch.equal(v, vae[f"prior.{k}"]) for k, v in prior.items())
    plus = _state(chain["scorevae_plus"])
    assert all(torch.equal(v, plus[k]) for k, v in vae.items())  # ScoreVAE+ keeps encoder and prior
    assert any(v.abs().sum() > 0 for k, v in plus.items() if k.startswith("corrector.up.out"))  # its corrector trained


def test_corrector_starts_at_zero(cfg, chain):
    """ScoreVAE+ before training decodes exactly as ScoreVAE."""
    vae, _, _ = load_model(chain["scorevae"])
    plus_method = method_named("scorevae_plus")
    plus = plus_method.build(cfg, RunSpec("digits", "scorevae", "scorevae_plus", init=chain["scorevae"]), SHAPE)
    plus_method.start_from(plus, chain["scorevae"])
    xt, t, z = torch.randn(4, 1, 8, 8), torch.rand(4), torch.randn(4, 4)
    torch.testing.assert_close(plus.decoder_score(xt, t, z), vae.decoder_score(xt, t, z))


def test_encoder_gradient_flows_through_the_decoder_score(cfg, chain):
    """The loss reaches the encoder through grad_x log q (create_graph) and never the prior."""
    method = method_named("scorevae")
    spec = RunSpec("digits", "scorevae", "scorevae", init=chain["scorevae_prior"])
    model = method.build(cfg, spec, SHAPE)
    method.start_from(model, chain["scorevae_prior"])
    trained = method.parameters(model, cfg, spec)
    model.decoder_score(torch.randn(4, 1, 8, 8), torch.rand(4), torch.randn(4, 4)).pow(2).sum().backward()
    assert trained and all(p.grad is not None for p in trained)
    assert all(p.grad is None for p in model.prior.parameters())


def test_start_from_refuses_another_model(cfg, chain):
    method = method_named("scorevae")
    model = method.build(cfg, RunSpec("digits", "scorevae", "scorevae", init="x"), SHAPE)
    with pytest.raises(ValueError, match="does not fit"):
        method.start_from(model, chain["scorevae"])  # a ScoreVAE model, not a prior: its keys are prefixed


def test_runs_need_their_init():
    with pytest.raises(ValueError, match="needs --init"):
        RunSpec("digits", "scorevae", "scorevae_plus")


def test_authors_log_density_changes_the_decoder_score(cfg, chain):
    """Dropping -1/2 sum logvar changes grad log q wherever logvar depends on x_t."""
    full, _, _ = load_model(chain["scorevae"])
    authors, _, _ = load_model(chain["scorevae"])
    authors.full = False
    xt, t, z = torch.randn(4, 1, 8, 8), torch.full((4,), 0.5), torch.randn(4, 4)
    assert not torch.allclose(full.decoder_score(xt, t, z), authors.decoder_score(xt, t, z))


@pytest.mark.parametrize("method", ["beta_vae", "diffdecoder", "diffdecoder_b0"])
def test_baselines_train_and_reconstruct(cfg, images, method, tmp_path):
    train_run(cfg, RunSpec("digits", "scorevae", method, seed=1), images, torch.arange(32) % 10, tmp_path)
    model, spec, _ = load_model(tmp_path / "model.pt")
    first, again = (reconstruct(model, images[:5], 4, 2, spec.seed) for _ in range(2))
    assert first.shape == (5, 1, 8, 8) and 0 <= first.min() and first.max() <= 1
    torch.testing.assert_close(first, again)  # seeded


def test_scorevae_reconstructs_from_saved_models(chain, images):
    for method in ("scorevae", "scorevae_plus"):
        model, spec, _ = load_model(chain[method])
        x_hat = reconstruct(model, images[:3], 5, 2, spec.seed)
        assert x_hat.shape == (3, 1, 8, 8) and torch.isfinite(x_hat).all()


def test_deterministic_diffdecoder_has_no_kl(cfg):
    """beta = 0: a deterministic code, so the loss is the DSM term alone (its encoder returns no log-variance)."""
    model = method_named("diffdecoder_b0").build(cfg, RunSpec("digits", "scorevae", "diffdecoder_b0"), SHAPE)
    assert model.encode_data(torch.rand(2, 1, 8, 8))[1] is None


def test_reconstruct_command_writes_reconstructions_and_scores(chain, images, tmp_path):
    """`diffrep reconstruct`: one file per model, then one row per file and metric (the classifier's distance without
    VGG weights, never called LPIPS)."""
    import numpy as np
    import pandas as pd
    import yaml

    from diffrep.cli import main
    from diffrep.evaluate.fidelity import save_classifier
    from diffrep.nets.classifier import DomainClassifier

    np.savez(tmp_path / "test.npz", x=images.numpy(), y=np.arange(32) % 10)
    np.savez(tmp_path / "train.npz", x=images.numpy()[::-1].copy(), y=np.arange(32) % 10)
    save_classifier(DomainClassifier(1, 8, 10, (4, 8), 16), tmp_path / "clf.pt")
    profile = tmp_path / "p.yaml"
    profile.write_text(yaml.safe_dump({"experiments": {"scorevae": {"steps": 3, "test_images": 6, "batch_size": 4,
                                                                    "lpips_weights": str(tmp_path / "none.pth")}}}))
    outs = [str(tmp_path / f"{m}.npz") for m in ("scorevae", "scorevae_plus")]
    main(["reconstruct", "--config", str(profile), "--data", str(tmp_path), "--model", chain["scorevae"],
          chain["scorevae_plus"], "--out", *outs, "--classifier", str(tmp_path / "clf.pt"),
          "--scores", str(tmp_path / "scores.csv")])
    with np.load(outs[1]) as f:
        assert f["x_hat"].shape == (6, 1, 8, 8) and str(f["method"]) == "scorevae_plus"
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert sorted(scores["metric"].unique()) == ["classifier_features", "l2"]
    models = scores[~scores["method"].str.startswith("floor_")]
    assert len(models) == 4 and (scores["log_density"] == "full").all()
    floors = scores[scores["method"].str.startswith("floor_")]
    assert set(floors["method"]) == {"floor_random", "floor_class_mean", "floor_nearest_train"} and len(floors) == 6
    nearest = floors[(floors["method"] == "floor_nearest_train") & (floors["metric"] == "l2")]["value"].item()
    assert nearest == pytest.approx(0.0, abs=1e-6), "the test images are in this training split"


def test_paper_profile_plans_every_scorevae_job():
    from diffrep.config import load
    from diffrep.plan import Plan

    plan = Plan(load("params/paper.yaml"), "params/paper.yaml")
    methods = ("scorevae", "scorevae_plus", "beta_vae", "diffdecoder", "diffdecoder_b0")
    for dataset in ("cifar10", "celeba64"):  # ScoreVAE Tables 1, 2
        trained = {j.run for f in plan if f.name.startswith("train_scorevae") for j in f.jobs if j.dataset == dataset}
        assert trained == {"scorevae-prior"} | {f"{m}-s{s}" for m in methods for s in (0, 1, 2)}
    evaluate = plan["scorevae_evaluate"].job("cifar10")
    assert len(evaluate.inputs["models"]) == 15 and "--classifier" in evaluate.settings
    assert set(evaluate.outputs["scores"]) <= set(plan["report"].jobs[0].inputs["scorevae"])


def test_a_dataset_s_own_latent_dim_reaches_every_network_that_sees_the_code(cfg):
    """experiments.scorevae.latent_dims overrides latent_dim for its dataset (the authors': 384 on CIFAR-10, 512 on
    CelebA)."""
    import dataclasses

    ex = dataclasses.replace(cfg.experiments.scorevae, latent_dims={"digits": 3})
    own = dataclasses.replace(cfg, experiments=dataclasses.replace(cfg.experiments, scorevae=ex))
    def build(c, method):  # the ScoreVAE models start from another's weights, the baselines from nothing
        return method_named(method).build(c, RunSpec("digits", "scorevae", method,
                                                     init="m.pt" if method.startswith("scorevae") else None), SHAPE)

    plus, vae, diffdecoder = (build(own, m) for m in ("scorevae_plus", "beta_vae", "diffdecoder"))
    assert plus.encoder.code_dim == plus.corrector.code_dim == 3
    assert vae.encoder.code_dim == vae.decoder.dense[0].in_features == 3
    assert diffdecoder.encoder.code_dim == diffdecoder.score.code_dim == 3
    assert build(cfg, "scorevae").encoder.code_dim == 4, "without an entry, latent_dim"
