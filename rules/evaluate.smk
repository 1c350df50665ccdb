# Encoding and scoring: codes of every model, silhouette scores, few-shot SVMs.


# One encoding job per experiment and dataset: the models of an experiment are encoded one after the other in one
# process, which pays the start-up (~3 s of imports) once instead of once per model.
for _experiment, _runs in (("latent", latent_runs()), ("sweep", sweep_runs()), ("fewshot", fewshot_runs())):

    rule:
        name:
            f"encode_{_experiment}"
        input:
            models=expand(f"{MODELS}/{{{{dataset}}}}/{{run}}/model.pt", run=_runs),
            train=rules.prepare_data.output.train,
            test=rules.prepare_data.output.test,
        output:
            codes("{dataset}", _runs),
        params:
            data=lambda w, input: os.path.dirname(input.train),
        log:
            f"{LOGS}/encode_{{dataset}}_{_experiment}.log",
        benchmark:
            f"{BENCH}/encode_{{dataset}}_{_experiment}.tsv"
        threads: 1
        resources:
            mem_mb=4000,
            runtime=60,
        conda:
            ENV
        shell:
            "diffrep encode --model {input.models} --data {params.data} --threads {threads} --out {output} > {log} 2>&1"


rule silhouette:
    input:
        lambda w: codes(w.dataset, silhouette_runs(w.dataset)),
    output:
        f"{RESULTS}/{{dataset}}/silhouette.csv",
    params:
        codes=lambda w, input: os.path.dirname(input[0]),
    log:
        f"{LOGS}/silhouette_{{dataset}}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        ENV
    shell:
        "diffrep silhouette --codes-dir {params.codes} --out {output} > {log} 2>&1"


rule fewshot:
    input:
        lambda w: codes(w.dataset, fewshot_runs()),
    output:
        f"{RESULTS}/{{dataset}}/fewshot.csv",
    params:
        settings=settings("experiments.fewshot"),
        config=RESOLVED,
        codes=lambda w, input: os.path.dirname(input[0]),
    log:
        f"{LOGS}/fewshot_{{dataset}}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        ENV
    shell:
        "diffrep fewshot --config {params.config} --codes-dir {params.codes} --out {output} > {log} 2>&1"
