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
        # apt's chatter goes to a log that is shown only when it fails.
        log=$(mktemp)
        # --no-install-recommends: the package recommends exporters these
        # tests do not need.
        if ! { $SUDO apt-get update -qq && \
            $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
            cat "$log" >&2
            rm -f "$log"
            echo "monitoring-tools: installing ${missing[*]} failed" >&2
            exit 1
        fi
        rm -f "$log"
    fi
fi

for tool in promtool prometheus systemd-analyze; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "monitoring-tools: $tool is still missing after installing ${missing[*]:-nothing}" >&2
        exit 1
    fi
done
