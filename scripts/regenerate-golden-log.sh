#!/usr/bin/env bash
# Regenerates node/src/registry/tests/golden/log.txt (the registry's golden
# log) after a deliberate change of behaviour: runs the ignored test that
# prints it and writes what it printed between its markers. Commit the file
# with the change and say why it changed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=node/src/registry/tests/golden/log.txt
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
cargo test -q -p kauri-node --lib regenerate_the_golden_log -- --ignored --nocapture --test-threads=1 >"$tmp"
sed -n '/^---- kauri golden log begins ----$/,/^---- kauri golden log ends ----$/p' "$tmp" |
    sed '1d;$d' >"$out.new"
if [ ! -s "$out.new" ]; then
    rm -f "$out.new"
    echo "regenerate-golden-log: the test printed no log" >&2
    exit 1
fi
mv "$out.new" "$out"
echo "regenerate-golden-log: wrote $out ($(wc -l <"$out") lines)"
