#!/usr/bin/env bash
# Installs what the EPP gateway's tests run that the project did not write:
# xmllint (Debian's libxml2-utils), which validates every response against
# the official EPP schemas; Perl's Net::EPP (libnet-epp-perl) and
# InternetNZ's pyepp (PyPI, pinned, in a virtualenv of its own), real
# registrar clients. Prints the virtualenv's python on stdout. Idempotent
# and quiet when all is there; says what it installs on stderr and fails
# loudly when it cannot.
set -euo pipefail

venv="${KAURI_EPP_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/kauri/epp-venv}"
# pyepp and what it pulls in, as pip freeze prints them.
pins=(pyepp==0.3.2 beautifulsoup4==4.15.0 click==8.5.1 Jinja2==3.1.6 lxml==6.1.3 MarkupSafe==3.0.4 soupsieve==4.1.3 typing_extensions==4.16.0)

missing=()
command -v xmllint >/dev/null 2>&1 || missing+=(libxml2-utils)
perl -MNet::EPP::Simple -e1 >/dev/null 2>&1 || missing+=(libnet-epp-perl)

if [ ${#missing[@]} -gt 0 ]; then
    echo "epp-tools: installing ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
        { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null; }
fi
command -v xmllint >/dev/null
perl -MNet::EPP::Simple -e1

stamp="$venv/.kauri-pins"
want="$(printf '%s\n' "${pins[@]}")"
if ! { [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; }; then
    echo "epp-tools: making $venv with ${pins[*]}" >&2
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        SUDO=""
        [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$venv" >/dev/null
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check "${pins[@]}" >&2
    echo "$want" >"$stamp"
fi
echo "$venv/bin/python"
