# DRL / VDRL representation learning and the AE / VAE baselines: one training job per model.
# Every job resumes from its own checkpoint (models/.../ckpt.pt) when it was interrupted.

rule train_latent:
    input:
        rules.prepare_data.output.train,
    output:
        f"{MODELS}/{{dataset}}/latent-{{method}}-{{scheme}}/model.pt",
    wildcard_constraints:
        method="drl|vdrl",
        scheme="uniform_t|uniform_sigma",
    params:
        settings=settings(*TRAINING, "experiments.latent"),
        config=RESOLVED,
        data=lambda w, input: os.path.dirname(input[0]),
        out=lambda w, output: os.path.dirname(output[0]),
    log:
        f"{LOGS}/train_{{dataset}}_latent-{{method}}-{{scheme}}.log",
    benchmark:
        f"{BENCH}/train_{{dataset}}_latent-{{method}}-{{scheme}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=GPU,
    conda:
        ENV
    shell:
        "diffrep train --config {params.config} --data {params.data} --dataset {wildcards.dataset} --threads {threads}"
        " --out {params.out} --experiment latent --method {wildcards.method} --scheme {wildcards.scheme} > {log} 2>&1"


rule train_latent_frozen:
    input:
        data=rules.prepare_data.output.train,
        init=f"{MODELS}/{{dataset}}/latent-{{method}}-uniform_sigma/model.pt",
    output:
        f"{MODELS}/{{dataset}}/latent-{{method}}-uniform_sigma-frozen/model.pt",
    wildcard_constraints:
        method="drl|vdrl",
    params:
        settings=settings(*TRAINING, "experiments.latent"),
        config=RESOLVED,
        data=lambda w, input: os.path.dirname(input[0]),
        out=lambda w, output: os.path.dirname(output[0]),
    log:
        f"{LOGS}/train_{{dataset}}_latent-{{method}}-uniform_sigma-frozen.log",
    benchmark:
        f"{BENCH}/train_{{dataset}}_latent-{{method}}-uniform_sigma-frozen.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=GPU,
    conda:
        ENV
    shell:
        "diffrep train --config {params.config} --data {params.data} --dataset {wildcards.dataset} --threads {threads}"
        " --out {params.out} --experiment latent --method {wildcards.method} --scheme uniform_t"
        " --init {input.init} --freeze-encoder > {log} 2>&1"


rule train_sweep:
    input:
        rules.prepare_data.output.train,
    output:
        f"{MODELS}/{{dataset}}/sweep-t{{t}}-s{{seed}}/model.pt",
    wildcard_constraints:
        t=r"[0-9.]+",
        seed=r"\d+",
    params:
        settings=settings(*TRAINING, "experiments.sweep"),
        config=RESOLVED,
        data=lambda w, input: os.path.dirname(input[0]),
        out=lambda w, output: os.path.dirname(output[0]),
    log:
        f"{LOGS}/train_{{dataset}}_sweep-t{{t}}-s{{seed}}.log",
    benchmark:
        f"{BENCH}/train_{{dataset}}_sweep-t{{t}}-s{{seed}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=GPU,
    conda:
        ENV
    shell:
        "diffrep train --config {params.config} --data {params.data} --dataset {wildcards.dataset} --threads {threads}"
        " --out {params.out} --experiment sweep --method drl"
        " --scheme fixed --t {wildcards.t} --seed {wildcards.seed} > {log} 2>&1"


rule train_fewshot:
    input:
        rules.prepare_data.output.train,
    output:
        f"{MODELS}/{{dataset}}/fewshot-{{method}}/model.pt",
    wildcard_constraints:
        method="drl|vdrl|ae|vae",
    params:
        settings=settings(*TRAINING, "experiments.fewshot"),
        config=RESOLVED,
        data=lambda w, input: os.path.dirname(input[0]),
        out=lambda w, output: os.path.dirname(output[0]),
    log:
        f"{LOGS}/train_{{dataset}}_fewshot-{{method}}.log",
    benchmark:
        f"{BENCH}/train_{{dataset}}_fewshot-{{method}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=GPU,
    conda:
        ENV
    shell:
        "diffrep train --config {params.config} --data {params.data} --dataset {wildcards.dataset} --threads {threads}"
        " --out {params.out} --experiment fewshot --method {wildcards.method} > {log} 2>&1"


rule train_codedim:
    input:
        rules.prepare_data.output.train,
    output:
        f"{MODELS}/{{dataset}}/codedim-d{{dim}}/model.pt",
    wildcard_constraints:
        dim=r"\d+",
    params:
        settings=settings(*TRAINING, "experiments.codedim"),
        config=RESOLVED,
        data=lambda w, input: os.path.dirname(input[0]),
        out=lambda w, output: os.path.dirname(output[0]),
    log:
        f"{LOGS}/train_{{dataset}}_codedim-d{{dim}}.log",
    benchmark:
        f"{BENCH}/train_{{dataset}}_codedim-d{{dim}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=GPU,
    conda:
        ENV
    shell:
        "diffrep train --config {params.config} --data {params.data} --dataset {wildcards.dataset} --threads {threads}"
        " --out {params.out} --experiment codedim --method drl --code-dim {wildcards.dim} > {log} 2>&1"
