"""Every run a profile implies: one description from which the Snakemake rules and `dvc.yaml` both derive.

A `Family` is one kind of job (one Snakemake rule, one family of DVC stages): its output pattern, the parameters its
jobs depend on, its resources. A `Job` is one run: dataset, run name, method, the CLI command with its flags, inputs,
outputs. The families are listed in `FAMILIES`; a new experiment or method is one builder there (and its plug-in
in `diffrep.methods`), and both workflows pick it up.

Why `dvc.yaml` is generated (`diffrep plan PROFILE`, with a test that the committed file equals the generated one)
rather than written with DVC's `foreach`/`matrix` over lists in `params.yaml`: DVC interpolates scalars only, so a stage
cannot take a list of dependencies from its item, and the jobs that serve many models at once (one `encode` per
experiment, one `drl-samples` per dataset) would need one stage per model there and one job per experiment here:
the two workflows would plan different work and spell every path twice. Generated, both take the same jobs from
this module and `params.yaml` stays the plain resolved profile that the closed schema validates. The price: a change
to a list that adds or removes runs (`experiments.sweep.t`, ...) needs `diffrep plan` again before `dvc repro`;
`dvc exp run -S key=value` on every other parameter reruns the stages that depend on it.

This module imports only `config` and `weights` (both without torch): it names runs, paths and CLI flags, and never
builds a model.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from diffrep.config import Config, lsgm_method
from diffrep.weights import WEIGHTS, local_path

TRAINING = ("sde", "train", "penalties", "datasets")
# what `diffrep prepare` reads of a dataset's block: a change to any of them makes a new split
SPLIT_KEYS = ("source", "test_fraction", "split_seed", "url", "files", "path")


@dataclass(frozen=True)
class Resources:
    """What a job asks of the scheduler: CPU threads, memory (MB), time (minutes), GPUs."""

    threads: int = 1
    mem_mb: int = 4000
    runtime: int = 60
    gpu: int = 0


@dataclass(frozen=True)
class Job:
    """One run: what it reads and writes, and the `diffrep` command that makes it."""

    family: str
    dataset: str  # "" for the report, which spans every dataset
    run: str  # the run's name within its dataset; the family's name where one job serves a whole dataset
    method: str
    command: str  # the `diffrep` subcommand
    settings: dict[str, object]  # its flags; True: a flag without value, a list: one value per model
    inputs: dict[str, list[str]]
    outputs: dict[str, list[str]]
    params: tuple[str, ...]  # the parameter keys the job depends on (dotted)
    resources: Resources
    threaded: bool = True  # the command takes --threads

    def cmd(self, threads: int | None = None) -> str:
        """The command line; --threads from the scheduler's grant when given, else from the plan's resources."""
        words = ["diffrep", self.command]
        for flag, value in self.settings.items():
            values = value if isinstance(value, list) else [] if value is None or value is False else [value]
            if value is True:
                words.append(flag)
            elif values:  # an empty list: a flag the job does not need (no --init, no --model)
                words += [flag, *map(str, values)]
        if self.threaded:
            words += ["--threads", str(self.resources.threads if threads is None else threads)]
        return " ".join(words)


Outputs = Callable[[str, str], dict[str, list[str]]]


@dataclass(frozen=True)
class Family:
    """Jobs of one kind whose outputs follow one pattern in {dataset} and, where `per_run`, {run}."""

    name: str
    outputs: Outputs  # (dataset, run) -> the job's outputs by name
    per_run: bool
    jobs: list[Job]
    local: bool = False  # run where Snakemake runs (downloads, the report), not on a cluster node
    metrics: tuple[str, ...] = ()  # outputs that hold the results' numbers (DVC metrics)
    plots: tuple[str, ...] = ()  # outputs that DVC plots (CSV series)
    committed: bool = False  # outputs kept in git, not in DVC's cache (the report)
    persist: bool = False  # outputs DVC leaves in place when it reruns the job (weights a user placed by hand)
    shown: dict[str, str] = field(default_factory=dict)  # output -> its category in `snakemake --report`

    @property
    def wildcards(self) -> tuple[str, ...]:
        return (("dataset",) if self.jobs[0].dataset else ()) + (("run",) if self.per_run else ())

    def pattern(self) -> dict[str, list[str]]:
        """The outputs with {dataset} and {run} in place of the values that vary between jobs."""
        first = self.jobs[0]
        return self.outputs("{dataset}" if first.dataset else "", "{run}" if self.per_run else first.run)

    def job(self, dataset: str = "", run: str = "") -> Job:
        """The job of a dataset and run (the run is ignored where one job serves a whole dataset)."""
        return next(j for j in self.jobs if j.dataset == dataset and (j.run == run or not self.per_run))


@dataclass(frozen=True)
class Run:
    """One training: its name (the model's folder), method, and the flags of `diffrep train` or `pretrain`."""

    name: str
    method: str
    flags: dict[str, object]
    init: str = ""  # the run whose model.pt it starts from


class Plan:
    """The families of jobs of one resolved profile; commands read the parameters from `config`."""

    def __init__(self, cfg: Config, config: str):
        self.cfg, self.config = cfg, config
        self.ex, self.gpu = cfg.experiments, int(cfg.train.device == "cuda")
        self.benchmarks = f"benchmarks/{cfg.name}"  # Snakemake's benchmark file of every job (rules/jobs.smk)
        self.families = [f for f in (build(self) for build in FAMILIES) if f.jobs]

    def __iter__(self) -> Iterator[Family]:
        return iter(self.families)

    def __getitem__(self, name: str) -> Family:
        return next(f for f in self.families if f.name == name)

    def data(self, dataset: str, split: str = "") -> str:
        return "/".join(p for p in (self.cfg.data_root, dataset, split) if p)

    def run_dir(self, dataset: str, run: str) -> str:
        return f"{self.cfg.models_root}/{self.cfg.name}/{dataset}/{run}"

    def model(self, dataset: str, run: str, file: str = "model.pt") -> str:
        return f"{self.run_dir(dataset, run)}/{file}"

    def result(self, dataset: str, *parts: str) -> str:
        return "/".join((self.cfg.results_root, self.cfg.name, dataset, *parts))

    def torch_job(self, mem_mb: int = 4000, runtime: int = 60, gpu: bool = True) -> Resources:
        """Resources of a job that runs torch: the profile's threads, and a GPU where the profile trains on one."""
        return Resources(self.cfg.train.threads, mem_mb, runtime, self.gpu if gpu else 0)

    def datasets(self, *experiments: str) -> list[str]:
        """The datasets of some experiments, each once, in the order they are first named."""
        return list(dict.fromkeys(d for e in experiments for d in getattr(self.ex, e).datasets))


# --- training: one job per dataset and run ----------------------------------------------------------------------


def training(name: str, experiment: str, runs: Callable[[Plan], list[Run]], *, per_run: bool = True,
             command: str = "train", method_flag: str = "--method", files: tuple[str, ...] = ("model.pt",),
             runtime: int = 240, datasets: Callable[[Plan], list[str]] | None = None) -> Callable[[Plan], Family]:
    """A family of trainings of one experiment (`diffrep train`, or `diffrep pretrain` for LaplaceNet's WRN), on the
    experiment's datasets or on those `datasets` names."""

    def build(plan: Plan) -> Family:
        count = getattr(getattr(plan.ex, experiment), "snapshots", 0)

        def outputs(dataset: str, run: str) -> dict[str, list[str]]:
            kept = {"snapshots": snapshots(plan, dataset, run, count)} if count else {}
            return {**{f.split(".")[0]: [plan.model(dataset, run, f)] for f in files}, **kept}

        jobs = []
        for dataset in datasets(plan) if datasets else getattr(plan.ex, experiment).datasets:
            for run in runs(plan):
                init = [plan.model(dataset, run.init)] if run.init else []
                settings = {"--config": plan.config, "--data": plan.data(dataset), "--dataset": dataset,
                            "--out": plan.run_dir(dataset, run.name), method_flag: run.method, **run.flags,
                            "--init": init}
                jobs.append(Job(name, dataset, run.name, run.method, command, settings,
                                {"data": [plan.data(dataset, "train.npz")], "init": init},
                                outputs(dataset, run.name), (*TRAINING, f"experiments.{experiment}"),
                                plan.torch_job(runtime=runtime)))
        return Family(name, outputs, per_run, jobs)

    return build


def snapshots(plan: Plan, dataset: str, run: str, count: int) -> list[str]:
    """A run's EMA snapshots along training (methods.run.snapshot_path names them by index)."""
    return [plan.model(dataset, run, f"snapshots/{i}.pt") for i in range(count)]


def latent_runs(plan: Plan) -> list[Run]:
    """DRL Fig. 2, 3, 5, 7: DRL and VDRL with t uniform or sigma uniform (phase 1)."""
    return [Run(f"latent-{m}-{s}", m, {"--experiment": "latent", "--scheme": s})
            for m in ("drl", "vdrl") for s in ("uniform_t", "uniform_sigma")]


def frozen_runs(plan: Plan) -> list[Run]:
    """DRL Fig. 5, 7: the score model retrained with t uniform on a frozen sigma-uniform encoder (phase 2)."""
    return [Run(f"latent-{m}-uniform_sigma-frozen", m,
                {"--experiment": "latent", "--scheme": "uniform_t", "--freeze-encoder": True},
                init=f"latent-{m}-uniform_sigma") for m in ("drl", "vdrl")]


def sweep_runs(plan: Plan) -> list[Run]:
    """DRL Fig. 11: DRL trained at one fixed t, per t and seed."""
    sweep = plan.ex.sweep
    return [Run(f"sweep-t{t}-s{s}", "drl", {"--experiment": "sweep", "--scheme": "fixed", "--t": t, "--seed": s})
            for t in sweep.t for s in sweep.seeds]


def fewshot_runs(plan: Plan) -> list[Run]:
    """DRL Fig. 12: DRL, VDRL and the AE, VAE baselines with 8-d codes."""
    return [Run(f"fewshot-{m}", m, {"--experiment": "fewshot"}) for m in ("drl", "vdrl", "ae", "vae")]


def codedim_runs(plan: Plan) -> list[Run]:
    """DRL Fig. 10: DRL per code dimension."""
    return [Run(f"codedim-d{k}", "drl", {"--experiment": "codedim", "--code-dim": k}) for k in plan.ex.codedim.code_dims]


def static_vdrl_runs(plan: Plan) -> list[Run]:
    """The representation table's VDRL static code (E(x0), the few-shot models' dimension), trained as Fig. 10's DRL
    models are; DRL's static code is the Fig. 10 model of that dimension."""
    k = plan.ex.fewshot.code_dim
    return [Run(f"codedim-vdrl-d{k}", "vdrl", {"--experiment": "codedim", "--code-dim": k})]


def static_code_datasets(plan: Plan) -> list[str]:
    """The datasets of the representation table that Fig. 10 trains static codes on."""
    return [d for d in plan.ex.codedim.datasets if d in plan.ex.representations.datasets]


def score_runs(plan: Plan) -> list[Run]:
    """DRL Table 3: the unconditional score model."""
    return [Run("score", "score", {"--experiment": "generation"})]


def adversarial_runs(plan: Plan) -> list[Run]:
    """DRL Table 2, A.7: adversarial lambda per p_KL, from the score model."""
    return [Run(f"adversarial-p{p}", "score", {"--experiment": "adversarial", "--p-kl": p}, init="score")
            for p in plan.ex.adversarial.p_kl]


def pretrain_runs(plan: Plan) -> list[Run]:
    """DRL Tables 1, 4-7: LaplaceNet's WRN pretrained per pretraining."""
    return [Run(f"semisup-{p}", p, {}) for p in plan.ex.semisup.pretrainings]


# --- data, encoding, sampling and scores -------------------------------------------------------------------------


def prepare_data(plan: Plan) -> Family:
    """Each dataset prepared once into train/test files with a recorded split."""
    def outputs(dataset: str, run: str) -> dict[str, list[str]]:
        return {s: [plan.data(dataset, f"{s}.{ext}")] for s, ext in (("train", "npz"), ("test", "npz"), ("split", "json"))}

    used = list(dict.fromkeys([*plan.datasets("latent", "sweep", "fewshot", "codedim", "generation", "adversarial",
                                              "semisup", "lsgm", "scorevae"), *plan.ex.lsgm.binarized]))
    jobs = [Job("prepare_data", d, "", "", "prepare", {"--config": plan.config, "--dataset": d, "--out": plan.data(d)},
                {}, outputs(d, ""), tuple(f"datasets.{d}.{k}" for k in SPLIT_KEYS), Resources(), threaded=False)
            for d in used]
    return Family("prepare_data", outputs, False, jobs, local=True)


def fetching(name: str) -> Callable[[Plan], Family]:
    """Pretrained weights the evaluation reads (Inception for FID), fetched like the datasets; none where the profile
    names neither a path nor a URL for them."""

    def build(plan: Plan) -> Family:
        path = local_path(plan.cfg, name)

        def outputs(dataset: str, run: str) -> dict[str, list[str]]:
            return {"weights": [path]}

        keys = tuple(f"{WEIGHTS[name]}.{name}_{key}" for key in ("url", "md5"))
        jobs = [Job(f"fetch_{name}", "", name, "", "fetch-weights",
                    {"--config": plan.config, "--name": name, "--out": path}, {}, outputs("", name), keys,
                    Resources(runtime=30), threaded=False)] if path else []
        return Family(f"fetch_{name}", outputs, False, jobs, local=True, persist=True)

    return build


def encoding(experiment: str, runs: Callable[[Plan], list[Run]]) -> Callable[[Plan], Family]:
    """One job per experiment and dataset encodes all of its models: the start-up (~3 s of imports) is paid once."""

    def build(plan: Plan) -> Family:
        names = [r.name for r in runs(plan)]

        def outputs(dataset: str, run: str) -> dict[str, list[str]]:
            return {"codes": [plan.result(dataset, "codes", f"{r}.npz") for r in names]}

        jobs = []
        for d in getattr(plan.ex, experiment).datasets:
            models, out = [plan.model(d, r) for r in names], outputs(d, "")
            jobs.append(Job(f"encode_{experiment}", d, "", "", "encode",
                            {"--model": models, "--data": plan.data(d), "--out": out["codes"]},
                            {"models": models, "train": [plan.data(d, "train.npz")], "test": [plan.data(d, "test.npz")]},
                            out, (), plan.torch_job(gpu=False)))
        return Family(f"encode_{experiment}", outputs, False, jobs)

    return build


def per_dataset(name: str, datasets: list[str], outputs: Outputs, make, **family) -> Family:
    """A family with one job per dataset; `make(dataset, outputs)` gives the rest of the Job's fields."""
    return Family(name, outputs, False, [Job(name, d, name, *make(d, outputs(d, name))) for d in datasets], **family)


def train_classifier(plan: Plan) -> Family:
    """The domain classifier whose penultimate features score FID/IS offline."""
    def outputs(dataset: str, run: str) -> dict[str, list[str]]:
        return {"model": [plan.model(dataset, "classifier")], "accuracy": [plan.model(dataset, "classifier", "accuracy.json")]}

    def make(d, out):
        return ("classifier", "train-classifier", {"--config": plan.config, "--data": plan.data(d), "--out": out["model"][0]},
                {"train": [plan.data(d, "train.npz")], "test": [plan.data(d, "test.npz")]}, out, ("fidelity",),
                plan.torch_job(runtime=120))

    return per_dataset("train_classifier", plan.datasets("generation", "adversarial", "lsgm", "scorevae"), outputs, make,
                       metrics=("accuracy",))


def sample_sets(plan: Plan, dataset: str) -> list[tuple[str, str, dict[str, object]]]:
    """DRL Table 3 (the score model from t_init, per prior) and Table 2 (each adversarial model): name, model, flags."""
    gen, adv, sets = plan.ex.generation, plan.ex.adversarial, []
    if dataset in gen.datasets:
        sets += [(f"score-tinit{t}-{p}", "score", {"--t-init": t, "--prior": p, "--n": gen.samples, "--seed": gen.seed})
                 for t in gen.t_init for p in gen.priors]
    if dataset in adv.datasets:
        sets += [(r.name, r.name, {"--n": adv.samples, "--seed": adv.seed}) for r in adversarial_runs(plan)]
    return sets


def sample(plan: Plan) -> Family:
    def outputs(dataset: str, run: str) -> dict[str, list[str]]:
        return {"samples": [plan.result(dataset, "samples", f"{run}.npz")]}

    jobs = [Job("sample", d, name, model, "sample",
                {"--config": plan.config, "--model": plan.model(d, model), **flags, "--out": outputs(d, name)["samples"]},
                {"model": [plan.model(d, model)]}, outputs(d, name),
                ("sampling", "experiments.generation", "experiments.adversarial"), plan.torch_job(runtime=240))
            for d in plan.datasets("generation", "adversarial") for name, model, flags in sample_sets(plan, d)]
    return Family("sample", outputs, True, jobs)


def fidelity_of(name: str, datasets: Callable[[Plan], list[str]], samples: Callable[[Plan, str], list[str]],
                scores: Callable[[Plan, str], str]) -> Callable[[Plan], Family]:
    """FID and IS of every sample set of a dataset, with the features the profile names: one job per dataset."""

    def build(plan: Plan) -> Family:
        def outputs(dataset: str, run: str) -> dict[str, list[str]]:
            return {"scores": [scores(plan, dataset)]}

        inception = made(plan, fetching("inception"))

        def make(d, out):
            files, classifier = samples(plan, d), plan.model(d, "classifier")
            return ("", "fidelity", {"--config": plan.config, "--data": plan.data(d), "--classifier": classifier,
                                     "--samples": files, "--out": out["scores"][0]},
                    {"samples": files, "classifier": [classifier], "train": [plan.data(d, "train.npz")],
                     "inception": inception}, out, ("fidelity",), plan.torch_job(mem_mb=8000, runtime=120))

        return per_dataset(name, datasets(plan), outputs, make)

    return build


fidelity = fidelity_of("fidelity", lambda plan: plan.datasets("generation", "adversarial"),
                       lambda plan, d: [plan.result(d, "samples", f"{name}.npz") for name, _, _ in sample_sets(plan, d)],
                       lambda plan, d: plan.result(d, "fidelity.csv"))


def loss_per_t(plan: Plan) -> Family:
    """DRL Fig. 13, 14: test loss per t and the adversary's alpha over training, per adversarial model."""
    def outputs(dataset: str, run: str) -> dict[str, list[str]]:
        return {"losses": [plan.result(dataset, "loss_per_t", f"{run}.csv")],
                "alpha": [plan.result(dataset, "alpha", f"{run}.csv")]}

    jobs = []
    for d in plan.ex.adversarial.datasets:
        for run in adversarial_runs(plan):
            out, model = outputs(d, run.name), plan.model(d, run.name)
            jobs.append(Job("loss_per_t", d, run.name, "score", "loss-per-t",
                            {"--model": model, "--data": plan.data(d), "--out": out["losses"], "--alpha-out": out["alpha"]},
                            {"model": [model], "metrics": [plan.model(d, run.name, "metrics.csv")],
                             "test": [plan.data(d, "test.npz")]}, out, (), Resources(), threaded=False))
    return Family("loss_per_t", outputs, True, jobs, plots=("losses", "alpha"))


def device(plan: Plan) -> str:
    """Where a sampling job runs: on the GPU the scheduler reserved for it, else on the CPU."""
    return "cuda" if plan.gpu else "cpu"


def drl_samples(plan: Plan) -> Family:
    """DRL Fig. 8, 9: samples over a grid of 2-d codes and denoising with another image's code, per latent model."""
    names = [r.name for r in latent_models(plan)]

    def outputs(dataset: str, run: str) -> dict[str, list[str]]:
        return {"samples": [plan.result(dataset, "drl_samples", f"{r}.npz") for r in names]}

    def make(d, out):
        models, codes = [plan.model(d, r) for r in names], [plan.result(d, "codes", f"{r}.npz") for r in names]
        return ("", "drl-samples", {"--config": plan.config, "--model": models, "--codes": codes,
                                    "--data": plan.data(d), "--device": device(plan), "--out": out["samples"]},
                {"models": models, "codes": codes, "test": [plan.data(d, "test.npz")]}, out,
                ("sampling", "experiments.latent"), plan.torch_job())

    return per_dataset("drl_samples", plan.ex.latent.datasets, outputs, make)


def code_dim_samples(plan: Plan) -> Family:
    """DRL Fig. 10: samples for one code as the code dimension grows."""
    names = [r.name for r in codedim_runs(plan)]

    def outputs(dataset: str, run: str) -> dict[str, list[str]]:
        return {"samples": [plan.result(dataset, "codedim", f"{r.removeprefix('codedim-')}.npz") for r in names]}

    def make(d, out):
        models = [plan.model(d, r) for r in names]
        return ("", "code-dim-samples", {"--config": plan.config, "--model": models, "--data": plan.data(d),
                                         "--device": device(plan), "--out": out["samples"]},
                {"models": models, "test": [plan.data(d, "test.npz")]}, out, ("sampling", "experiments.codedim"),
                plan.torch_job())

    return per_dataset("code_dim_samples", plan.ex.codedim.datasets, outputs, make)


def silhouette(plan: Plan) -> Family:
    """DRL Fig. 2, 11: silhouette scores of the test codes of the latent and sweep models."""
    def outputs(dataset: str, run: str) -> dict[str, list[str]]:
        return {"scores": [plan.result(dataset, "silhouette.csv")]}

    def make(d, out):
        runs = [r.name for e, rs in (("latent", latent_models(plan)), ("sweep", sweep_runs(plan)))
                if d in getattr(plan.ex, e).datasets for r in rs]
        return ("", "silhouette", {"--codes-dir": plan.result(d, "codes"), "--out": out["scores"][0]},
                {"codes": [plan.result(d, "codes", f"{r}.npz") for r in runs]}, out, (), Resources(mem_mb=2000, runtime=30),
                False)

    return per_dataset("silhouette", plan.datasets("latent", "sweep"), outputs, make)


def fewshot(plan: Plan) -> Family:
    """DRL Fig. 12: few-shot SVM accuracy on the codes of the few-shot models."""
    def outputs(dataset: str, run: str) -> dict[str, list[str]]:
        return {"scores": [plan.result(dataset, "fewshot.csv")]}

    def make(d, out):
        codes = [plan.result(d, "codes", f"{r.name}.npz") for r in fewshot_runs(plan)]
        return ("", "fewshot", {"--config": plan.config, "--codes-dir": plan.result(d, "codes"), "--out": out["scores"][0]},
                {"codes": codes}, out, ("experiments.fewshot",), Resources(mem_mb=2000, runtime=30), False)

    return per_dataset("fewshot", plan.ex.fewshot.datasets, outputs, make)


def lsgm_curve_runs(plan: Plan, dataset: str) -> list[Run]:
    """The LSGM runs Tables 2, 4, 5 compare: the main cell and the backbone trained alone, gray-level and binarized."""
    s = plan.ex.lsgm
    compared = {lsgm_method(s.cell, binary=b) for b in (False, True)} | {lsgm_method(binary=b) for b in (False, True)}
    return [r for r in lsgm_evaluated(plan, dataset) if r.name in compared]


def on_its_datasets(experiment: str, runs: Callable[[Plan], list[Run]]) -> Callable[[Plan, str], list[Run]]:
    """An experiment's runs on each of its datasets, none elsewhere."""
    return lambda plan, dataset: runs(plan) if dataset in getattr(plan.ex, experiment).datasets else []


CURVE_RUNS: dict[str, Callable[[Plan, str], list[Run]]] = {
    **{e: on_its_datasets(e, runs) for e, runs in (
        ("latent", latent_runs), ("sweep", sweep_runs), ("fewshot", fewshot_runs), ("codedim", codedim_runs),
        ("generation", score_runs), ("adversarial", adversarial_runs), ("semisup", pretrain_runs))},
    "lsgm": lsgm_curve_runs}
FID_CURVES = ("generation", "adversarial")  # their curves sample the models and score FID


def curve_experiments(plan: Plan, dataset: str) -> list[str]:
    """The experiments of a dataset that keep snapshots: each has a convergence curve (the latent experiment's
    phase 1 only: phase 2 keeps its encoder, and codes, frozen)."""
    return [e for e in CURVE_RUNS if getattr(plan.ex, e).snapshots and CURVE_RUNS[e](plan, dataset)]


def curve_datasets(plan: Plan) -> list[str]:
    """The datasets with a convergence curve: those with an experiment that keeps snapshots."""
    return [d for d in plan.cfg.datasets if curve_experiments(plan, d)]


def curves(plan: Plan) -> Family:
    """Each verdict's metric on every snapshot and final model of its experiment, so that the report can say whether
    the metric has settled at the profile's budget; one job and one table per dataset and experiment (each runs as
    soon as its experiment's trainings are done)."""
    def outputs(dataset: str, run: str) -> dict[str, list[str]]:
        return {"curves": [plan.result(dataset, "curves", f"{run}.csv")]}

    jobs = []
    for d in curve_datasets(plan):
        for e in curve_experiments(plan, d):
            out, count = outputs(d, e), getattr(plan.ex, e).snapshots
            models = [p for r in CURVE_RUNS[e](plan, d) for p in (*snapshots(plan, d, r.name, count), plan.model(d, r.name))]
            classifier = [plan.model(d, "classifier")] if e in FID_CURVES else []
            jobs.append(Job("curves", d, e, "", "curves",
                            {"--config": plan.config, "--data": plan.data(d), "--model": models,
                             "--classifier": classifier, "--out": out["curves"][0]},
                            {"models": models, "classifier": classifier, "train": [plan.data(d, "train.npz")],
                             "test": [plan.data(d, "test.npz")],
                             "inception": made(plan, fetching("inception")) if classifier else []},
                            out, (f"experiments.{e}", "sampling", "fidelity", "convergence"),
                            plan.torch_job(gpu=False, runtime=120)))
    return Family("curves", outputs, True, jobs)


def laplacenet(plan: Plan) -> Family:
    """DRL Tables 1, 4-7: LaplaceNet per pretraining (none: no pretraining and the supervised-only baseline); one job
    runs all of its settings, label counts and seeds."""
    def outputs(dataset: str, run: str) -> dict[str, list[str]]:
        return {"scores": [plan.result(dataset, "semisup", f"{run}.csv")]}

    jobs = []
    for d in plan.ex.semisup.datasets:
        for p in ["none", *plan.ex.semisup.pretrainings]:
            model = [] if p == "none" else [plan.model(d, f"semisup-{p}")]
            jobs.append(Job("laplacenet", d, p, p, "laplacenet",
                            {"--config": plan.config, "--data": plan.data(d), "--dataset": d, "--pretraining": p,
                             "--model": model, "--out": outputs(d, p)["scores"]},
                            {"train": [plan.data(d, "train.npz")], "test": [plan.data(d, "test.npz")], "model": model},
                            outputs(d, p), (*TRAINING, "experiments.semisup"), plan.torch_job(runtime=480)))
    return Family("laplacenet", outputs, True, jobs)


# --- LSGM: stage 1 (the VAE), stage 2 per Table 6 cell and sec. 5.2 variant, NELBO and samples, Fig. 4, FID --------


def lsgm_stage1(binary: bool) -> Callable[[Plan], list[Run]]:
    """LSGM stage 1: the VAE backbone with a N(0, I) prior, on gray-level or dynamically binarized images."""
    return lambda plan: [Run(lsgm_method(binary=binary), lsgm_method(binary=binary), {"--experiment": "lsgm"})]


def lsgm_runs(plan: Plan) -> list[Run]:
    """LSGM stage 2 on gray levels: the main cell and the other Table 6 cells, the main cell with a frozen VAE and
    without the mixed score (sec. 5.2)."""
    s, init, flags = plan.ex.lsgm, lsgm_method(), {"--experiment": "lsgm"}
    cells = [Run(lsgm_method(c), lsgm_method(c), flags, init) for c in dict.fromkeys([s.cell, *s.cells])]
    frozen = Run(f"{lsgm_method(s.cell)}-frozen", lsgm_method(s.cell), {**flags, "--freeze-encoder": True}, init)
    nomix = lsgm_method(s.cell, mixed=False)
    return [*cells, frozen, Run(nomix, nomix, flags, init)] if s.ablations else cells


def lsgm_binary_runs(plan: Plan) -> list[Run]:
    """LSGM stage 2 on binarized images (Tables 4, 5): the main cell."""
    name = lsgm_method(plan.ex.lsgm.cell, binary=True)
    return [Run(name, name, {"--experiment": "lsgm"}, lsgm_method(binary=True))]


def lsgm_evaluated(plan: Plan, dataset: str) -> list[Run]:
    """Every LSGM run of a dataset (both stages): gray-level runs, then binarized ones."""
    s, runs = plan.ex.lsgm, []
    if dataset in s.datasets:
        runs += lsgm_stage1(False)(plan) + lsgm_runs(plan)
    if dataset in s.binarized:
        runs += lsgm_stage1(True)(plan) + lsgm_binary_runs(plan)
    return runs


def lsgm_evaluate(plan: Plan) -> Family:
    """LSGM eq. 6 on the test split (ODE likelihood of the latent; the backbone's NELBO beside it) and ODE samples."""
    def outputs(dataset: str, run: str) -> dict[str, list[str]]:
        return {"nelbo": [plan.result(dataset, "lsgm", "nelbo", f"{run}.json")],
                "samples": [plan.result(dataset, "lsgm", "samples", f"{run}.npz")]}

    jobs = []
    for d in dict.fromkeys([*plan.ex.lsgm.datasets, *plan.ex.lsgm.binarized]):
        for run in lsgm_evaluated(plan, d):
            out, model = outputs(d, run.name), plan.model(d, run.name)
            divergence = [plan.model(d, run.name, "divergence.json")] if run.init else []
            jobs.append(Job("lsgm_evaluate", d, run.name, run.method, "lsgm-evaluate",
                            {"--config": plan.config, "--data": plan.data(d), "--model": model, "--out": out["nelbo"],
                             "--samples": out["samples"][0]},
                            {"model": [model], "divergence": divergence, "test": [plan.data(d, "test.npz")]}, out,
                            ("experiments.lsgm",), plan.torch_job(runtime=120, gpu=False)))
    return Family("lsgm_evaluate", outputs, True, jobs, metrics=("nelbo",))


def lsgm_speed_sets(plan: Plan) -> list[str]:
    """Fig. 4's sample sets: LSGM's ODE and the data-space ODE per tolerance, then the data-space PC sampler (the order
    `diffrep lsgm-speed` writes them in)."""
    tolerances = plan.ex.lsgm.tolerances
    return ([f"speed-lsgm-tol{t:g}" for t in tolerances] + [f"speed-sgm-ode-tol{t:g}" for t in tolerances]
            + ["speed-sgm-pc"])


def lsgm_speed_datasets(plan: Plan) -> list[str]:
    """The LSGM datasets where DRL's data-space score model is trained too (Fig. 4 compares them)."""
    return [d for d in plan.ex.lsgm.datasets if d in plan.ex.generation.datasets]


def lsgm_speed(plan: Plan) -> Family:
    """LSGM Fig. 4: NFE and time of LSGM's ODE per tolerance against the data-space score model's ODE and PC."""
    def outputs(dataset: str, run: str) -> dict[str, list[str]]:
        return {"samples": [plan.result(dataset, "lsgm", "samples", f"{n}.npz") for n in lsgm_speed_sets(plan)]}

    def make(d, out):
        model, score = plan.model(d, lsgm_method(plan.ex.lsgm.cell)), plan.model(d, "score")
        return ("", "lsgm-speed", {"--config": plan.config, "--model": model, "--score": score,
                                   "--out": out["samples"]},
                {"model": [model], "score": [score]}, out, ("experiments.lsgm", "sampling"),
                plan.torch_job(runtime=120, gpu=False))

    return per_dataset("lsgm_speed", lsgm_speed_datasets(plan), outputs, make)


def lsgm_sample_files(plan: Plan, dataset: str) -> list[str]:
    """Every LSGM sample set of a gray-level dataset whose FID is measured."""
    speed = lsgm_speed_sets(plan) if dataset in lsgm_speed_datasets(plan) else []
    names = [r.name for r in lsgm_stage1(False)(plan) + lsgm_runs(plan)] + speed
    return [plan.result(dataset, "lsgm", "samples", f"{n}.npz") for n in names]


lsgm_fidelity = fidelity_of("lsgm_fidelity", lambda plan: plan.ex.lsgm.datasets, lsgm_sample_files,
                            lambda plan, d: plan.result(d, "lsgm", "fidelity.csv"))


def report_figures(plan: Plan) -> list[str]:
    """Every figure `diffrep report` draws for the profile."""
    ex, figs = plan.ex, []
    for d in ex.latent.datasets:
        figs += [f"{d}_{r.name}" for r in latent_models(plan)] + [f"{d}_code_grid_samples", f"{d}_denoise_other_code"]
    figs += [f"{d}_silhouette_vs_t" for d in ex.sweep.datasets] + [f"{d}_fewshot" for d in ex.fewshot.datasets]
    figs += [f"{d}_{e}_convergence" for d in curve_datasets(plan) for e in curve_experiments(plan, d)]
    figs += [f"{d}_code_dim_samples" for d in ex.codedim.datasets]
    figs += [f"{d}_tinit_samples" for d in ex.generation.datasets]
    figs += [f"{d}_{f}" for d in ex.adversarial.datasets for f in ("adversarial_samples", "adversary_alpha", "t_density_loss")]
    figs += [f"{d}_lsgm_samples" for d in ex.lsgm.datasets]
    figs += [f"{d}_lsgm_speed" for d in lsgm_speed_datasets(plan)]
    figs += [f"{d}_scorevae_reconstructions" for d in ex.scorevae.datasets]
    figs += [f"{d}_representations" for d in ex.representations.datasets]
    return [f"{plan.cfg.reports_root}/figures/{f}.png" for f in figs]


def made(plan: Plan, build: Callable[[Plan], Family]) -> list[str]:
    """Every output of a family's jobs."""
    return [p for j in build(plan).jobs for paths in j.outputs.values() for p in paths]


def report(plan: Plan) -> Family:
    """reports/tables.md (under the profile's reports_root) and every figure, from the metrics files alone."""
    root = plan.cfg.reports_root

    def outputs(dataset: str, run: str) -> dict[str, list[str]]:
        return {"tables": [f"{root}/tables.md"], "metrics": [f"{root}/metrics.json"],
                "verdicts": [f"{root}/verdicts.json"], "figures": report_figures(plan)}

    inputs = {"silhouette": made(plan, silhouette), "fewshot": made(plan, fewshot), "curves": made(plan, curves), "semisup": made(plan, laplacenet),
              "fidelity": made(plan, fidelity), "drl_samples": made(plan, drl_samples),
              "codedim": made(plan, code_dim_samples), "adversarial": made(plan, loss_per_t),
              "lsgm": made(plan, lsgm_evaluate) + made(plan, lsgm_fidelity),
              "scorevae": made(plan, scorevae_evaluate), "representations": made(plan, representations),
              "template": ["reports/templates/tables.md.j2"], "targets": ["src/diffrep/report/targets.yaml"],
              "config": [plan.config]}
    results = f"{plan.cfg.results_root}/{plan.cfg.name}"
    args = {"--config": plan.config, "--results": results, "--figures": f"{root}/figures", "--out": f"{root}/tables.md",
            "--benchmarks": plan.benchmarks}
    if plan.cfg.report_baseline:  # another profile's committed verdicts, beside ours in the scoreboard
        inputs["baseline"], args["--baseline"] = [plan.cfg.report_baseline], plan.cfg.report_baseline
    job = Job("report", "", "report", "", "report", args,
              inputs, outputs("", ""), (), Resources(mem_mb=2000, runtime=30), threaded=False)
    return Family("report", outputs, False, [job], local=True, committed=True, metrics=("metrics",),
                  shown={"figures": "Figures", "tables": "Tables"})


def unplanned_results(plan: Plan) -> list[Path]:
    """Files in the folders of the report's results, of the kinds it reads there, that no job of the plan reads or
    writes: left from an earlier configuration (a code dimension or a seed taken out, a renamed run), they would
    enter the report, which reads such folders whole."""
    planned = {Path(p) for family in plan for job in family.jobs
               for files in (job.inputs, job.outputs) for paths in files.values() for p in paths}  # with the config
    root, kinds = Path(plan.cfg.results_root), {}
    for p in (Path(p) for paths in plan["report"].jobs[0].inputs.values() for p in paths):
        if p.is_relative_to(root):
            kinds.setdefault(p.parent, set()).add(p.suffix)
    return sorted(q for folder, suffixes in kinds.items() if folder.is_dir() for q in folder.iterdir()
                  if q.is_file() and q.suffix in suffixes and q not in planned)


def latent_models(plan: Plan) -> list[Run]:
    """The six 2-d code models of DRL Fig. 2, 3, 5, 7-9: phase 1 and phase 2."""
    return latent_runs(plan) + frozen_runs(plan)


# --- ScoreVAE: the frozen prior, the encoder per seed, ScoreVAE+, the baselines; reconstructions and their metrics --


def scorevae_prior_runs(plan: Plan) -> list[Run]:
    """ScoreVAE sec. 3.3: the unconditional prior, trained once per dataset and then frozen."""
    return [Run("scorevae-prior", "scorevae_prior", {"--experiment": "scorevae"})]


def _per_seed(plan: Plan, method: str, init: str = "") -> list[Run]:
    return [Run(f"{method}-s{s}", method, {"--experiment": "scorevae", "--seed": s}, init.format(seed=s))
            for s in plan.ex.scorevae.seeds]


def scorevae_runs(plan: Plan) -> list[Run]:
    """ScoreVAE sec. 3.5: the encoder on the frozen prior, per seed."""
    return _per_seed(plan, "scorevae", "scorevae-prior")


def scorevae_plus_runs(plan: Plan) -> list[Run]:
    """ScoreVAE+ (sec. 3.6): the corrector on each seed's frozen ScoreVAE."""
    return _per_seed(plan, "scorevae_plus", "scorevae-s{seed}")


def scorevae_baseline_runs(plan: Plan) -> list[Run]:
    """ScoreVAE sec. 4: the beta-VAE and DiffDecoder (beta 0.01 and 0), per seed."""
    return [r for m in ("beta_vae", "diffdecoder", "diffdecoder_b0") for r in _per_seed(plan, m)]


def scorevae_models(plan: Plan) -> list[Run]:
    """Every reconstructing model of ScoreVAE Tables 1, 2."""
    return scorevae_runs(plan) + scorevae_plus_runs(plan) + scorevae_baseline_runs(plan)


def scorevae_evaluate(plan: Plan) -> Family:
    """ScoreVAE Tables 1-6: every model's reconstructions of the first test images, and their L2, LPIPS (VGG weights
    given or found) and domain-classifier feature distance, beside the reference rows from the training split; one job
    per dataset pays the start-up once."""
    names = [r.name for r in scorevae_models(plan)]

    def outputs(dataset: str, run: str) -> dict[str, list[str]]:
        return {"reconstructions": [plan.result(dataset, "scorevae", f"{r}.npz") for r in names],
                "scores": [plan.result(dataset, "scorevae.csv")]}

    vgg = made(plan, fetching("lpips"))

    def make(d, out):
        models, classifier = [plan.model(d, r) for r in names], plan.model(d, "classifier")
        return ("", "reconstruct", {"--config": plan.config, "--model": models, "--data": plan.data(d),
                                    "--classifier": classifier, "--device": device(plan),
                                    "--out": out["reconstructions"], "--scores": out["scores"][0]},
                {"models": models, "classifier": [classifier], "test": [plan.data(d, "test.npz")],
                 "train": [plan.data(d, "train.npz")], "vgg": vgg}, out,
                ("experiments.scorevae",), plan.torch_job(runtime=480))

    return per_dataset("scorevae_evaluate", plan.ex.scorevae.datasets, outputs, make)


def representation_models(plan: Plan, dataset: str) -> list[str]:
    """The models of a dataset whose codes the representation table makes itself (the few-shot ones come encoded):
    DRL's static code of the few-shot dimension (a Fig. 10 model) and VDRL's, LSGM's main cell, ScoreVAE and its
    baselines."""
    ex, runs = plan.ex, []
    if dataset in ex.codedim.datasets and ex.fewshot.code_dim in ex.codedim.code_dims:
        runs.append(f"codedim-d{ex.fewshot.code_dim}")
    if dataset in static_code_datasets(plan):
        runs += [r.name for r in static_vdrl_runs(plan)]
    if dataset in ex.lsgm.datasets:
        runs.append(lsgm_method(ex.lsgm.cell))
    if dataset in ex.scorevae.datasets:
        runs += [r.name for r in scorevae_runs(plan) + scorevae_baseline_runs(plan)]
    return [plan.model(dataset, r) for r in runs]


def representations(plan: Plan) -> Family:
    """One representation table for every method: each model's codes of a dataset under one protocol, with raw pixels
    and PCA as floors; one job per dataset."""
    def outputs(dataset: str, run: str) -> dict[str, list[str]]:
        return {"scores": [plan.result(dataset, "representations.csv")]}

    def make(d, out):
        fewshot_codes = [plan.result(d, "codes", f"{r.name}.npz") for r in fewshot_runs(plan)]
        codes, models = fewshot_codes if d in plan.ex.fewshot.datasets else [], representation_models(plan, d)
        return ("", "representations", {"--config": plan.config, "--data": plan.data(d), "--codes": codes,
                                         "--model": models, "--out": out["scores"][0]},
                {"codes": codes, "models": models, "train": [plan.data(d, "train.npz")],
                 "test": [plan.data(d, "test.npz")]}, out, ("experiments.representations",),
                plan.torch_job(gpu=False, runtime=60))

    return per_dataset("representations", plan.ex.representations.datasets, outputs, make)


# The families in the order the workflows list them. A new experiment: its runs (a function like `sweep_runs`), a
# `training(...)` entry, and the evaluation families that read its outputs.
FAMILIES: list[Callable[[Plan], Family]] = [
    prepare_data,
    fetching("inception"),
    fetching("lpips"),
    training("train_latent", "latent", latent_runs),
    training("train_latent_frozen", "latent", frozen_runs),
    training("train_sweep", "sweep", sweep_runs),
    training("train_fewshot", "fewshot", fewshot_runs),
    training("train_codedim", "codedim", codedim_runs),
    training("train_static_vdrl", "codedim", static_vdrl_runs, datasets=static_code_datasets),
    encoding("latent", latent_models),
    encoding("sweep", sweep_runs),
    encoding("fewshot", fewshot_runs),
    drl_samples,
    code_dim_samples,
    silhouette,
    fewshot,
    curves,
    training("train_score", "generation", score_runs, per_run=False),
    training("train_adversarial", "adversarial", adversarial_runs, files=("model.pt", "metrics.csv")),
    train_classifier,
    sample,
    fidelity,
    loss_per_t,
    training("pretrain_semisup", "semisup", pretrain_runs, command="pretrain", method_flag="--pretraining"),
    laplacenet,
    training("train_lsgm_vae", "lsgm", lsgm_stage1(False)),
    training("train_lsgm_vae_binary", "lsgm", lsgm_stage1(True), datasets=lambda plan: plan.ex.lsgm.binarized),
    training("train_lsgm", "lsgm", lsgm_runs, files=("model.pt", "divergence.json")),
    training("train_lsgm_binary", "lsgm", lsgm_binary_runs, files=("model.pt", "divergence.json"),
             datasets=lambda plan: plan.ex.lsgm.binarized),
    lsgm_evaluate,
    lsgm_speed,
    lsgm_fidelity,
    training("train_scorevae_prior", "scorevae", scorevae_prior_runs, per_run=False),
    training("train_scorevae", "scorevae", scorevae_runs),
    training("train_scorevae_plus", "scorevae", scorevae_plus_runs),
    training("train_scorevae_baselines", "scorevae", scorevae_baseline_runs),
    scorevae_evaluate,
    representations,
    report,
]


# --- dvc.yaml -----------------------------------------------------------------------------------------------------

DVC_HEADER = """\
# Written by `diffrep plan PROFILE` from the run plan (src/diffrep/plan.py), with params.yaml: do not edit.
# Another profile: `diffrep plan params/smoke.yaml && dvc repro`. Any parameter: `dvc exp run -S key=value`
# (a change to a list that adds or removes runs needs `diffrep plan` first).
"""


def stage_name(family: Family, job: Job) -> str:
    """The DVC stage of a job: its family, dataset and run (DVC's own `@` names are for foreach stages only)."""
    return "-".join(p for p in (family.name, job.dataset, job.run if family.per_run else "") if p)


def dvc_stage(family: Family, job: Job) -> dict:
    """One job as a DVC stage: the same command, its inputs as deps, its parameter keys, its outputs."""
    outs = [p for paths in job.outputs.values() for p in paths]
    stage = {"cmd": job.cmd(), "deps": [p for paths in job.inputs.values() for p in paths], "params": list(job.params),
             "outs": [{p: {"cache": False}} if family.committed else {p: {"persist": True}} if family.persist else p
                      for p in outs]}
    return {k: v for k, v in stage.items() if v}


def dvc_yaml(plan: Plan) -> str:
    """dvc.yaml of a plan: a stage per job, and the result files DVC shows as metrics and plots."""
    def outputs(attribute: str) -> list[str]:
        return [p for f in plan for j in f.jobs for name in getattr(f, attribute) for p in j.outputs[name]]

    document = {
        "stages": {stage_name(f, j): dvc_stage(f, j) for f in plan for j in f.jobs},
        "metrics": outputs("metrics"),
        "plots": [*outputs("plots"), *report_figures(plan)],
    }
    return DVC_HEADER + yaml.safe_dump(document, sort_keys=False, width=120, default_flow_style=None)
