#!/usr/bin/env bash
# Makes the patched crates the workspace builds with ([patch.crates-io] in
# Cargo.toml): each is downloaded from crates.io, checked against the
# SHA-256 its release has there, unpacked under third_party/ (ignored by
# git) and patched with patches/NAME-VERSION-*.patch. A crate already made
# from the same patches is left alone. scripts/setup.sh runs this, so `make
# dev`, `make test` and CI do; run it by hand before a plain `cargo build`
# in a fresh clone.
#
# openraft 0.9.25: patches/openraft-0.9.25-async-leader-append.patch lets
# the leader's core go on after writing its own log entries instead of
# awaiting their fsync, one client write at a time (docs/performance.md,
# "The stages of a write"). The leader's copy counts towards the commit
# quorum only once the log store reports it durable.
# patches/openraft-0.9.25-election-terms.patch (applied after it): a node
# that refuses a candidate with a shorter log campaigns above that term, and
# the longer timeout of a node that lost an election to a greater log ends
# once it follows a leader again (docs/performance.md, "7. Failover").
# patches/openraft-0.9.25-quiet-read-checks.patch (last): a member that does
# not answer a leadership check for reads is logged at DEBUG, not as one
# ERROR line per check while it is down.
set -euo pipefail
cd "$(dirname "$0")/.."

# name version sha256-of-the-.crate
CRATES=(
    "openraft 0.9.25 a97014fb78acb77be3a40ac2da305f6dd3a6b243f3a908ace87d29b3972eaafd"
)

for line in "${CRATES[@]}"; do
    read -r name version sha <<<"$line"
    dest=third_party/$name-$version
    patches=(patches/"$name-$version"-*.patch)
    [[ -e ${patches[0]} ]] || { echo "patched-crates: no patches/$name-$version-*.patch" >&2; exit 1; }
    stamp=$(cat "${patches[@]}" | sha256sum | cut -d' ' -f1)
    if [[ -f $dest/.kauri-patches && $(cat "$dest/.kauri-patches") == "$stamp" ]]; then
        continue
    fi
    if ! command -v curl >/dev/null 2>&1; then
        echo "patched-crates: installing curl" >&2
        SUDO=""
        [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq curl >/dev/null ||
            { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq curl >/dev/null; }
    fi
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    echo "patched-crates: $name $version from crates.io, with ${patches[*]}" >&2
    curl -fsSL --retry 3 -o "$work/crate.tar.gz" \
        "https://static.crates.io/crates/$name/$name-$version.crate"
    got=$(sha256sum "$work/crate.tar.gz" | cut -d' ' -f1)
    if [[ $got != "$sha" ]]; then
        echo "patched-crates: $name-$version.crate has SHA-256 $got, not $sha: refusing it" >&2
        exit 1
    fi
    tar -xzf "$work/crate.tar.gz" -C "$work"
    for p in "${patches[@]}"; do
        patch -s -d "$work/$name-$version" -p1 <"$p"
    done
    echo "$stamp" >"$work/$name-$version/.kauri-patches"
    mkdir -p third_party
    rm -rf "$dest"
    mv "$work/$name-$version" "$dest"
    rm -rf "$work"
    trap - EXIT
done
