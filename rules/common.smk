# Shared helpers: the resolved parameters and the names of every run they imply.
import json
import os
import re

from diffrep import config as diffrep_config

CFG = diffrep_config.resolve(config, "snakemake config")
RESOLVED = f"{CFG.results_root}/{CFG.name}/config.yaml"

DATA = CFG.data_root
MODELS = f"{CFG.models_root}/{CFG.name}"
RESULTS = f"{CFG.results_root}/{CFG.name}"
LOGS = f"logs/{CFG.name}"
BENCH = f"benchmarks/{CFG.name}"
GPU = 1 if CFG.train.device == "cuda" else 0
ENV = "../envs/diffrep.yaml"
EX = CFG.experiments
INCEPTION = [CFG.fidelity.inception_weights] if CFG.fidelity.inception_weights else []
if INCEPTION and not os.path.isfile(INCEPTION[0]):
    raise diffrep_config.ConfigError(
        f"fidelity.inception_weights: {INCEPTION[0]!r} is not a file; put torch-fidelity's Inception-v3 weights there "
        "or leave it empty to score with the domain classifier's features"
    )
for _name in EX.semisup.datasets:  # MiniImageNet is read from the user's folder, not downloaded
    if CFG.datasets[_name].source == "folder" and not os.path.isdir(CFG.datasets[_name].path):
        raise diffrep_config.ConfigError(
            f"datasets.{_name}.path: {CFG.datasets[_name].path!r} is not a folder; put the dataset there "
            "(train/ and test/, one sub-folder per class) or drop it from experiments.semisup.datasets"
        )
# written once every check has passed, so that a refused configuration leaves nothing behind
diffrep_config.dump(CFG, RESOLVED)


def settings(*keys):
    """The resolved parameters a job depends on, as a rule param, so that Snakemake reruns the job when they change."""
    resolved, out = diffrep_config.to_dict(CFG), {}
    for key in keys:
        value = resolved
        for part in key.split("."):
            value = value[part]
        out[key] = value
    return json.dumps(out, sort_keys=True)


TRAINING = ("sde", "train", "penalties", "datasets")


def latent_runs():
    phase1 = [f"latent-{m}-{s}" for m in ("drl", "vdrl") for s in ("uniform_t", "uniform_sigma")]
    return phase1 + [f"latent-{m}-uniform_sigma-frozen" for m in ("drl", "vdrl")]


def sweep_runs():
    return [f"sweep-t{t}-s{s}" for t in EX.sweep.t for s in EX.sweep.seeds]


def fewshot_runs():
    return [f"fewshot-{m}" for m in ("drl", "vdrl", "ae", "vae")]


def silhouette_runs(dataset):
    runs = latent_runs() if dataset in EX.latent.datasets else []
    return runs + (sweep_runs() if dataset in EX.sweep.datasets else [])


def codes(dataset, runs):
    return [f"{RESULTS}/{dataset}/codes/{r}.npz" for r in runs]


def report_figures():
    figs = []
    for d in EX.latent.datasets:
        figs += [f"reports/figures/{d}_{r}.png" for r in latent_runs()]
        figs += [f"reports/figures/{d}_{f}.png" for f in ("code_grid_samples", "denoise_other_code")]
    figs += [f"reports/figures/{d}_silhouette_vs_t.png" for d in EX.sweep.datasets]
    figs += [f"reports/figures/{d}_fewshot.png" for d in EX.fewshot.datasets]
    figs += [f"reports/figures/{d}_code_dim_samples.png" for d in EX.codedim.datasets]
    figs += [f"reports/figures/{d}_tinit_samples.png" for d in EX.generation.datasets]
    figs += [f"reports/figures/{d}_{f}.png" for d in EX.adversarial.datasets
             for f in ("adversarial_samples", "adversary_alpha", "t_density_loss")]
    return figs


def generation_runs():
    return [f"score-tinit{t}-{p}" for t in EX.generation.t_init for p in EX.generation.priors]


def adversarial_runs():
    return [f"adversarial-p{p}" for p in EX.adversarial.p_kl]


def sample_runs(dataset):
    runs = generation_runs() if dataset in EX.generation.datasets else []
    return runs + (adversarial_runs() if dataset in EX.adversarial.datasets else [])


def fidelity_datasets():
    return sorted(set(EX.generation.datasets) | set(EX.adversarial.datasets))


def sample_model(dataset, run):
    """The model a sample set comes from: the plain score model for Table 3, an adversarial one for Table 2."""
    return f"{MODELS}/{dataset}/{'score' if run.startswith('score-') else run}/model.pt"


def sample_args(run):
    """`diffrep sample` arguments of a sample-set name (score-tinit<t>-<prior> or adversarial-p<p_kl>)."""
    if run.startswith("score-"):
        t_init, prior = re.fullmatch(r"score-tinit([0-9.]+)-(.+)", run).groups()
        return f"--t-init {t_init} --prior {prior} --n {EX.generation.samples} --seed {EX.generation.seed}"
    return f"--n {EX.adversarial.samples} --seed {EX.adversarial.seed}"


def semisup_results():
    """One LaplaceNet table per dataset and pretraining (none: no pretraining and the supervised-only baseline)."""
    return [f"{RESULTS}/{d}/semisup/{p}.csv" for d in EX.semisup.datasets for p in ["none", *EX.semisup.pretrainings]]
