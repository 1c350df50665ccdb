# The resolved parameters, the checks that need the file system, and the run plan every rule takes its jobs from.
import json
import re

from diffrep import config as diffrep_config
from diffrep.plan import Plan

CFG = diffrep_config.resolve(config, "snakemake config")
RESOLVED = f"{CFG.results_root}/{CFG.name}/config.yaml"
LOGS = f"logs/{CFG.name}"
ENV = "../envs/diffrep.yaml"
PLAN = Plan(CFG, RESOLVED)
BENCH = PLAN.benchmarks
diffrep_config.check_folders(CFG, {j.dataset for f in PLAN for j in f.jobs})
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


def job_of(family, wildcards):
    return family.job(getattr(wildcards, "dataset", ""), getattr(wildcards, "run", ""))


def inputs_of(family):
    return lambda wildcards: job_of(family, wildcards).inputs


def settings_of(family):
    return lambda wildcards: settings(*job_of(family, wildcards).params)


def command_of(family):
    """The job's command line, with the threads the scheduler granted (fewer than asked where --cores is lower)."""
    return lambda wildcards, threads: job_of(family, wildcards).cmd(threads)


def outputs_of(family):
    """The family's output pattern; figures, tables and metrics marked for `snakemake --report`."""
    shown = {**{m: "Metrics" for m in family.metrics}, **family.shown}
    return {
        name: [report(p, category=shown[name], subcategory=family.name) if name in shown else p for p in paths]
        for name, paths in family.pattern().items()
    }


def constraints_of(family):
    """Each wildcard matches the family's own values only, so that families with one output pattern never clash."""
    values = {"dataset": {j.dataset for j in family.jobs}, "run": {j.run for j in family.jobs}}
    return {w: "|".join(re.escape(v) for v in sorted(values[w], key=len, reverse=True)) for w in family.wildcards}


def named_by_wildcards(folder, family, ext):
    return f"{folder}/{family.name}" + "".join(f"_{{{w}}}" for w in family.wildcards) + ext
