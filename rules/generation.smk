# Generation (DRL sec. 4.2, 4.3): the unconditional score model, adversarial lambda per p_KL, the domain
# classifier that gives FID/IS features offline, samples per setting, and their FID/IS and loss per t.


rule train_score:
    input:
        rules.prepare_data.output.train,
    output:
        f"{MODELS}/{{dataset}}/score/model.pt",
    params:
        settings=settings(*TRAINING, "experiments.generation"),
        config=RESOLVED,
        data=lambda w, input: os.path.dirname(input[0]),
        out=lambda w, output: os.path.dirname(output[0]),
    log:
        f"{LOGS}/train_{{dataset}}_score.log",
    benchmark:
        f"{BENCH}/train_{{dataset}}_score.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=GPU,
    conda:
        ENV
    shell:
        "diffrep train --config {params.config} --data {params.data} --dataset {wildcards.dataset} --threads {threads}"
        " --out {params.out} --experiment generation --method score > {log} 2>&1"


rule train_adversarial:
    input:
        data=rules.prepare_data.output.train,
        init=f"{MODELS}/{{dataset}}/score/model.pt",
    output:
        model=f"{MODELS}/{{dataset}}/adversarial-p{{p_kl}}/model.pt",
        metrics=f"{MODELS}/{{dataset}}/adversarial-p{{p_kl}}/metrics.csv",
    wildcard_constraints:
        p_kl=r"[0-9.]+",
    params:
        settings=settings(*TRAINING, "experiments.adversarial"),
        config=RESOLVED,
        data=lambda w, input: os.path.dirname(input.data),
        out=lambda w, output: os.path.dirname(output.model),
    log:
        f"{LOGS}/train_{{dataset}}_adversarial-p{{p_kl}}.log",
    benchmark:
        f"{BENCH}/train_{{dataset}}_adversarial-p{{p_kl}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=GPU,
    conda:
        ENV
    shell:
        "diffrep train --config {params.config} --data {params.data} --dataset {wildcards.dataset} --threads {threads}"
        " --out {params.out} --experiment adversarial --method score --init {input.init} --p-kl {wildcards.p_kl}"
        " > {log} 2>&1"


rule train_classifier:
    input:
        train=rules.prepare_data.output.train,
        test=rules.prepare_data.output.test,
    output:
        model=f"{MODELS}/{{dataset}}/classifier/model.pt",
        accuracy=f"{MODELS}/{{dataset}}/classifier/accuracy.json",
    params:
        settings=settings("fidelity"),
        config=RESOLVED,
        data=lambda w, input: os.path.dirname(input.train),
    log:
        f"{LOGS}/train_{{dataset}}_classifier.log",
    benchmark:
        f"{BENCH}/train_{{dataset}}_classifier.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=GPU,
    conda:
        ENV
    shell:
        "diffrep train-classifier --config {params.config} --data {params.data} --threads {threads}"
        " --out {output.model} > {log} 2>&1"


rule sample:
    input:
        lambda w: sample_model(w.dataset, w.run),
    output:
        f"{RESULTS}/{{dataset}}/samples/{{run}}.npz",
    params:
        settings=settings("sampling", "experiments.generation", "experiments.adversarial"),
        config=RESOLVED,
        args=lambda w: sample_args(w.run),
    log:
        f"{LOGS}/sample_{{dataset}}_{{run}}.log",
    benchmark:
        f"{BENCH}/sample_{{dataset}}_{{run}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=GPU,
    conda:
        ENV
    shell:
        "diffrep sample --config {params.config} --model {input} {params.args} --threads {threads} --out {output} > {log} 2>&1"


rule fidelity:
    input:
        samples=lambda w: [f"{RESULTS}/{w.dataset}/samples/{r}.npz" for r in sample_runs(w.dataset)],
        classifier=rules.train_classifier.output.model,
        train=rules.prepare_data.output.train,
        inception=INCEPTION,
    output:
        f"{RESULTS}/{{dataset}}/fidelity.csv",
    params:
        settings=settings("fidelity"),
        config=RESOLVED,
        data=lambda w, input: os.path.dirname(input.train),
    log:
        f"{LOGS}/fidelity_{{dataset}}.log",
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=GPU,
    conda:
        ENV
    shell:
        "diffrep fidelity --config {params.config} --data {params.data} --classifier {input.classifier}"
        " --samples {input.samples} --threads {threads} --out {output} > {log} 2>&1"


rule loss_per_t:
    input:
        model=f"{MODELS}/{{dataset}}/{{run}}/model.pt",
        metrics=f"{MODELS}/{{dataset}}/{{run}}/metrics.csv",
        test=rules.prepare_data.output.test,
    output:
        losses=f"{RESULTS}/{{dataset}}/loss_per_t/{{run}}.csv",
        alpha=f"{RESULTS}/{{dataset}}/alpha/{{run}}.csv",
    wildcard_constraints:
        run=r"adversarial-p[0-9.]+",
    params:
        data=lambda w, input: os.path.dirname(input.test),
    log:
        f"{LOGS}/loss_per_t_{{dataset}}_{{run}}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        ENV
    shell:
        "diffrep loss-per-t --model {input.model} --data {params.data} --out {output.losses}"
        " --alpha-out {output.alpha} > {log} 2>&1"


# One job per dataset for the samples of the latent and codedim models: each model's share is seconds, the start-up
# of a job ~3 s.
rule drl_samples:
    input:
        models=expand(f"{MODELS}/{{{{dataset}}}}/{{run}}/model.pt", run=latent_runs()),
        codes=codes("{dataset}", latent_runs()),
        test=rules.prepare_data.output.test,
    output:
        expand(f"{RESULTS}/{{{{dataset}}}}/drl_samples/{{run}}.npz", run=latent_runs()),
    params:
        settings=settings("sampling"),
        config=RESOLVED,
        data=lambda w, input: os.path.dirname(input.test),
    log:
        f"{LOGS}/drl_samples_{{dataset}}.log",
    benchmark:
        f"{BENCH}/drl_samples_{{dataset}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=GPU,
    conda:
        ENV
    shell:
        "diffrep drl-samples --config {params.config} --model {input.models} --codes {input.codes} --data {params.data}"
        " --threads {threads} --out {output} > {log} 2>&1"


rule code_dim_samples:
    input:
        models=expand(f"{MODELS}/{{{{dataset}}}}/codedim-d{{dim}}/model.pt", dim=EX.codedim.code_dims),
        test=rules.prepare_data.output.test,
    output:
        expand(f"{RESULTS}/{{{{dataset}}}}/codedim/d{{dim}}.npz", dim=EX.codedim.code_dims),
    params:
        settings=settings("sampling", "experiments.codedim"),
        config=RESOLVED,
        data=lambda w, input: os.path.dirname(input.test),
    log:
        f"{LOGS}/code_dim_samples_{{dataset}}.log",
    benchmark:
        f"{BENCH}/code_dim_samples_{{dataset}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=GPU,
    conda:
        ENV
    shell:
        "diffrep code-dim-samples --config {params.config} --model {input.models} --data {params.data}"
        " --threads {threads} --out {output} > {log} 2>&1"
