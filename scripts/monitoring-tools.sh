#!/usr/bin/env bash
# Installs the monitoring tools that deploy/'s tests and `kauri dev up
# --monitor` run: Debian's prometheus package (prometheus and promtool) and
# systemd-analyze (for `systemd-analyze verify` of deploy/systemd).
# Idempotent and quiet when everything is already there; prints what it
# installs on stderr and fails loudly when it cannot.
set -euo pipefail

missing=()
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    missing+=(prometheus)
fi
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)

if [ ${#missing[@]} -gt 0 ]; then
    echo "monitoring-tools: installing ${missing[*]}" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        SUDO="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    # Serialise concurrent callers (tests run in parallel) on one lock.
    exec 9>/tmp/kauri-monitoring-tools.lock
    flock -w 600 9
    if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1 \
        || ! command -v systemd-analyze >/dev/null 2>&1; then
        $SUDO apt-get update -qq
        # --no-install-recommends: the package recommends the node exporter
        # and others that these tests do not need; the daemon must not start
        # as a service either (policy-rc.d style: no service in a container).
        $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi

for tool in promtool prometheus systemd-analyze; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "monitoring-tools: $tool is still missing after installing ${missing[*]:-nothing}" >&2
        exit 1
    fi
done
