#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the pipeline's SLURM test (tests/test_cluster.py).
# Needs root and Debian's apt. Installs slurm-wlm and munge when missing, writes /etc/slurm/slurm.conf for this
# host (its real CPU count and memory, from `slurmd -C`), starts munged, slurmctld and slurmd, and waits until
# the node is idle. No accounting database: job status comes from squeue, so finished jobs stay visible there
# for MinJobAge seconds. Safe to rerun: a running cluster it started is left as it is.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARK="# written by diffrep .ci/slurm-up.sh"
PARTITION=${DIFFREP_SLURM_PARTITION:-debug}

if [ "$(id -u)" -ne 0 ]; then
    echo "slurm-up: must run as root (it installs packages and starts daemons)" >&2
    exit 1
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get -qq update >/dev/null
    apt-get -y -qq install slurm-wlm munge >/dev/null
fi

if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    echo "slurm-up: $CONF exists and was not written by this script; refusing to replace it" >&2
    exit 1
fi

node=$(slurmd -C | head -n 1)   # NodeName=<host> CPUs=.. Boards=.. ... RealMemory=..
host=$(hostname -s)
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat > "$CONF.new" <<CONF
$MARK
ClusterName=diffrep-ci
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=3600
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
if ! cmp -s "$CONF.new" "$CONF"; then
    mv "$CONF.new" "$CONF"
    changed=1
else
    rm "$CONF.new"
    changed=0
fi

if ! pgrep -x munged >/dev/null; then
    [ -s /etc/munge/munge.key ] || { dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null; }
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge && chown munge:munge /run/munge /var/log/munge /var/lib/munge
    runuser -u munge -- munged
fi

if [ "$changed" = 1 ]; then   # a new configuration: restart whatever this script started before
    for pidfile in /run/slurmctld.pid /run/slurmd.pid; do
        [ -s "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    sleep 1
fi
pgrep -x slurmctld >/dev/null || slurmctld
# The jobs inherit slurmd's CPU priority (PropagatePrioProcess=0). The smoke test runs `dvc repro`, one job at a time
# and the longer of the two, beside the cluster's jobs on the same two cores: niced jobs leave it a core, so that
# both finish together instead of `dvc repro` running on alone at the end.
pgrep -x slurmd >/dev/null || nice -n "${DIFFREP_SLURM_NICE:-10}" slurmd

for _ in $(seq 60); do
    state=$(sinfo -h -N -o '%T' 2>/dev/null | head -n 1 || true)
    if [ "$state" = idle ] || [ "$state" = mixed ] || [ "$state" = allocated ]; then
        sinfo
        exit 0
    fi
    sleep 1
done
echo "slurm-up: the node did not come up (state '${state:-none}'); logs follow" >&2
tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1
