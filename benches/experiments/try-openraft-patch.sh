#!/usr/bin/env bash
# Measures a kauri-node built with openraft 0.9.25 patched by
# openraft-0.9.25-async-leader-append.patch (beside this script) next to the
# stock build, with `kauri-bench create --local-cluster --stages`.
#
# openraft 0.9's core awaits the leader's own log flush inside every append
# (`RaftCore::append_to_log`), one client write at a time, so the leader
# takes one entry per fsync round trip. The patch lets the leader's core
# go on once its entries are written, and counts the leader's copy towards
# the commit quorum only when the log store reports them durable (a
# notification to the core), as followers' copies are counted only when
# they answer after their own flush. Followers still flush before they
# answer.
#
# Everything happens in a scratch directory (a clone of this checkout and
# a patched copy of the crate from cargo's registry); this checkout is not
# changed. This is an experiment: the node Kauri ships uses stock openraft.
#
#   benches/experiments/try-openraft-patch.sh    # LEVELS=1,16,64 DURATION=8
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
LEVELS=${LEVELS:-1,16,64}
DURATION=${DURATION:-8}
export TMPDIR=${BENCH_TMPDIR:-/var/tmp}
work=$(mktemp -d "$TMPDIR/kauri-openraft-patch.XXXXXX")
trap 'rm -rf "$work"' EXIT

cargo fetch --manifest-path "$repo/Cargo.toml" >/dev/null
src=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -maxdepth 2 -type d -name openraft-0.9.25 | head -1)
[[ -n $src ]] || { echo "openraft 0.9.25 is not in cargo's registry after cargo fetch" >&2; exit 1; }
cp -r "$src" "$work/openraft"
patch -d "$work/openraft" -p1 <"$here/openraft-0.9.25-async-leader-append.patch"
git clone -q "$repo" "$work/kauri"
printf '\n[patch.crates-io]\nopenraft = { path = "%s" }\n' "$work/openraft" >>"$work/kauri/Cargo.toml"

stock_target=${CARGO_TARGET_DIR:-$repo/target}
patched_target=$work/target
(cd "$repo" && CARGO_TARGET_DIR=$stock_target cargo build -q --release -p kauri-node -p kauri-bench)
(cd "$work/kauri" && CARGO_TARGET_DIR=$patched_target cargo build -q --release -p kauri-node)

for build in stock patched; do
    if [[ $build == stock ]]; then node=$stock_target/release/kauri-node; else node=$patched_target/release/kauri-node; fi
    echo "== $build openraft ($node)"
    "$stock_target/release/kauri-bench" create --local-cluster --tls --node-bin "$node" \
        --concurrency "$LEVELS" --duration-secs "$DURATION" --warmup-secs 2 --stages
done
