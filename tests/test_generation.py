"""Adversarial lambda (DRL A.7): model and adversary take turns, and the adversary moves toward the larger loss."""
import torch

from diffrep.config import SamplingConfig
from diffrep.methods.generation import generate, sampling_steps
from diffrep.methods.score import ScoreModel, adversarial_loss, param_groups
from diffrep.nets.unet import ScoreUNet
from diffrep.sde import VESDE
from diffrep.train import Schedule, new_state, train_step


def tiny(adversarial=True):
    torch.manual_seed(0)
    return ScoreModel(ScoreUNet(1, [8, 16], 1, 16), VESDE(0.01, 10.0), adversarial=adversarial)


def adversarial_setup(batch_size: int, lr: float, p_kl: float):
    model = tiny()
    sched = Schedule(iterations=100, batch_size=batch_size, lr=lr, warmup=0, grad_clip=1.0, ema=0.9,
                     checkpoint_every=100, log_every=100, seed=0)
    return model, sched, new_state(model, param_groups(model, 1.0), sched), adversarial_loss(1e-5, p_kl=p_kl)


def test_model_and_adversary_take_turns():
    model, sched, state, loss = adversarial_setup(16, 1e-2, p_kl=0.0)
    x = torch.rand(64, 1, 8, 8)
    for turn in range(4):
        net_before = [p.clone() for p in model.score.parameters()]
        alpha_before = model.log_values()["alpha"]
        value = train_step(state, loss, x, sched)
        net_moved = any(not torch.equal(a, b) for a, b in zip(net_before, model.score.parameters()))
        adversary_turn = turn % 2 == 1
        assert net_moved != adversary_turn, f"turn {turn}: the score network moves only on model turns"
        alpha_moved = model.log_values()["alpha"] != alpha_before
        assert alpha_moved == adversary_turn, f"turn {turn}: alpha moves only on its turns"
        assert value > 0, "every turn logs the plain DSM loss"
    assert -1 < model.log_values()["alpha"] < 1


def test_adversary_ascends_towards_small_t_where_the_loss_is_larger():
    # An untrained network's lambda = sigma^2 weighted loss is largest at small t; the adversary must tilt there.
    model, sched, state, loss = adversarial_setup(32, 5e-2, p_kl=1.0)
    x = torch.rand(64, 1, 8, 8)
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


def test_code_grid_spans_the_test_codes():
    from diffrep.methods.drl_samples import code_grid

    codes = torch.randn(1000, 2) * torch.tensor([1.0, 5.0]) + torch.tensor([2.0, -3.0])
    grid = code_grid(codes, 8)
    assert grid.shape == (64, 2)
    assert torch.allclose(grid[:, 0].unique(), torch.linspace(*torch.quantile(codes[:, 0], torch.tensor([0.05, 0.95])), 8))
    assert grid[:8, 0].unique().numel() == 1, "the first dimension runs along rows"


def test_denoising_starts_from_the_given_x_t():
    from diffrep.methods.drl import DRLModel
    from diffrep.methods.drl_samples import denoise_with_codes
    from diffrep.nets.encoder import Encoder

    torch.manual_seed(0)
    model = DRLModel(Encoder(1, 8, [8, 16], 1, 16, 2, 16), ScoreUNet(1, [8, 16], 1, 16, 2, 16), VESDE(0.01, 10.0)).eval()
    x0, other = torch.rand(4, 1, 8, 8), torch.rand(4, 1, 8, 8)
    out = denoise_with_codes(model, x0, other, 0.3, SamplingConfig(steps=10))
    assert set(out) == {"x0", "xt", "other", "own code", "other code"}
    assert all(v.shape == x0.shape for v in out.values())
    assert not torch.equal(out["own code"], out["other code"]), "the code changes the denoised image"


def test_sample_spread_is_the_per_pixel_std_over_samples_of_one_code():
    from diffrep.methods.drl_samples import sample_spread

    g = torch.Generator().manual_seed(0)
    same = torch.rand(3, 1, 1, 8, 8, generator=g).expand(3, 50, 1, 8, 8)
    assert sample_spread(same) == 0.0, "identical samples have no spread"
    noisy = same + 0.2 * torch.randn(3, 4000, 1, 8, 8, generator=g)[:, :50]
    assert abs(sample_spread(noisy) - 0.2) < 0.02, "Gaussian noise of std 0.2 around one image"


def test_samples_per_code_share_the_code_of_their_image():
    from diffrep.methods.drl import DRLModel
    from diffrep.methods.drl_samples import samples_per_code
    from diffrep.nets.encoder import Encoder

    torch.manual_seed(0)
    model = DRLModel(Encoder(1, 8, [8, 16], 1, 16, 4, 16), ScoreUNet(1, [8, 16], 1, 16, 4, 16), VESDE(0.01, 10.0)).eval()
    seen = []
    score = model.score_fn
    model.score_fn = lambda x, t, z: seen.append(z) or score(x, t, z)
    x = samples_per_code(model, torch.rand(3, 1, 8, 8), 5, SamplingConfig(method="em", steps=4))
    assert x.shape == (3, 5, 1, 8, 8) and x.min() >= 0 and x.max() <= 1
    z = seen[0].reshape(3, 5, 4)
    assert torch.equal(z, z[:, :1].expand(3, 5, 4)), "the samples of one image are conditioned on its one code"
    assert not torch.equal(z[0, 0], z[1, 0])
