"""Exact likelihoods by the probability-flow ODE (score-SDE sec. 4.3, App. D.2; LSGM's NELBO term log p(z_0)).

log p_0(x) = log p_T(x_T) + int_0^T div f~(x_t, t) dt, where dx/dt = f~ = f - 1/2 g^2 score is the probability-flow
drift; x and the running integral are solved jointly, from eps to T.

The solver is `sampling.solve_ode`, the ODE sampler's own: scipy's RK45 (`solve_ivp`), which the project already
depends on, steps in float64 whatever the network's dtype, and is long maintained; score-SDE and LSGM both integrate
their likelihoods with it at rtol = atol = 1e-5. The divergence is exact (autograd, one backward pass per dimension:
small data and tests) or Hutchinson's estimate v^T (df~/dx) v with E[v v^T] = I (one backward pass), its probe v
either drawn afresh at every evaluation ("fresh", LSGM) or once per solve ("fixed", score-SDE), and Gaussian (LSGM)
or Rademacher (score-SDE: lower variance; exact wherever the Jacobian is diagonal). A fresh probe makes the
right-hand side random, which the adaptive step control reads as error: harmless where each sample has thousands
of dimensions (LSGM's latents), but in a few dimensions it multiplies the steps unless the tolerances are loosened.
"""
from __future__ import annotations

import math

import torch

from diffrep.sampling import CountedScore, _noise, _times, solve_ode
from diffrep.sde import SDE

PROBES = {
    "gaussian": lambda x, generator: _noise(x, generator),
    "rademacher": lambda x, generator: (2 * torch.randint(0, 2, x.shape, generator=generator) - 1).to(x),
}
NOISE = ("fresh", "fixed")


def exact_divergence(fn, x: torch.Tensor, probe) -> tuple[torch.Tensor, torch.Tensor]:
    """fn(x) and its divergence sum_i d fn_i / d x_i per sample, by one backward pass per dimension; probe unused."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        out = fn(x).flatten(1)
        rows = [torch.autograd.grad(out[:, i].sum(), x, retain_graph=True)[0].flatten(1)[:, i]
                for i in range(out.shape[1])]
    return out.detach().reshape(x.shape), torch.stack(rows, 1).sum(1)


def hutchinson_divergence(fn, x: torch.Tensor, probe) -> tuple[torch.Tensor, torch.Tensor]:
    """fn(x) and Hutchinson's unbiased estimate v^T (d fn / dx) v of its divergence, v = probe() (score-SDE App. D.2)."""
    v = probe()
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        out = fn(x)
        (vjp,) = torch.autograd.grad((out * v).sum(), x)
    return out.detach(), (vjp * v).flatten(1).sum(1)


DIVERGENCES = {"exact": exact_divergence, "hutchinson": hutchinson_divergence}


def hutchinson_probe(kind: str, noise: str, x: torch.Tensor, generator: torch.Generator | None):
    """A function of nothing returning a probe shaped like x: a new draw per call ("fresh") or one draw ("fixed")."""
    if kind not in PROBES:
        raise ValueError(f"unknown Hutchinson probe {kind!r}; known: {sorted(PROBES)}")
    if noise not in NOISE:
        raise ValueError(f"unknown Hutchinson noise {noise!r}; known: {sorted(NOISE)}")
    if noise == "fresh":
        return lambda: PROBES[kind](x, generator)
    v = PROBES[kind](x, generator)
    return lambda: v


def flow_with_divergence(sde: SDE, score_fn, shape, divergence, probe):
    """The right-hand side of the joint ODE in (x_t, int div): [f~(x_t, t), div f~(x_t, t)] per sample."""
    drift = sde.reverse(score_fn, probability_flow=True).sde
    size = math.prod(shape[1:])

    def rhs(t: float, y: torch.Tensor) -> torch.Tensor:
        x = y[:, :size].reshape(shape)
        dx, div = divergence(lambda x: drift(x, _times(t, x))[0], x, probe)
        return torch.cat([dx.flatten(1), div[:, None].to(y)], 1)

    return rhs


def log_likelihood(score_fn, sde: SDE, x: torch.Tensor, *, eps: float = 1e-5, rtol: float = 1e-5,
                   atol: float = 1e-5, trace: str = "hutchinson", noise: str = "fresh", probe: str = "gaussian",
                   generator: torch.Generator | None = None, progress: bool = False) -> tuple[torch.Tensor, int]:
    """log p_eps(x) in nats per sample (float64, on x's device) and the number of score evaluations (score-SDE App. D.2).

    trace: "hutchinson" or "exact"; noise ("fresh" | "fixed") and probe ("gaussian" | "rademacher") shape
    Hutchinson's estimator (LSGM: fresh Gaussian; score-SDE: fixed Rademacher). The probes are drawn on the CPU
    from `generator`, so a seed gives the same estimate on every device.
    """
    if trace not in DIVERGENCES:
        raise ValueError(f"unknown trace {trace!r}; known: {sorted(DIVERGENCES)}")
    if not 0 < eps < sde.T:
        raise ValueError(f"the likelihood needs 0 < eps < T, got eps={eps}, T={sde.T}")
    v = hutchinson_probe(probe, noise, x, generator) if trace == "hutchinson" else None
    counted = CountedScore(score_fn)
    rhs = flow_with_divergence(sde, counted, x.shape, DIVERGENCES[trace], v)
    y0 = torch.cat([x.flatten(1), torch.zeros(x.shape[0], 1, dtype=x.dtype, device=x.device)], 1)
    y = solve_ode(rhs, y0, eps, sde.T, rtol=rtol, atol=atol, progress=progress)
    z, integral = y[:, :-1].reshape(x.shape).to(x), y[:, -1].to(x.device)
    return sde.prior_logp(z).double() + integral, counted.calls


def bits_per_dim(nats: torch.Tensor | float, dims: int, levels: int | None = None) -> torch.Tensor | float:
    """Bits per dimension of a negative log-likelihood `nats` = -log p(x) (nats per sample) over `dims` dimensions.

    levels: None for a likelihood that is already discrete (or continuous data); else the number of values of
    data scaled to [0, 1] and uniformly dequantised, y = (k + u) / levels: each of the levels^D cells has volume
    levels^-D, so -log P(k) <= -log p(y) + D ln(levels) (Jensen), and bits/dim = (nats + D ln levels) / (D ln 2);
    e.g. 256 levels add 8 bits. Data on another scale must first add the log-Jacobian of its map to [0, 1].
    """
    offset = 0.0 if levels is None else dims * math.log(levels)
    return (nats + offset) / (dims * math.log(2))
