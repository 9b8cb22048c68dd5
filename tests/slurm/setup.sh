#!/usr/bin/env bash
# A real one-node SLURM (slurmctld + slurmd + munge, no accounting) on this machine, for the cluster
# test (tests/test_slurm.py). Needs root and apt. Idempotent: daemons already running are kept.
#   sudo bash tests/slurm/setup.sh            # install, configure, start
#   sudo bash tests/slurm/setup.sh --stop     # stop the daemons it started
# Facts behind the settings: ../shared/reference/slurm-local.md (Debian bookworm, SLURM 22.05).
set -euo pipefail
STATE=/var/run/lottery-slurm
if [ "${1:-}" = "--stop" ]; then
  for pidfile in "$STATE"/*.pid; do
    [ -f "$pidfile" ] && xargs -r kill < "$pidfile" 2>/dev/null || true
    rm -f "$pidfile"
  done
  exit 0
fi
if [ "$(id -u)" != 0 ]; then echo "setup.sh: needs root (apt-get, daemons)" >&2; exit 1; fi
mkdir -p "$STATE"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  # Keep apt from starting the daemons itself with its default configuration.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi

# munge first: its key, then the daemon.
if [ ! -s /etc/munge/munge.key ]; then
  mkdir -p /etc/munge
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge 2>/dev/null || true
chmod 400 /etc/munge/munge.key
mkdir -p /run/munge && chown munge:munge /run/munge
if ! pgrep -x munged >/dev/null; then
  su -s /bin/sh munge -c "/usr/sbin/munged" 
  pgrep -x munged > "$STATE/munged.pid"
fi

cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=lottery
SlurmctldHost=localhost
NodeName=localhost CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
MinJobAge=600
MailProg=/bin/true
SlurmUser=root
SlurmdUser=root
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ReturnToService=2
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
CONF

pgrep -x slurmctld >/dev/null || /usr/sbin/slurmctld
pgrep -x slurmd >/dev/null || /usr/sbin/slurmd -N localhost
for _ in $(seq 1 30); do
  if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
    sinfo
    exit 0
  fi
  sleep 1
done
echo "setup.sh: the SLURM node did not become idle; see /var/log/slurm/" >&2
sinfo >&2 || true
exit 1
