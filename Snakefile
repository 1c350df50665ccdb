# diffrep: one DAG from data to reports/tables.md. Parameters: params/default.yaml unless --configfile names
# another profile; the profile is validated against params/schema.json before any job runs. The jobs come from the
# run plan (src/diffrep/plan.py), which also writes dvc.yaml. `snakemake --report report.html` after a run gives
# the figures, tables and metrics in one self-contained HTML file.
from snakemake.utils import min_version

min_version("9.0")

if not config:

    configfile: "params/default.yaml"


report: "reports/workflow.rst"


include: "rules/common.smk"
include: "rules/jobs.smk"


rule all:
    default_target: True
    input:
        PLAN["report"].jobs[0].outputs["tables"],
