#!/usr/bin/env bash
# Debian's SLURM (slurmctld, slurmd, slurm-client; about 10 s) for the tests on a real local cluster
# (tests/cluster: a fixture starts slurmctld and two slurmd nodes itself, under a temporary folder).
# The packages' services are not wanted: where no policy-rc.d forbids it, the install may start them,
# so they are stopped again by their own unit (nothing is killed by name).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl stop slurmctld slurmd 2>/dev/null || true
fi
