"""The method registry: every plug-in builds, gives one finite loss per sample and the right trainable parameters;
unknown names and foreign options are refused; the checkpoint fingerprint follows the network's code."""
import importlib.util
import sys

import pytest
import torch

from diffrep.config import resolve
from diffrep.methods.base import DataShape, RunSpec, method_named, method_names
from diffrep.methods.run import fingerprint, load_model, train_run
from diffrep.train import CheckpointError, Schedule, fit, network_code, new_state

DATA = DataShape((1, 8, 8), 10)


@pytest.fixture(scope="module")
def cfg():
    torch.set_num_threads(1)
    net = {"channels": [8, 16], "emb_dim": 16, "code_hidden": 16}
    return resolve({"datasets": {"digits": {"net": net, "iterations": 3, "batch_size": 8}},
                    "train": {"warmup": 0, "checkpoint_every": 2, "log_every": 1},
                    "experiments": {"semisup": {"depth": 10, "width": 1, "pretrain_iterations": 3},
                                    "lsgm": {"stage1_iterations": 3, "stage2_iterations": 3, "batch_size": 8}}})


def first_spec(name: str, **options) -> RunSpec:
    """A run of method `name` in the first experiment it runs in."""
    experiment = method_named(name).experiments[0]
    return RunSpec("digits", experiment, name, code_dim=4 if experiment == "codedim" else None, **options)


def test_every_method_of_the_papers_is_registered():
    assert {"drl", "vdrl", "ae", "vae", "score", "wrn_drl", "wrn_vdrl", "wrn_drl_mixup", "wrn_ae"} <= set(method_names())


def trains_from_scratch(name: str) -> bool:
    """Methods that start from another run (LSGM's stage 2, ScoreVAE's encoder on its frozen prior) are tested with
    their papers (tests/test_lsgm.py, tests/test_scorevae_methods.py)."""
    try:
        first_spec(name)
    except ValueError as exc:
        if "--init" in str(exc):
            return False
        raise
    return True


@pytest.mark.parametrize("name", [n for n in method_names() if trains_from_scratch(n)])
def test_every_method_builds_and_gives_one_finite_loss_per_sample(name, cfg):
    spec = first_spec(name)
    method = method_named(name)
    torch.manual_seed(0)
    model = method.build(cfg, spec, DATA)
    loss = method.loss(cfg, spec, model)(model, torch.rand(6, 1, 8, 8), torch.Generator().manual_seed(0))
    assert loss.shape == (6,) and torch.isfinite(loss).all()
    params = method.parameters(model, cfg, spec)
    flat = [p for group in params for p in (group["params"] if isinstance(group, dict) else [group])]
    assert {id(p) for p in flat} == {id(p) for p in model.parameters()}, "a plain run trains every parameter"
    sched = method.schedule(cfg, spec)
    assert sched.iterations == 3 and sched.batch_size == 8


@pytest.mark.parametrize("name", ["drl", "vdrl", "ae", "vae"])
def test_frozen_encoder_is_not_trained(name, cfg):
    spec = first_spec(name, init="phase1/model.pt", freeze_encoder=True)
    method = method_named(name)
    model = method.build(cfg, spec, DATA)
    trained = {id(p) for p in method.parameters(model, cfg, spec)}
    encoder = {id(p) for p in model.encoder.parameters()}
    rest = {id(p) for p in model.parameters()} - encoder
    assert encoder and not trained & encoder and trained == rest


def test_adversary_is_its_own_param_group(cfg):
    spec = RunSpec("digits", "adversarial", "score", init="score/model.pt", p_kl=0.5)
    method = method_named("score")
    model = method.build(cfg, spec, DATA)
    groups = method.parameters(model, cfg, spec)
    assert len(groups) == 2 and groups[1]["params"] == [model.adversary]
    assert groups[1]["lr_scale"] == cfg.experiments.adversarial.adversary_lr_scale
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in model.score.parameters()}


def test_unknown_method_names_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown method 'lsgm'; known: \[.*'drl'.*'vdrl'"):
        RunSpec("digits", "latent", "lsgm")


@pytest.mark.parametrize("spec, message", [
    ({"experiment": "latent", "method": "ae", "p_kl": 0.5, "init": "x.pt"}, "does not take --p-kl"),
    ({"experiment": "generation", "method": "score", "scheme": "fixed", "t": 0.5}, "does not take --scheme, --t"),
    ({"experiment": "generation", "method": "drl"}, "runs in the experiments"),
    ({"experiment": "adversarial", "method": "score", "p_kl": 0.5}, "needs --init"),
    ({"experiment": "latent", "method": "drl", "freeze_encoder": True}, "needs --init"),
])
def test_methods_refuse_what_they_do_not_take(spec, message):
    with pytest.raises(ValueError, match=message):
        RunSpec("digits", **spec)


NET_SOURCE = """
import torch
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 4{extra})
    def forward(self, x):
        return self.layer(x)
"""


def import_net(tmp_path, extra: str) -> torch.nn.Module:
    """A fresh import of a network module whose source says `extra`; same module and class name every time."""
    path = tmp_path / "netcode.py"
    path.write_text(NET_SOURCE.format(extra=extra))
    spec = importlib.util.spec_from_file_location("netcode", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["netcode"] = module
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    return module.Net()


def test_fingerprint_follows_the_network_code_and_a_changed_network_refuses_the_checkpoint(tmp_path, cfg):
    spec = first_spec("drl")
    old = import_net(tmp_path, "")
    old_code, old_print = network_code(old), fingerprint(cfg, spec, old)
    assert old_print == fingerprint(cfg, spec, old) and "torch.nn.modules.linear.Linear" in old_code
    loss = lambda m, x, g: m(x).pow(2).sum(1)
    sched = Schedule(4, 8, 1e-2, 0, 1.0, 0.9, 2, 2, 0)
    out = tmp_path / "run"
    fit(new_state(old, old.parameters(), sched), loss, torch.randn(16, 4), sched, out, old_print)

    new = import_net(tmp_path, ", bias=True")  # the same weights' shapes, from changed code
    assert network_code(new) != old_code and fingerprint(cfg, spec, new) != old_print
    longer = Schedule(8, 8, 1e-2, 0, 1.0, 0.9, 2, 2, 0)
    with pytest.raises(CheckpointError, match="another configuration"):
        fit(new_state(new, new.parameters(), longer), loss, torch.randn(16, 4), longer, out,
            fingerprint(cfg, spec, new))


def test_pretraining_goes_through_train_run_with_checkpoints(tmp_path, cfg):
    from diffrep.methods.semisup import run_spec

    x, y = torch.rand(32, 1, 8, 8), torch.arange(32) % 10
    state = train_run(cfg, run_spec("digits", "drl_mixup"), x, y, tmp_path)
    assert state.step == 3 and (tmp_path / "metrics.csv").is_file()
    assert not (tmp_path / "ckpt.pt").exists(), "a finished run leaves no checkpoint that a changed parameter would trip"
    model, spec, _ = load_model(tmp_path / "model.pt")
    assert spec.method == "wrn_drl_mixup" and model.encoder.fc.out_features == 10
    again = train_run(cfg, run_spec("digits", "drl_mixup"), x, y, tmp_path)  # resumes at the end: nothing to do
    assert again.step == 3


def test_init_loads_a_model_that_fits_and_only_the_adversary_may_be_new(tmp_path, cfg):
    from diffrep.methods.run import save_model

    score = method_named("score")
    plain_spec = RunSpec("digits", "generation", "score")
    plain = score.build(cfg, plain_spec, DATA)
    save_model(plain, cfg, plain_spec, DATA, tmp_path / "model.pt")
    adversarial = score.build(cfg, RunSpec("digits", "adversarial", "score", init="x", p_kl=0.5), DATA)
    score.start_from(adversarial, str(tmp_path / "model.pt"))
    new = adversarial.state_dict()
    assert all(torch.equal(value, new[key]) for key, value in plain.state_dict().items())
    drl = method_named("drl")
    with pytest.raises(ValueError, match="does not fit this model"):
        drl.start_from(drl.build(cfg, first_spec("drl"), DATA), str(tmp_path / "model.pt"))


def test_an_experiment_s_train_batch_overrides_the_dataset_s_for_its_models_only():
    raised = resolve({"datasets": {"digits": {"batch_size": 64}}, "experiments": {"fewshot": {"train_batch": 256}}})
    batch = lambda experiment, method: method_named(method).schedule(raised, RunSpec("digits", experiment, method)).batch_size
    assert batch("fewshot", "drl") == batch("fewshot", "ae") == 256
    assert batch("latent", "drl") == batch("scorevae", "scorevae_prior") == 64
    assert batch("semisup", "wrn_drl") == 64  # LaplaceNet's own batch_size is not the pretraining's
    assert batch("lsgm", "lsgm-vae") == raised.experiments.lsgm.batch_size


def test_the_few_shot_experiment_s_iterations_override_the_dataset_s_for_its_models_only():
    raised = resolve({"datasets": {"digits": {"iterations": 100}}, "experiments": {"fewshot": {"iterations": 800}}})
    steps = lambda experiment, method: method_named(method).schedule(raised, RunSpec("digits", experiment, method)).iterations
    assert steps("fewshot", "drl") == steps("fewshot", "vae") == 800
    assert steps("latent", "drl") == steps("generation", "score") == 100
