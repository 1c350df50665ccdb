# DRL Tables 1, 4-7: LaplaceNet's WRN pretrained as a DRL/VDRL encoder or an autoencoder, then semi-supervised
# training per setting, label count and seed. One job per pretraining runs all of its settings, label counts and
# seeds, so that few jobs pay the start-up of Python and torch.


rule pretrain_semisup:
    input:
        rules.prepare_data.output.train,
    output:
        f"{MODELS}/{{dataset}}/semisup-{{pretraining}}/model.pt",
    wildcard_constraints:
        pretraining="drl|vdrl|drl_mixup|ae",
    params:
        settings=settings(*TRAINING, "experiments.semisup"),
        config=RESOLVED,
        data=lambda w, input: os.path.dirname(input[0]),
        out=lambda w, output: os.path.dirname(output[0]),
    log:
        f"{LOGS}/pretrain_{{dataset}}_semisup-{{pretraining}}.log",
    benchmark:
        f"{BENCH}/pretrain_{{dataset}}_semisup-{{pretraining}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=GPU,
    conda:
        ENV
    shell:
        "diffrep pretrain --config {params.config} --data {params.data} --dataset {wildcards.dataset} --threads {threads}"
        " --pretraining {wildcards.pretraining} --out {params.out} > {log} 2>&1"


rule laplacenet:
    input:
        train=rules.prepare_data.output.train,
        test=rules.prepare_data.output.test,
        model=lambda w: [] if w.pretraining == "none" else [f"{MODELS}/{w.dataset}/semisup-{w.pretraining}/model.pt"],
    output:
        f"{RESULTS}/{{dataset}}/semisup/{{pretraining}}.csv",
    wildcard_constraints:
        pretraining="none|drl|vdrl|drl_mixup|ae",
    params:
        settings=settings(*TRAINING, "experiments.semisup"),
        config=RESOLVED,
        data=lambda w, input: os.path.dirname(input.train),
        model=lambda w, input: f"--model {input.model}" if input.model else "",
    log:
        f"{LOGS}/laplacenet_{{dataset}}_{{pretraining}}.log",
    benchmark:
        f"{BENCH}/laplacenet_{{dataset}}_{{pretraining}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=480,
        gpu=GPU,
    conda:
        ENV
    shell:
        "diffrep laplacenet --config {params.config} --data {params.data} --dataset {wildcards.dataset} --threads {threads}"
        " --pretraining {wildcards.pretraining} {params.model} --out {output} > {log} 2>&1"
