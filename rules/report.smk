# The report: tables.md and every figure, rendered from the metrics files alone. The resolved parameters are an
# input, so switching profiles (default, smoke, paper) re-renders reports/tables.md.


rule report:
    input:
        silhouette=[f"{RESULTS}/{d}/silhouette.csv" for d in sorted(set(EX.latent.datasets) | set(EX.sweep.datasets))],
        fewshot=[f"{RESULTS}/{d}/fewshot.csv" for d in EX.fewshot.datasets],
        semisup=semisup_results(),
        fidelity=[f"{RESULTS}/{d}/fidelity.csv" for d in fidelity_datasets()],
        drl_samples=[f"{RESULTS}/{d}/drl_samples/{r}.npz" for d in EX.latent.datasets for r in latent_runs()],
        codedim=[f"{RESULTS}/{d}/codedim/d{k}.npz" for d in EX.codedim.datasets for k in EX.codedim.code_dims],
        adversarial=[f"{RESULTS}/{d}/{f}/{r}.csv" for d in EX.adversarial.datasets for r in adversarial_runs()
                     for f in ("loss_per_t", "alpha")],
        template="reports/templates/tables.md.j2",
        config=RESOLVED,
    output:
        tables="reports/tables.md",
        figures=report_figures(),
    params:
        results=lambda w, input: os.path.dirname(input.config),
    log:
        f"{LOGS}/report.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        ENV
    shell:
        "diffrep report --config {input.config} --results {params.results} --figures reports/figures"
        " --out {output.tables} > {log} 2>&1"
