"""Samplers of the reverse-time SDE and the probability-flow ODE (score-SDE, Song et al. 2021), one signature.

Every sampler walks from t_init down to eps, starting from a prior at t_init (DRL Table 3 shortens sampling by
starting below T), and is written against the `SDE` interface only. `sample` reports the number of score
evaluations (NFE) each method spent.
"""
from __future__ import annotations

import math
from itertools import pairwise

import torch
from tqdm import tqdm

from diffrep.config import SamplingConfig
from diffrep.sde import SDE, _batch

# score-SDE's sampling_eps, for every method: the score grows like 1 / sigma(t)^2 as t -> 0, which makes the last
# steps unstable, while sigma(1e-3) is within about 1% of sigma_min for the VE SDE, so stopping there costs nothing.
DEFAULT_EPS = 1e-3
ODE_TOLERANCE = 1e-5  # rtol = atol, as score-SDE's ODE sampler

PRIOR_CENTRES = {
    "gaussian": lambda shape, generator: torch.zeros(shape),
    "uniform+gaussian": lambda shape, generator: torch.rand(shape, generator=generator),
}


class CountedScore:
    """A score function that counts its evaluations: the NFE every sampler reports."""

    def __init__(self, score_fn):
        self.score_fn, self.calls = score_fn, 0

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.score_fn(x, t)


def _noise(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """z ~ N(0, I) shaped like x, drawn on the CPU so that a seed gives the same draws on every device."""
    return torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)


def _times(t: float, x: torch.Tensor) -> torch.Tensor:
    """The time t for every sample of the batch, as score functions take it."""
    return torch.full((x.shape[0],), t, dtype=x.dtype, device=x.device)


def _mean_norm(v: torch.Tensor) -> torch.Tensor:
    """Per-sample L2 norm averaged over the batch (the norms of score-SDE Alg. 4)."""
    return v.flatten(1).norm(dim=1).mean()


def time_grid(t_init: float, eps: float, steps: int) -> list[float]:
    """steps + 1 equally spaced times from t_init down to eps (score-SDE's uniform discretisation)."""
    return torch.linspace(t_init, eps, steps + 1, dtype=torch.float64).tolist()


def prior_sample(sde: SDE, shape, t_init: float, prior: str, generator: torch.Generator | None) -> torch.Tensor:
    """x at t_init: p_T itself, else the kernel p_0t around 0 ("gaussian") or around U([0,1]^d) (DRL Table 3)."""
    if prior not in PRIOR_CENTRES:
        raise ValueError(f"unknown prior {prior!r}; known: {sorted(PRIOR_CENTRES)}")
    if prior == "gaussian" and t_init == sde.T:
        return sde.prior_sampling(shape, generator)
    centre = PRIOR_CENTRES[prior](shape, generator)
    return sde.perturb(centre, _times(t_init, centre), _noise(centre, generator))


def reverse_diffusion_step(sde: SDE, score_fn, x, t: float, dt: float, generator):
    """Reverse-diffusion predictor x - F + G^2 s + G z, F, G the forward step over |dt| (score-SDE App. E)."""
    f, g = sde.discretize(x, _times(t, x), -dt)
    g = _batch(g, x)
    x_mean = x - f + g**2 * score_fn(x, _times(t, x))
    return x_mean + g * _noise(x, generator), x_mean


def langevin_step(score_fn, x, t: float, snr: float, generator):
    """Langevin corrector with step 2 alpha (snr ||z|| / ||s||)^2 (score-SDE Alg. 4)."""
    grad = score_fn(x, _times(t, x))
    z = _noise(x, generator)
    # alpha = 1 is exact for the VE SDE; a VP SDE's alpha_i = 1 - beta_i differs from it by O(1/N) per step.
    step = 2 * (snr * _mean_norm(z) / _mean_norm(grad)) ** 2
    x_mean = x + step * grad
    return x_mean + torch.sqrt(2 * step) * z, x_mean


def euler_maruyama_step(reverse_sde, x, t: float, dt: float, generator):
    """x + [f - g^2 s] dt + g sqrt(|dt|) z with dt < 0, Euler-Maruyama on the reverse SDE (score-SDE eq. 6)."""
    drift, diffusion = reverse_sde.sde(x, _times(t, x))
    x_mean = x + drift * dt
    return x_mean + _batch(diffusion, x) * math.sqrt(-dt) * _noise(x, generator), x_mean


def _walk(step, x: torch.Tensor, times: list[float], progress: bool) -> torch.Tensor:
    """Apply step(x, t, dt) -> (x, x_mean) along the grid and return the last mean: the final step adds no noise."""
    x_mean = x
    for t, t_next in tqdm(list(pairwise(times)), disable=not progress, desc="sampling"):
        x, x_mean = step(x, t, t_next - t)
    return x_mean


def predictor_corrector(sde, score_fn, x, times, snr, generator, progress):
    """PC sampling (score-SDE Alg. 1): per time, one Langevin corrector step, then the reverse-diffusion predictor."""

    def step(x, t, dt):
        x, _ = langevin_step(score_fn, x, t, snr, generator)
        return reverse_diffusion_step(sde, score_fn, x, t, dt, generator)

    return _walk(step, x, times, progress)


def euler_maruyama(sde, score_fn, x, times, snr, generator, progress):
    """Euler-Maruyama on the reverse SDE (score-SDE eq. 6); snr is unused."""
    reverse_sde = sde.reverse(score_fn)
    return _walk(lambda x, t, dt: euler_maruyama_step(reverse_sde, x, t, dt, generator), x, times, progress)


def solve_ode(rhs, y0: torch.Tensor, t0: float, t1: float, *, rtol: float = ODE_TOLERANCE,
              atol: float = ODE_TOLERANCE, progress: bool = False) -> torch.Tensor:
    """y(t1) for dy/dt = rhs(t, y), y(t0) = y0, by scipy's adaptive RK45: the one solver of the ODE sampler and the
    likelihood. scipy steps in float64; rhs sees y in y0's dtype and device. Returns y(t1) in float64 on the CPU."""
    from scipy.integrate import (
        solve_ivp,  # imported here: scipy.integrate costs every job ~0.5 s of start-up
    )

    with tqdm(disable=not progress, desc="ode", unit="nfe") as bar:

        def f(t, y):
            bar.update()
            return rhs(t, torch.from_numpy(y).reshape(y0.shape).to(y0)).flatten().cpu().double().numpy()

        solution = solve_ivp(f, (t0, t1), y0.flatten().cpu().double().numpy(), method="RK45", rtol=rtol, atol=atol)
    if not solution.success:
        raise RuntimeError(f"probability-flow ODE solve failed: {solution.message}")
    return torch.from_numpy(solution.y[:, -1]).reshape(y0.shape)


def probability_flow_ode(sde, score_fn, x, times, snr, generator, progress):
    """The probability-flow ODE (score-SDE eq. 13) from times[0] to times[-1] by adaptive RK45; deterministic."""
    drift = sde.reverse(score_fn, probability_flow=True).sde
    return solve_ode(lambda t, xt: drift(xt, _times(t, xt))[0], x, times[0], times[-1], progress=progress).to(x)


SAMPLERS = {"pc": predictor_corrector, "em": euler_maruyama, "ode": probability_flow_ode}


@torch.no_grad()
def sample(score_fn, sde: SDE, shape, method: str, steps: int, *, snr: float = SamplingConfig.snr, t_init: float = 1.0,
           prior: str = "gaussian", eps: float | None = None, generator: torch.Generator | None = None,
           progress: bool = False, x_init: torch.Tensor | None = None,
           device: torch.device | str | None = None) -> tuple[torch.Tensor, int]:
    """Samples of shape `shape` and the number of score evaluations spent on them.

    method: "pc" (2 evaluations per step), "em" (1 per step) or "ode" (adaptive; `steps` is ignored).
    eps: where sampling stops; None means DEFAULT_EPS. The stochastic samplers return the noise-free mean of
    their last step; the ODE's end point has no noise to remove.
    prior: "gaussian" or "uniform+gaussian", see `prior_sample`; `x_init`, a given x at t_init, replaces it
    (denoising a perturbed image, DRL Fig. 9). `device`: where x lives while sampling (the score's device; the
    noise is drawn on the CPU, so a seed gives the same draws everywhere); default the CPU or x_init's device.
    """
    if method not in SAMPLERS:
        raise ValueError(f"unknown sampling method {method!r}; known: {sorted(SAMPLERS)}")
    eps = DEFAULT_EPS if eps is None else eps
    if not 0 < eps < t_init <= sde.T:
        raise ValueError(f"sampling needs 0 < eps < t_init <= T, got eps={eps}, t_init={t_init}, T={sde.T}")
    if method != "ode" and steps < 1:
        raise ValueError(f"method {method!r} needs steps >= 1, got {steps}")
    x = prior_sample(sde, shape, t_init, prior, generator) if x_init is None else x_init.clone()
    x = x.to(device or x.device)
    counted = CountedScore(score_fn)
    # the adaptive ODE solver chooses its own steps, so its grid is only the two end points
    times = time_grid(t_init, eps, 1 if method == "ode" else steps)
    return SAMPLERS[method](sde, counted, x, times, snr, generator, progress), counted.calls
