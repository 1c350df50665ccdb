"""`diffrep`: the subcommands that the Snakemake rules and DVC stages call."""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

import numpy as np
import torch

from diffrep import config as cfgmod
from diffrep.io import atomic_path, write_npz, write_text
from diffrep.methods.base import EXPERIMENTS, RunSpec, method_names
from diffrep.objectives import T_SCHEMES


def cmd_resolve(args) -> None:
    """Validate a profile and write the resolved parameters."""
    cfg = cfgmod.load(args.profile)
    if args.out:
        cfgmod.dump(cfg, args.out)
    else:
        sys.stdout.write(json.dumps(cfgmod.to_dict(cfg), indent=2) + "\n")


def cmd_plan(args) -> None:
    """params.yaml (the resolved profile) and dvc.yaml (its run plan as DVC stages) for `dvc repro`."""
    from diffrep.plan import Plan, dvc_yaml

    cfg = cfgmod.load(args.profile)
    cfgmod.dump(cfg, args.params)
    Path(args.dvc).write_text(dvc_yaml(Plan(cfg, args.params)))


def cmd_prepare(args) -> None:
    from diffrep import data

    cfg = cfgmod.load(args.config)
    out = Path(args.out)
    data.prepare(args.dataset, _dataset(cfg, args.dataset), out)
    cfgmod.dump(cfg, out / "config.yaml")


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """Images in [0, 1] as 8-bit pixels, as sample sets are stored."""
    return (x * 255).round().to(torch.uint8).numpy()


def _dataset(cfg, name: str):
    if name not in cfg.datasets:
        raise cfgmod.ConfigError(f"dataset {name!r} is not defined in the parameters (defined: {sorted(cfg.datasets)})")
    return cfg.datasets[name]


def cmd_train(args) -> None:
    """Train one run of a registered method; resumes from its checkpoint."""
    cfg = cfgmod.load(args.config)
    seed = args.seed if args.seed is not None else getattr(cfg.experiments, args.experiment).__dict__.get("seed", 0)
    spec = RunSpec(args.dataset, args.experiment, args.method, args.scheme, args.t, seed, args.init, args.freeze_encoder,
                   args.p_kl, args.code_dim)
    _train(cfg, spec, args)


def _train(cfg, spec: RunSpec, args) -> None:
    """`train_run` of `spec` into --out on the training split of --data, with the resolved config beside it."""
    from diffrep import data
    from diffrep.methods.run import train_run

    _dataset(cfg, spec.dataset)
    _use_threads(args.threads or cfg.train.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cfgmod.dump(cfg, out / "config.yaml")
    x_train, y_train = data.load(args.data, "train")
    train_run(cfg, spec, x_train, y_train, out)


def _use_threads(n: int) -> None:
    """torch's CPU threads: n when given (the rules pass their job's threads), torch's own default otherwise."""
    if n < 0:
        raise ValueError(f"--threads must be 0 (default) or more, not {n}")
    if n:
        torch.set_num_threads(n)


def _per_model(args, *names: str):
    """`--model` zipped with the lists that hold one entry per model (`--out`, `--codes`): one job, many models,
    one start-up. Checked before any data is read, so a wrong command line fails first."""
    lists = {"model": args.model, **{name: getattr(args, name) for name in names}}
    if len({len(v) for v in lists.values()}) != 1:
        counts = ", ".join(f"{len(v)} --{k}" for k, v in lists.items())
        raise ValueError(f"give one {' and one '.join('--' + n for n in names)} per --model (got {counts})")
    return list(zip(*lists.values(), strict=True))


def _splits(data_dir: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    from diffrep import data

    return {split: data.load(data_dir, split) for split in ("train", "test")}


def _model_codes(model_path: str, splits: dict) -> dict[str, np.ndarray]:
    """A model's codes (its encoder's mean) of the training and test images; for E(x0, t) one set per t of the
    few-shot grid."""
    from dataclasses import asdict

    from diffrep.evaluate.representation import timed_codes
    from diffrep.methods.run import load_model

    model, spec, cfg = load_model(model_path)
    arrays = {"spec": np.array(json.dumps(asdict(spec)))}
    for split, (x, y) in splits.items():
        arrays["t"], arrays[f"codes_{split}"] = timed_codes(model, x, cfg.experiments.fewshot.t)
        arrays[f"y_{split}"] = y.numpy()
    return arrays


def cmd_encode(args) -> None:
    """Codes of the training and test images, for each model in turn (one job for many models saves their start-up)."""
    _use_threads(args.threads)
    runs = _per_model(args, "out")
    splits = _splits(args.data)
    for model_path, out in runs:
        write_npz(out, **_model_codes(model_path, splits))
        logging.getLogger("diffrep").info("encoded %s -> %s", model_path, out)


def _code_sets(path: Path, z, cfg) -> list[tuple[dict, np.ndarray, np.ndarray]]:
    """What one codes file offers the representation table: its static code, or E(x0, t) at t = 0 and at its best t
    (chosen by the training codes' silhouette), each with its run, method, seed and training budget."""
    from diffrep.evaluate.representation import best_t
    from diffrep.methods.base import method_named

    spec = RunSpec(**json.loads(str(z["spec"])))
    run = path.parent.name if path.name == "model.pt" else path.stem
    method = method_named(spec.method)
    meta = {"run": run, "method": spec.method, "experiment": spec.experiment, "seed": spec.seed,
            "iterations": method.iterations(cfg, spec), "batch": method.batch_size(cfg, spec)}
    ts = z["t"]
    if np.isnan(ts).all():
        return [({**meta, "code": "static", "t": math.nan}, z["codes_train"][0], z["codes_test"][0])]
    picks = {"t = 0": int(np.argmin(ts)), "best t": best_t(z["codes_train"], z["y_train"])}
    return [({**meta, "code": name, "t": float(ts[i])}, z["codes_train"][i], z["codes_test"][i])
            for name, i in picks.items()]


def cmd_representations(args) -> None:
    """One protocol for the codes of every method (encoded here, or read from `diffrep encode`'s files), with raw
    pixels and PCA as floors: silhouette, SVM and kNN on shared labelled draws, a linear probe."""
    from diffrep.evaluate.representation import pca_codes, protocol

    _use_threads(args.threads)
    cfg = cfgmod.load(args.config)
    ex, splits = cfg.experiments.representations, _splits(args.data)
    (x_tr, y_tr), (x_te, y_te) = ((x.flatten(1).numpy(), y.numpy()) for x, y in splits.values())
    floor = {"experiment": "floor", "seed": 0, "iterations": 0, "batch": 0, "t": math.nan}
    sets = [({"run": "pixels", "method": "pixels", "code": "static", **floor}, x_tr, x_te),
            ({"run": "pca", "method": "pca", "code": "static", **floor}, *pca_codes(x_tr, x_te, ex.pca_dim))]
    files = [(p, np.load(p)) for p in args.codes] + [(m, _model_codes(m, splits)) for m in args.model]
    for path, z in files:
        sets += _code_sets(Path(path), z, cfg)
    rows = [{**meta, "dim": train.shape[1], **row} for meta, train, test in sets
            for row in protocol(train, y_tr, test, y_te, ex.labels, ex.draws, ex.knn, ex.seed)]
    _write_csv(rows, args.out)


def _codes(codes_dir: str, experiments: tuple[str, ...]):
    """(path, arrays, run spec) of every codes file in `codes_dir` from the given experiments, in name order."""
    paths = sorted(Path(codes_dir).glob("*.npz"))
    if not paths:
        raise FileNotFoundError(f"no codes in {codes_dir}; create them with `diffrep encode`")
    for path in paths:
        z = np.load(path)
        spec = json.loads(str(z["spec"]))
        if spec["experiment"] in experiments:
            yield path, z, spec


def cmd_silhouette(args) -> None:
    from diffrep.evaluate.representation import silhouette

    rows = [{**spec, "silhouette": silhouette(z["codes_test"][0], z["y_test"]), "codes": path.as_posix()}
            for path, z, spec in _codes(args.codes_dir, ("latent", "sweep"))]
    _write_csv(rows, args.out)


def cmd_fewshot(args) -> None:
    from diffrep.evaluate.representation import fewshot_rows

    fs = cfgmod.load(args.config).experiments.fewshot
    rows = [{"method": spec["method"], **row} for _, z, spec in _codes(args.codes_dir, ("fewshot",))
            for row in fewshot_rows(z["codes_train"], z["y_train"], z["codes_test"], z["y_test"], z["t"], fs.labels,
                                    fs.draws, fs.seed)]
    _write_csv(rows, args.out)


def cmd_curves(args) -> None:
    """The metric behind each verdict on every snapshot and final model given, in one table: a row per
    measurement with the model's experiment, run, method and training step."""
    from diffrep.evaluate.curves import CURVES, Splits
    from diffrep.methods.run import load_model, run_of

    _use_threads(args.threads)
    cfg = cfgmod.load(args.config)
    (x_tr, y_tr), (x_te, y_te) = _splits(args.data).values()
    data = Splits(x_tr, y_tr.numpy(), x_te, y_te.numpy(), *_fid_features(cfg, args.classifier))
    rows = []
    for path in map(Path, args.model):
        model, spec, _ = load_model(path)
        run = run_of(path)
        meta = {"experiment": spec.experiment, "run": run, "method": spec.method, "scheme": spec.scheme,
                "freeze_encoder": spec.freeze_encoder, "train_t": spec.t, "seed": spec.seed, "step": model.trained_steps}
        rows += [{**meta, **row} for row in CURVES[spec.experiment](model, spec, cfg, data)]
        logging.getLogger("diffrep").info("curve point %s at step %s", run, model.trained_steps)
    _write_csv(rows, args.out)


def _fid_features(cfg, classifier: str | None) -> tuple[str, str]:
    """FID's features: Inception where the profile gives its weights, else the domain classifier."""
    from diffrep.weights import local_path

    inception = local_path(cfg, "inception")
    return ("inception", inception) if inception else ("classifier", classifier or "")


def _write_csv(rows: list[dict], path: str, **columns) -> None:
    """Rows (and constant `columns`) as a CSV file, written atomically; pandas is imported only where a table is made."""
    import pandas as pd

    write_text(path, pd.DataFrame(rows).assign(**columns).to_csv(index=False))


def cmd_sample(args) -> None:
    """Samples of an unconditional score model from t_init with the given prior (DRL Table 2, 3)."""
    import time

    from diffrep.methods.generation import generate, sampling_steps
    from diffrep.methods.run import load_model
    from diffrep.train import pick_device

    _use_threads(args.threads)
    model, spec, _ = load_model(args.model, pick_device(args.device))
    cfg = cfgmod.load(args.config)  # sampling settings come from the profile, not from the model's training run
    start = time.perf_counter()
    x, nfe = generate(model, args.n, model.image_shape, cfg.sampling, args.t_init, args.prior, args.seed)
    meta = {"t_init": args.t_init, "prior": args.prior, "method": cfg.sampling.method, "nfe": nfe,
            "steps": sampling_steps(cfg.sampling.steps, args.t_init),
            "seconds": time.perf_counter() - start, "p_kl": spec.p_kl}
    write_npz(args.out, x=_to_uint8(x), meta=json.dumps(meta))


def cmd_drl_samples(args) -> None:
    """A 2-d code model's samples over a grid of codes (DRL Fig. 2a, 3a) and denoised with another code (Fig. 9),
    for each model in turn."""
    from diffrep import data
    from diffrep.methods.drl_samples import code_grid_samples, denoise_with_codes
    from diffrep.methods.run import load_model
    from diffrep.train import pick_device

    _use_threads(args.threads)
    runs = _per_model(args, "codes", "out")
    cfg = cfgmod.load(args.config)
    latent = cfg.experiments.latent  # the flags override the profile's grid side and t
    side = latent.grid_side if args.side is None else args.side
    t = latent.denoise_t if args.t is None else args.t
    x_test, _ = data.load(args.data, "test")
    for model_path, codes_path, out in runs:
        model, _, _ = load_model(model_path, pick_device(args.device))
        codes = torch.from_numpy(np.load(codes_path)["codes_test"][0]).float()
        grid = code_grid_samples(model, codes, side, cfg.sampling, model.image_shape)
        pairs = denoise_with_codes(model, x_test[:8], x_test[8:16], t, cfg.sampling)
        fig9 = {f"fig9_{k.replace(' ', '_')}": _to_uint8(v) for k, v in pairs.items()}
        write_npz(out, grid=_to_uint8(grid), t=t, **fig9)


def cmd_code_dim_samples(args) -> None:
    """DRL Fig. 10: samples for the codes of a few test images, and their spread, for each code dimension's model."""
    from diffrep import data
    from diffrep.methods.drl_samples import sample_spread, samples_per_code
    from diffrep.methods.run import load_model
    from diffrep.train import pick_device

    _use_threads(args.threads)
    runs = _per_model(args, "out")
    cfg = cfgmod.load(args.config)
    ex = cfg.experiments.codedim
    x0, _ = data.load(args.data, "test")
    for model_path, out in runs:
        model, spec, _ = load_model(model_path, pick_device(args.device))
        x = samples_per_code(model, x0[:ex.images], ex.samples, cfg.sampling, seed=ex.seed)
        write_npz(out, x0=_to_uint8(x0[:ex.images]), samples=_to_uint8(x), code_dim=spec.code_dim,
                  spread=sample_spread(x))


def cmd_train_classifier(args) -> None:
    """The domain classifier whose features give FID/IS offline; its test accuracy is kept beside it."""
    from diffrep import data
    from diffrep.evaluate.fidelity import save_classifier, train_classifier
    from diffrep.evaluate.representation import accuracy as top1_accuracy

    cfg = cfgmod.load(args.config)
    _use_threads(args.threads)
    (x_train, y_train), (x_test, y_test) = data.load(args.data, "train"), data.load(args.data, "test")
    model = train_classifier(x_train, y_train, cfg.fidelity, seed=0)
    accuracy = top1_accuracy(model.eval(), x_test, y_test, batch=512)
    logging.getLogger("diffrep").info("domain classifier test accuracy %.4f", accuracy)
    save_classifier(model, args.out)
    cfgmod.dump(cfg, Path(args.out).with_name("config.yaml"))
    write_text(Path(args.out).with_name("accuracy.json"), json.dumps({"test_accuracy": accuracy}) + "\n")


def cmd_fidelity(args) -> None:
    """FID/IS of every sample set against the training images (Inception when its weights are given, else the
    classifier), and the FIDs of its `fidelity.fid_splits` disjoint splits, joined by ';' (`fid_splits`)."""
    from diffrep import data
    from diffrep.evaluate.fidelity import fidelity_metrics, split_fids

    cfg = cfgmod.load(args.config)
    _use_threads(args.threads)
    features, weights = _fid_features(cfg, args.classifier)
    reference, _ = data.load(args.data, "train")
    accuracy = json.loads(Path(args.classifier).with_name("accuracy.json").read_text())["test_accuracy"]
    kwargs = {"features": features, "weights_path": weights, "cuda": torch.cuda.is_available()}
    rows = []
    for path in args.samples:
        z = np.load(path)
        x = torch.from_numpy(z["x"]).float() / 255
        scores = fidelity_metrics(x, reference, **kwargs)
        splits = split_fids(x, reference, cfg.fidelity.fid_splits, **kwargs)
        rows.append({"run": Path(path).stem, **json.loads(str(z["meta"])), "samples": len(x), **scores,
                     "fid_splits": ";".join(str(float(v)) for v in splits),
                     "classifier_accuracy": accuracy if features == "classifier" else float("nan")})
    _write_csv(rows, args.out)


def cmd_loss_per_t(args) -> None:
    """Mean DSM loss of the test images on a grid of t (DRL Fig. 13), and alpha over training (Fig. 14)."""
    import pandas as pd

    from diffrep import data
    from diffrep.methods.generation import loss_per_t
    from diffrep.methods.run import load_model

    x_test, _ = data.load(args.data, "test")
    model, spec, cfg = load_model(args.model)
    ts = cfg.experiments.adversarial.loss_t  # the grid of the profile the model was trained with
    alpha = model.log_values().get("alpha", float("nan"))
    losses = pd.DataFrame({"t": ts, "loss": loss_per_t(model, x_test, ts)}).assign(p_kl=spec.p_kl, alpha=alpha)
    history = pd.read_csv(Path(args.model).parent / "metrics.csv")[["step", "alpha"]].assign(p_kl=spec.p_kl)
    for frame, out in ((losses, args.out), (history, args.alpha_out)):
        with atomic_path(out) as tmp:
            frame.to_csv(tmp, index=False)


def cmd_pretrain(args) -> None:
    """Pretrain LaplaceNet's classifier as a DRL/VDRL encoder or an autoencoder (DRL A.6); resumes from its checkpoint."""
    from diffrep.methods.semisup import run_spec

    _train(cfgmod.load(args.config), run_spec(args.dataset, args.pretraining), args)


def cmd_laplacenet(args) -> None:
    """Test accuracy of LaplaceNet for every setting of one pretraining, label count and seed (DRL Tables 1, 4-7)."""
    from diffrep import data
    from diffrep.evaluate.semisup import semisup_rows, settings_for
    from diffrep.methods.semisup import build_wrn, load_pretrained
    from diffrep.train import pick_device

    cfg = cfgmod.load(args.config)
    _dataset(cfg, args.dataset)
    _use_threads(args.threads or cfg.train.threads)
    if (args.pretraining == "none") != (args.model is None):
        raise ValueError("--model (the pretrained model.pt) goes with every --pretraining but none")
    device, sx = pick_device(cfg.train.device), cfg.experiments.semisup
    train, test = ([t.to(device) for t in data.load(args.data, split)] for split in ("train", "test"))
    shape, classes = tuple(train[0].shape[1:]), int(train[1].max()) + 1

    def make_model():
        model = build_wrn(cfg, args.dataset, shape, classes)
        if args.model:
            load_pretrained(model, args.model)
        return model.to(device)

    rows = semisup_rows(make_model, sx, settings_for(sx, args.pretraining), sx.labels[args.dataset], train, test)
    cfgmod.dump(cfg, Path(args.out).with_name("config.yaml"))
    _write_csv(rows, args.out, dataset=args.dataset)


def cmd_report(args) -> None:
    from diffrep.plan import Plan, unplanned_results
    from diffrep.report.render import render_report

    cfg = cfgmod.load(args.config)
    stale = unplanned_results(Plan(cfg, args.config))
    if stale:
        listed = ", ".join(map(str, stale[:5])) + (f" and {len(stale) - 5} more" if len(stale) > 5 else "")
        raise ValueError(f"{len(stale)} result files that no job of profile {cfg.name!r} writes would enter the "
                         f"report: {listed}; left from an earlier configuration? Remove them and rerun")
    cfgmod.dump(cfg, Path(args.results) / "config.yaml")
    render_report(cfg, Path(args.results), Path(args.out), Path(args.figures),
                  Path(args.benchmarks) if args.benchmarks else None,
                  baseline=Path(args.baseline) if args.baseline else None)


def cmd_fetch_weights(args) -> None:
    """Pretrained weights (Inception for FID) from the URL in the parameters, checked against its md5."""
    from diffrep.weights import fetch_configured

    fetch_configured(cfgmod.load(args.config), args.name, args.out)


def cmd_lsgm_evaluate(args) -> None:
    """LSGM eq. 6: a run's test NELBO (ODE likelihood of the latent, the backbone's beside it) and its ODE samples."""
    from diffrep import data
    from diffrep.evaluate.nelbo import evaluate_run

    _use_threads(args.threads)
    cfg = cfgmod.load(args.config)  # evaluation settings come from the profile
    x_test, _ = data.load(args.data, "test")
    record, x, meta = evaluate_run(args.model, x_test, cfg.experiments.lsgm)
    write_text(args.out, json.dumps(record, indent=2) + "\n")
    write_npz(args.samples, x=_to_uint8(x), meta=json.dumps(meta))


def cmd_lsgm_speed(args) -> None:
    """LSGM Fig. 4: samples of LSGM's ODE and the data-space score model's ODE per tolerance, and its PC sampler; --out
    lists LSGM's sets per tolerance, then the data-space ODE's, then PC's."""
    from diffrep.evaluate.nelbo import data_space_samples, model_samples
    from diffrep.methods.run import load_model

    _use_threads(args.threads)
    cfg = cfgmod.load(args.config)
    s, tolerances = cfg.experiments.lsgm, cfg.experiments.lsgm.tolerances
    if len(args.out) != 2 * len(tolerances) + 1:
        raise ValueError(f"give {2 * len(tolerances) + 1} --out files: LSGM and ODE per tolerance, then PC")
    lsgm, _, _ = load_model(args.model)
    score, _, _ = load_model(args.score)
    latent, n = lsgm.latent_shape(lsgm.image_shape), s.speed_samples
    sets = [model_samples(lsgm, n, latent, s, tol, s.seed) for tol in tolerances]
    sets += [data_space_samples(score, n, score.image_shape, "ode", tol, 0, 0.0, s.seed) for tol in tolerances]
    sets.append(data_space_samples(score, n, score.image_shape, cfg.sampling.method, math.nan, cfg.sampling.steps,
                                   cfg.sampling.snr, s.seed))
    for out, (x, meta) in zip(args.out, sets, strict=True):
        write_npz(out, x=_to_uint8(x), meta=json.dumps(meta))


def cmd_reconstruct(args) -> None:
    """ScoreVAE Tables 1-6: each model's reconstructions of the first test images (the conditional reverse SDE, or the
    beta-VAE's decoder, seeded by the run's seed), then L2, LPIPS and the classifier's feature distance of them all
    and of the reference reconstructions that use no model (`floors`)."""
    from itertools import chain

    from diffrep import data
    from diffrep.evaluate.reconstruction import (
        floors,
        read_reconstructions,
        reconstruct,
        score_reconstructions,
        vgg_weights,
    )
    from diffrep.methods.run import load_model
    from diffrep.train import pick_device
    from diffrep.weights import local_path

    pairs = _per_model(args, "out")
    _use_threads(args.threads)
    cfg = cfgmod.load(args.config)
    ex = cfg.experiments.scorevae  # evaluation settings come from the profile
    device = pick_device(args.device)
    x0, y0 = (part[: ex.test_images] for part in data.load(args.data, "test"))
    for model_path, out in pairs:
        model, spec, _ = load_model(model_path, device)
        x_hat = reconstruct(model, x0.to(device), ex.steps, ex.batch_size, spec.seed)
        write_npz(out, x0=x0.numpy(), x_hat=x_hat.cpu().numpy(), method=spec.method, seed=spec.seed, steps=ex.steps)
    runs = chain(map(read_reconstructions, args.out), floors(x0, y0, data.load(args.data, "train")))
    rows = score_reconstructions(runs, vgg_weights(local_path(cfg, "lpips")), args.classifier)
    _write_csv(rows, args.scores, log_density=ex.log_density, weighting=ex.weighting)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="diffrep", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_data_commands, _training_commands, _code_commands, _sample_commands, _semisup_commands,
                _report_commands, _lsgm_commands, _scorevae_commands):
        add(sub)
    return p


def _data_commands(sub) -> None:
    s = sub.add_parser("resolve", help="validate a profile and print or write the resolved parameters")
    s.add_argument("profile")
    s.add_argument("-o", "--out")
    s.set_defaults(func=cmd_resolve)

    s = sub.add_parser("plan", help="write params.yaml and dvc.yaml (DVC's stages) for a profile's run plan")
    s.add_argument("profile")
    s.add_argument("--params", default="params.yaml")
    s.add_argument("--dvc", default="dvc.yaml")
    s.set_defaults(func=cmd_plan)

    s = _command(sub, "prepare", cmd_prepare, "prepare a dataset into versioned train/test files",
                 config=True, out=True)
    s.add_argument("--dataset", required=True)


def _training_commands(sub) -> None:
    s = _command(sub, "train", cmd_train, "train one run of a registered method; resumes from its checkpoint",
                 config=True, out=True, data=True, threads=True)
    s.add_argument("--dataset", required=True)
    s.add_argument("--experiment", required=True, choices=EXPERIMENTS)
    s.add_argument("--method", required=True, choices=method_names())
    s.add_argument("--scheme", default="uniform_t", choices=sorted(T_SCHEMES))
    s.add_argument("--t", type=float)
    s.add_argument("--seed", type=int)
    s.add_argument("--init", help="phase-1 model.pt to start from")
    s.add_argument("--freeze-encoder", action="store_true")
    s.add_argument("--p-kl", type=float, help="adversarial lambda (DRL A.7): share of steps on the plain objective")
    s.add_argument("--code-dim", type=int, help="the code's dimension (experiment codedim, DRL Fig. 10)")

    _command(sub, "train-classifier", cmd_train_classifier, "the domain classifier that gives FID/IS features offline",
             config=True, out=True, data=True, threads=True)


def _code_commands(sub) -> None:
    s = _command(sub, "encode", cmd_encode, "codes of the training and test images", data=True, threads=True)
    _models(s, "models", out="a codes file (.npz) per model")

    s = _command(sub, "silhouette", cmd_silhouette, "silhouette scores of test codes", out=True)
    s.add_argument("--codes-dir", required=True)

    s = _command(sub, "fewshot", cmd_fewshot, "few-shot SVM accuracy on codes", config=True, out=True)
    s.add_argument("--codes-dir", required=True)

    s = _command(sub, "curves", cmd_curves, "each verdict's metric along training (EMA snapshots and "
                 "final models)", config=True, out=True, data=True, threads=True)
    s.add_argument("--model", nargs="+", required=True, help="snapshots and final models")
    s.add_argument("--classifier", help="the domain classifier's model.pt (FID features where Inception is not given)")

    s = _command(sub, "representations", cmd_representations, "one protocol for every method's codes, with raw "
                 "pixels and PCA", config=True, out=True, data=True, threads=True)
    s.add_argument("--codes", nargs="*", default=[], help="codes files of `diffrep encode`")
    s.add_argument("--model", nargs="*", default=[], help="models whose codes are made here")


def _sample_commands(sub) -> None:
    s = _command(sub, "sample", cmd_sample,
                 "samples of a score model from t_init with a Gaussian or uniform+Gaussian prior",
                 config=True, out=True, threads=True, device=True)
    s.add_argument("--model", required=True)
    s.add_argument("--n", type=int, required=True, help="number of samples")
    s.add_argument("--t-init", type=float, default=1.0)
    s.add_argument("--prior", default="gaussian", choices=["gaussian", "uniform+gaussian"])
    s.add_argument("--seed", type=int, default=0)

    s = _command(sub, "drl-samples", cmd_drl_samples,
                 "samples over a grid of 2-d codes, and denoising with another image's code",
                 config=True, data=True, threads=True, device=True)
    _models(s, "2-d code models (experiment latent)", out="a samples file (.npz) per model",
            codes="each model's codes (from `diffrep encode`), for the grid's range")
    s.add_argument("--side", type=int, help="the grid has side x side codes (default: experiments.latent.grid_side)")
    s.add_argument("--t", type=float, help="x_t is denoised from t, DRL Fig. 9 (default: experiments.latent.denoise_t)")

    s = _command(sub, "code-dim-samples", cmd_code_dim_samples,
                 "samples for one code as the code dimension grows (DRL Fig. 10)",
                 config=True, data=True, threads=True, device=True)
    _models(s, "codedim models (experiment codedim)", out="a samples file (.npz) per model")

    s = _command(sub, "fidelity", cmd_fidelity, "FID and Inception Score of sample sets (features named in the output)",
                 config=True, out=True, data=True, threads=True)
    s.add_argument("--classifier", required=True, help="the domain classifier's model.pt")
    s.add_argument("--samples", nargs="+", required=True)

    s = _command(sub, "loss-per-t", cmd_loss_per_t, "test loss per t and alpha over training of an adversarial model",
                 out=True, data=True)
    s.add_argument("--model", required=True)
    s.add_argument("--alpha-out", required=True)


def _semisup_commands(sub) -> None:
    s = _command(sub, "pretrain", cmd_pretrain, "pretrain LaplaceNet's WRN as a DRL/VDRL encoder or an autoencoder",
                 config=True, out=True, data=True, threads=True)
    s.add_argument("--dataset", required=True)
    s.add_argument("--pretraining", required=True, choices=cfgmod.PRETRAININGS)

    s = _command(sub, "laplacenet", cmd_laplacenet,
                 "LaplaceNet semi-supervised accuracy for one pretraining (DRL Tables 1, 4-7)",
                 config=True, out=True, data=True, threads=True)
    s.add_argument("--dataset", required=True)
    s.add_argument("--pretraining", required=True, choices=("none", *cfgmod.PRETRAININGS))
    s.add_argument("--model", help="the pretrained model.pt (from `diffrep pretrain`)")


def _report_commands(sub) -> None:
    s = _command(sub, "report", cmd_report, "render reports/tables.md and the figures from the metrics",
                 config=True, out=True)
    s.add_argument("--results", required=True)
    s.add_argument("--figures", required=True)
    s.add_argument("--benchmarks", default="", help="Snakemake's benchmark files of the run, for its compute line")
    s.add_argument("--baseline", default="", help="another profile's verdicts.json, set beside ours in the scoreboard")
    s = _command(sub, "fetch-weights", cmd_fetch_weights, "download pretrained weights, checked against their md5",
                 config=True, out=True)
    s.add_argument("--name", required=True, help="which weights: inception (torch-fidelity's Inception-v3, for "
                   "FID) or lpips (torchvision's VGG16, for LPIPS)")


def _lsgm_commands(sub) -> None:
    s = _command(sub, "lsgm-evaluate", cmd_lsgm_evaluate,
                 "LSGM: a run's test NELBO (ODE on the latent) beside its backbone's, and its ODE samples",
                 config=True, out=True, data=True, threads=True)
    s.add_argument("--model", required=True, help="an LSGM model.pt (stage 1 or 2)")
    s.add_argument("--samples", required=True, help="the samples file (.npz) to write")

    s = _command(sub, "lsgm-speed", cmd_lsgm_speed, "LSGM Fig. 4: ODE samples per tolerance beside a data-space model",
                 config=True, threads=True)
    s.add_argument("--model", required=True, help="the LSGM model.pt")
    s.add_argument("--score", required=True, help="the data-space score model.pt (DRL's train_score)")
    s.add_argument("--out", required=True, nargs="+", help="samples files: LSGM per tolerance, data-space ODE per "
                   "tolerance, then data-space PC")


def _scorevae_commands(sub) -> None:
    s = _command(sub, "reconstruct", cmd_reconstruct,
                 "ScoreVAE Tables 1-6: reconstructions of the first test images and their L2, LPIPS or feature distance",
                 config=True, data=True, threads=True, device=True)
    _models(s, "model.pt files of the scorevae experiment", out="reconstruction files (.npz)")
    s.add_argument("--classifier", help="the domain classifier (a distance on its features; LPIPS needs VGG weights)")
    s.add_argument("--scores", required=True, help="the CSV of every file's distances")


def _command(sub, name: str, func, help: str, **common: bool) -> argparse.ArgumentParser:
    """A subcommand running `func`, with the common arguments named in `common` (see `_common`)."""
    s = sub.add_parser(name, help=help)
    _common(s, **common)
    s.set_defaults(func=func)
    return s


def _common(s, config=False, out=False, data=False, threads=False, device=False) -> None:
    if config:
        s.add_argument("--config", required=True, help="a profile or resolved parameter file")
    if out:
        s.add_argument("--out", required=True)
    if data:
        s.add_argument("--data", required=True, help="the prepared dataset's folder")
    if threads:
        s.add_argument("--threads", type=int, default=0, help="torch's CPU threads (0: the profile's train.threads for training and pretraining, torch's default otherwise)")
    if device:
        s.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where the model samples")


def _models(s, what: str, **lists: str) -> None:
    """`--model` with one or more models, and the lists that hold one entry per model, in the same order."""
    s.add_argument("--model", required=True, nargs="+", help=f"one or more {what}")
    for name, text in lists.items():
        s.add_argument(f"--{name}", required=True, nargs="+", help=f"{text}, in the order of --model")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (cfgmod.ConfigError, FileNotFoundError, ValueError, RuntimeError, FloatingPointError) as exc:
        print(f"diffrep {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
