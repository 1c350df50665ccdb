"""Adversarial lambda (DRL A.7): model and adversary take turns, and the adversary moves toward the larger loss."""
import torch

from diffrep.config import SamplingConfig
from diffrep.methods.generation import ScoreModel, adversarial_loss, generate, param_groups, sampling_steps
from diffrep.nets.unet import ScoreUNet
from diffrep.sde import VESDE
from diffrep.train import Schedule, new_state, train_step


def tiny(adversarial=True):
    torch.manual_seed(0)
    return ScoreModel(ScoreUNet(1, [8, 16], 1, 16), VESDE(0.01, 10.0), adversarial=adversarial)


def test_model_and_adversary_take_turns():
    model = tiny()
    sched = Schedule(iterations=4, batch_size=16, lr=1e-2, warmup=0, grad_clip=1.0, ema=0.9,
                     checkpoint_every=100, log_every=100, seed=0)
    state = new_state(model, param_groups(model, 1.0), sched)
    x = torch.rand(64, 1, 8, 8)
    loss = adversarial_loss(1e-5, p_kl=0.0)
    for turn in range(4):
        net_before = [p.clone() for p in model.score.parameters()]
        alpha_before = model.log_values()["alpha"]
        value = train_step(state, loss, x, sched)
        net_moved = any(not torch.equal(a, b) for a, b in zip(net_before, model.score.parameters()))
        adversary_turn = turn % 2 == 1
        assert net_moved != adversary_turn, f"turn {turn}: the score network moves only on model turns"
        assert (model.log_values()["alpha"] != alpha_before) == adversary_turn, f"turn {turn}: alpha moves only on its turns"
        assert value > 0, "every turn logs the plain DSM loss"
    assert -1 < model.log_values()["alpha"] < 1


def test_adversary_ascends_towards_small_t_where_the_loss_is_larger():
    # An untrained network's lambda = sigma^2 weighted loss is largest at small t; the adversary must tilt there.
    model = tiny()
    sched = Schedule(iterations=40, batch_size=32, lr=5e-2, warmup=0, grad_clip=1.0, ema=0.9,
                     checkpoint_every=100, log_every=100, seed=0)
    state = new_state(model, param_groups(model, 1.0), sched)
    x = torch.rand(64, 1, 8, 8)
    loss = adversarial_loss(1e-5, p_kl=1.0)
    for _ in range(40):
        train_step(state, loss, x, sched)
    assert model.log_values()["alpha"] < -0.2


def test_generate_makes_clipped_images_with_shortened_steps():
    model = tiny(adversarial=False).eval()
    x, nfe = generate(model, 10, (1, 8, 8), SamplingConfig(method="pc", steps=10, batch_size=4), t_init=0.5,
                      prior="uniform+gaussian", seed=3)
    assert x.shape == (10, 1, 8, 8) and x.min() >= 0 and x.max() <= 1
    assert nfe == 2 * sampling_steps(10, 0.5) == 10
    again, _ = generate(model, 10, (1, 8, 8), SamplingConfig(method="pc", steps=10, batch_size=4), t_init=0.5,
                        prior="uniform+gaussian", seed=3)
    assert torch.equal(x, again)
