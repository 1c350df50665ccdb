# Encoding and scoring: codes of every model, silhouette scores, few-shot SVMs.


rule encode:
    input:
        model=f"{MODELS}/{{dataset}}/{{run}}/model.pt",
        train=rules.prepare_data.output.train,
        test=rules.prepare_data.output.test,
    output:
        f"{RESULTS}/{{dataset}}/codes/{{run}}.npz",
    params:
        data=lambda w, input: os.path.dirname(input.train),
    log:
        f"{LOGS}/encode_{{dataset}}_{{run}}.log",
    benchmark:
        f"{BENCH}/encode_{{dataset}}_{{run}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        ENV
    shell:
        "diffrep encode --model {input.model} --data {params.data} --threads {threads} --out {output} > {log} 2>&1"


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
