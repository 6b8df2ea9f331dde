#!/usr/bin/env bash
# Installs the monitoring tools that deploy/'s tests and `kauri dev up
# --monitor` run: Debian's prometheus package (prometheus and promtool),
# systemd-analyze (for `systemd-analyze verify` of deploy/systemd), and, in
# a Python virtualenv of their own, check-jsonschema (the Compose
# specification's schema) and kubernetes-validate (Kubernetes' schemas),
# which validate deploy/compose and deploy/kubernetes offline.
# Idempotent and quiet when everything is already there; prints what it
# installs on stderr and fails loudly when it cannot.
#
#   scripts/monitoring-tools.sh                    install what is missing
#   scripts/monitoring-tools.sh --venv             ... and print the virtualenv's path
#   scripts/monitoring-tools.sh --prometheus-only  only prometheus and promtool
#                                                  (what `kauri dev up --monitor` needs)
set -euo pipefail

PROMETHEUS_ONLY=false
PRINT_VENV=false
for arg in "$@"; do
    case "$arg" in
        --prometheus-only) PROMETHEUS_ONLY=true ;;
        --venv) PRINT_VENV=true ;;
        *) echo "monitoring-tools: unknown argument $arg" >&2; exit 2 ;;
    esac
done
TOOLS=(promtool prometheus systemd-analyze)
if $PROMETHEUS_ONLY; then
    TOOLS=(promtool prometheus)
fi

VENV="${KAURI_TOOLS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/kauri/tools-venv}"
PY_TOOLS=(check-jsonschema==0.39.0 kubernetes-validate==1.37.0)

missing=()
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    missing+=(prometheus)
fi
if ! $PROMETHEUS_ONLY; then
    command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
fi

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
    still_missing=false
    for tool in "${TOOLS[@]}"; do
        command -v "$tool" >/dev/null 2>&1 || still_missing=true
    done
    if $still_missing; then
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

for tool in "${TOOLS[@]}"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "monitoring-tools: $tool is still missing after installing ${missing[*]:-nothing}" >&2
        exit 1
    fi
done

if $PROMETHEUS_ONLY; then
    exit 0
fi

if [ ! -x "$VENV/bin/check-jsonschema" ] || [ ! -x "$VENV/bin/kubernetes-validate" ]; then
    echo "monitoring-tools: installing ${PY_TOOLS[*]} into $VENV" >&2
    if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
        SUDO=""
        if [ "$(id -u)" -ne 0 ]; then
            SUDO="sudo"
        fi
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3 python3-venv >/dev/null 2>&1 \
            || { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
                $SUDO apt-get install -y -qq python3 python3-venv >/dev/null; }
    fi
    log=$(mktemp)
    if ! { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q "${PY_TOOLS[@]}"; } >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "monitoring-tools: could not install ${PY_TOOLS[*]} (needs python3 with venv, e.g. Debian's python3-venv, and PyPI)" >&2
        exit 1
    fi
    rm -f "$log"
fi

if $PRINT_VENV; then
    echo "$VENV"
fi
