# diffrep: one DAG from data to reports/tables.md. Parameters: params/default.yaml unless --configfile names
# another profile; the profile is validated against params/schema.json before any job runs.
from snakemake.utils import min_version

min_version("9.0")

if not config:

    configfile: "params/default.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/drl.smk"
include: "rules/generation.smk"
include: "rules/evaluate.smk"
include: "rules/semisup.smk"
include: "rules/report.smk"


# On a cluster these run where Snakemake runs, not as jobs: compute nodes often cannot reach the dataset mirrors,
# and rendering the report takes seconds.
localrules:
    prepare_data,
    report,


rule all:
    default_target: True
    input:
        "reports/tables.md",
