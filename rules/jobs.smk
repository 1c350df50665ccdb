# One rule per family of the run plan (src/diffrep/plan.py): its jobs' inputs, command and settings come from the
# plan by the wildcards {dataset} and {run}. A new experiment or method is an entry there, not a rule here.


for _family in PLAN:

    rule:
        name:
            _family.name
        input:
            unpack(inputs_of(_family)),
        output:
            **outputs_of(_family),
        wildcard_constraints:
            **constraints_of(_family),
        params:
            settings=settings_of(_family),
            cmd=command_of(_family),
        log:
            named_by_wildcards(LOGS, _family, ".log"),
        benchmark:
            named_by_wildcards(BENCH, _family, ".tsv")
        threads: _family.jobs[0].resources.threads
        resources:
            mem_mb=_family.jobs[0].resources.mem_mb,
            runtime=_family.jobs[0].resources.runtime,
            gpu=_family.jobs[0].resources.gpu,
        localrule: _family.local
        conda:
            ENV
        shell:
            "{params.cmd} > {log} 2>&1"
