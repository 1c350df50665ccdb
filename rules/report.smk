# The report: tables.md and every figure, rendered from the metrics files alone.


rule report:
    input:
        silhouette=[f"{RESULTS}/{d}/silhouette.csv" for d in sorted(set(EX.latent.datasets) | set(EX.sweep.datasets))],
        fewshot=[f"{RESULTS}/{d}/fewshot.csv" for d in EX.fewshot.datasets],
        template="reports/templates/tables.md.j2",
    output:
        tables="reports/tables.md",
        figures=report_figures(),
    params:
        config=RESOLVED,
        results=RESULTS,
    log:
        f"{LOGS}/report.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        ENV
    shell:
        "diffrep report --config {params.config} --results {params.results} --figures reports/figures"
        " --out {output.tables} > {log} 2>&1"
