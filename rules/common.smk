# Shared helpers: the resolved parameters and the names of every run they imply.
from diffrep import config as diffrep_config

CFG = diffrep_config.resolve(config, "snakemake config")
RESOLVED = f"{CFG.results_root}/{CFG.name}/config.yaml"
diffrep_config.dump(CFG, RESOLVED)

DATA = CFG.data_root
MODELS = f"{CFG.models_root}/{CFG.name}"
RESULTS = f"{CFG.results_root}/{CFG.name}"
LOGS = f"logs/{CFG.name}"
BENCH = f"benchmarks/{CFG.name}"
GPU = 1 if CFG.train.device == "cuda" else 0
ENV = "../envs/diffrep.yaml"
EX = CFG.experiments


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
    figs += [f"reports/figures/{d}_silhouette_vs_t.png" for d in EX.sweep.datasets]
    figs += [f"reports/figures/{d}_fewshot.png" for d in EX.fewshot.datasets]
    return figs
