# Data: each dataset prepared once into versioned train/test files with a recorded split.


rule prepare_data:
    output:
        train=f"{DATA}/{{dataset}}/train.npz",
        test=f"{DATA}/{{dataset}}/test.npz",
        split=f"{DATA}/{{dataset}}/split.json",
    params:
        config=RESOLVED,
        out=lambda w, output: os.path.dirname(output.train),
    log:
        f"{LOGS}/prepare_{{dataset}}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        ENV
    shell:
        "diffrep prepare --config {params.config} --dataset {wildcards.dataset} --out {params.out} > {log} 2>&1"
