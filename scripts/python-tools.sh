#!/usr/bin/env bash
# Makes the Python virtualenv with the stock gRPC tools that the tests use as
# a client Kauri did not write (grpcio, grpcio-health-checking,
# grpcio-reflection), at pinned versions, and prints its python's path on
# stdout. Idempotent and quiet when the venv already has those versions.
#
#   scripts/python-tools.sh              # the venv's python, e.g. for a test
#   "$(scripts/python-tools.sh)" node/tests/python/stock_client.py --help
#
# The venv lives in ${XDG_CACHE_HOME:-$HOME/.cache}/kauri/venv (override
# with KAURI_PYTHON_VENV). Needs python3 (3.9 or newer) and PyPI; installs
# Debian's python3-venv when `python3 -m venv` does not work.
set -euo pipefail

venv="${KAURI_PYTHON_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/kauri/venv}"
# One pin per line, exactly as pip freeze prints them; bump together
# (grpcio-health-checking and grpcio-reflection require the same grpcio).
pins=(
    grpcio==1.85.1
    grpcio-health-checking==1.85.1
    grpcio-reflection==1.85.1
    protobuf==7.36.2
)
stamp="$venv/.kauri-pins"
want="$(printf '%s\n' "${pins[@]}")"

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "$venv/bin/python"
    exit 0
fi

if ! command -v python3 >/dev/null 2>&1; then
    echo "python-tools: python3 not found; install Python 3.9 or newer (Debian: apt-get install python3 python3-venv)" >&2
    exit 1
fi

make_venv() {
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv" >/dev/null 2>&1
}

if ! make_venv; then
    echo "python-tools: python3 -m venv failed; installing python3-venv" >&2
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        SUDO="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq python3-venv >/dev/null
    if ! make_venv; then
        echo "python-tools: python3 -m venv still fails after installing python3-venv" >&2
        exit 1
    fi
fi

echo "python-tools: installing ${pins[*]} into $venv" >&2
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pins[@]}" >&2; then
    echo "python-tools: pip could not install ${pins[*]} (is PyPI reachable?)" >&2
    exit 1
fi
echo "$want" >"$stamp"
echo "$venv/bin/python"
