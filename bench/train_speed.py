"""Training iterations per second of the DRL model on the digits, per network size (not a test).

Usage: python bench/train_speed.py [--threads 1] [--iters 40]
"""
import argparse
import time

import torch
from sklearn.datasets import load_digits

from diffrep.config import load
from diffrep.methods.base import DataShape, RunSpec, method_named
from diffrep.train import new_state, train_step

SIZES = [([32, 64], 128), ([16, 32], 256), ([16, 32], 128), ([16, 32], 64), ([16, 32], 32), ([8, 16], 64)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iters", type=int, default=40)
    ap.add_argument("--profile", default="params/default.yaml")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.tensor(load_digits().images[:, None] / 16.0, dtype=torch.float32)
    for channels, batch in SIZES:
        cfg = load(args.profile)
        cfg.datasets["digits"].net.channels, cfg.datasets["digits"].batch_size = channels, batch
        spec, method = RunSpec("digits", "latent", "drl"), method_named("drl")
        model = method.build(cfg, spec, DataShape((1, 8, 8), 10))
        sched = method.schedule(cfg, spec)
        state, loss = new_state(model, model.parameters(), sched), method.loss(cfg, spec, model)
        for _ in range(3):
            train_step(state, loss, x, sched)
        t0 = time.perf_counter()
        for _ in range(args.iters):
            train_step(state, loss, x, sched)
        rate = args.iters / (time.perf_counter() - t0)
        params = sum(p.numel() for p in model.parameters())
        print(f"channels={channels} batch={batch} params={params} {rate:.1f} it/s")


if __name__ == "__main__":
    main()
