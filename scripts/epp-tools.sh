#!/usr/bin/env bash
# Installs what the EPP gateway's tests run that the project did not write:
# xmllint (Debian's libxml2-utils), which validates every response against
# the official EPP schemas, and Perl's Net::EPP (libnet-epp-perl), a real
# registrar client. Idempotent and quiet when it is already there;
# says what it installs on stderr and fails loudly when it cannot.
set -euo pipefail

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
