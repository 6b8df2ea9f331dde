#!/usr/bin/env bash
# Fuzzes the EPP gateway's framing, XML reader and command parser with afl
# for SECONDS (default 600), on the stable toolchain (docs/fuzzing.md).
#
#   scripts/fuzz-gateway.sh [SECONDS]
#
# Installs what is missing (cargo-afl, pinned, which builds the AFL++ it
# ships; make and a C compiler for that), builds gateway/fuzz's epp_frames
# with `cargo afl build --release` in a target directory of its own, frames
# the seeds (gateway/fuzz/seeds/xml/*.xml, plus framing cases made here and
# every saved input in gateway/fuzz/regressions/) into afl's input
# directory, fuzzes until the time is up, and prints afl's numbers. Exits
# non-zero when afl saved a crash or a hang, after replaying each crash to
# show its panic. Builds and fuzzing run under `nice -n ${KAURI_FUZZ_NICE:-19}`.
# KAURI_FUZZ_SKIP=xml-chars,element-names (gateway/fuzz/src/lib.rs) leaves
# out the checks of open findings, to look for others.
set -euo pipefail

secs="${1:-600}"
case "$secs" in '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;; esac
[ "$secs" -gt 0 ] || { echo "usage: $0 [SECONDS]  (more than 0)" >&2; exit 2; }

root="$(cd "$(dirname "$0")/.." && pwd)"
fuzz="$root/gateway/fuzz"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/kauri"
target="${KAURI_FUZZ_TARGET_DIR:-$cache/fuzz-target}"
input="$cache/fuzz-in/epp_frames"
output="$cache/fuzz-out/epp_frames-$(date +%Y%m%d-%H%M%S)"
nice=(nice -n "${KAURI_FUZZ_NICE:-19}")
cargo_afl_version=0.18.2

# --- what is missing -------------------------------------------------------
missing=()
command -v make >/dev/null 2>&1 || missing+=(make)
command -v cc >/dev/null 2>&1 || missing+=(gcc)
if [ ${#missing[@]} -gt 0 ]; then
    echo "fuzz-gateway: installing ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
        { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null; }
fi
# The crates the workspace builds patched (Cargo.toml's [patch.crates-io]).
"$(dirname "$0")/patched-crates.sh"
if [ "$(cargo afl --version 2>/dev/null | awk '{print $2}')" != "$cargo_afl_version" ]; then
    echo "fuzz-gateway: installing cargo-afl $cargo_afl_version (it builds its AFL++ too)" >&2
    env -u CARGO_TARGET_DIR "${nice[@]}" cargo install --locked --force "cargo-afl@$cargo_afl_version" >&2
fi
# cargo-afl builds AFL++ and its runtime per rustc version: after a
# toolchain update it has to build them again.
if cargo afl fuzz -h 2>&1 | grep -q "runtime was not built"; then
    echo "fuzz-gateway: building AFL++ for $(rustc --version)" >&2
    "${nice[@]}" cargo afl config --build --force >&2
fi

# --- the target ------------------------------------------------------------
echo "fuzz-gateway: building epp_frames in $target" >&2
CARGO_TARGET_DIR="$target" "${nice[@]}" cargo afl build --release \
    --manifest-path "$fuzz/Cargo.toml" --bin epp_frames >&2
bin="$target/release/epp_frames"

# --- the seeds, framed -----------------------------------------------------
# RFC 5734: a 4-byte big-endian length that counts itself, then the data.
header() {
    local n=$1
    printf "\\x$(printf %02x $((n >> 24 & 255)))\\x$(printf %02x $((n >> 16 & 255)))"
    printf "\\x$(printf %02x $((n >> 8 & 255)))\\x$(printf %02x $((n & 255)))"
}
frame() { header $(($(wc -c <"$1") + 4)); cat "$1"; }

rm -rf "$input"
mkdir -p "$input" "$(dirname "$output")"
seeds="$fuzz/seeds/xml"
for f in "$seeds"/*.xml; do
    frame "$f" >"$input/$(basename "$f" .xml)"
done
# A whole session on one connection.
for s in rfc5730-hello rfc5730-login rfc5731-domain-check rfc8748-fee-check rfc5730-logout; do
    frame "$seeds/$s.xml"
done >"$input/frames-session"
# Framing the reader must refuse or stop at.
login_bytes=$(wc -c <"$seeds/rfc5730-login.xml")
{ header $((login_bytes + 4)); head -c $((login_bytes - 40)) "$seeds/rfc5730-login.xml"; } >"$input/frames-truncated"
header 2 >"$input/frames-too-short"
{ header 65537; printf '<epp/>'; } >"$input/frames-too-long"
printf '\x00\x00' >"$input/frames-partial-header"
{ header 4; frame "$seeds/rfc5730-hello.xml"; } >"$input/frames-empty-then-hello"
if [ -d "$fuzz/regressions" ]; then
    for f in "$fuzz/regressions"/*; do
        [ -f "$f" ] && [ "$(basename "$f")" != README.md ] && cp "$f" "$input/regression-$(basename "$f")"
    done
fi
echo "fuzz-gateway: $(ls "$input" | wc -l) seeds in $input" >&2

# --- fuzzing ---------------------------------------------------------------
# Containers: no CPU frequency scaling to check, a core_pattern afl cannot
# change, and cores shared with other work (no pinning).
export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1
echo "fuzz-gateway: fuzzing for ${secs}s into $output (log: $output.log)" >&2
# -t: an input that takes over a second is a hang; -m: a run that needs
# more than 256 MB of address space is a crash.
status=0
"${nice[@]}" cargo afl fuzz -i "$input" -o "$output" -x "$fuzz/epp.dict" \
    -V "$secs" -t 1000 -m 256 -- "$bin" >"$output.log" 2>&1 || status=$?
stats="$output/default/fuzzer_stats"
if [ ! -f "$stats" ]; then
    tail -n 30 "$output.log" >&2
    echo "fuzz-gateway: afl-fuzz ended ($status) without fuzzer_stats" >&2
    exit 1
fi

field() { awk -F' *: *' -v k="$1" '$1 == k {print $2}' "$stats"; }
for k in run_time execs_done execs_per_sec corpus_count saved_crashes saved_hangs stability bitmap_cvg; do
    printf '%-14s %s\n' "$k" "$(field "$k")"
done
crashes=$(field saved_crashes)
hangs=$(field saved_hangs)
if [ "${crashes:-0}" -gt 0 ]; then
    # Each crash's panic, with the quoted values taken out so that crashes
    # of one kind group together: count, panic, one file that shows it.
    echo "fuzz-gateway: crashes in $output/default/crashes, by panic:" >&2
    for f in "$output"/default/crashes/id:*; do
        msg=$("$bin" <"$f" 2>&1 | awk '/panicked at/ {sub(/.*panicked at /, ""); loc = $0; getline; print loc " " $0; exit}' || true)
        msg=$(printf '%s' "${msg:-(no panic message)}" | sed -E "s/'[^']*'/'..'/g; s/\{[^}]*\}/{..}/g" | cut -c1-140)
        printf '%s\t%s\n' "$msg" "$f"
    done | sort | awk -F'\t' '{n[$1]++; if (!($1 in ex)) ex[$1] = $2} END {for (m in n) printf "  %4d  %s\n        e.g. %s\n", n[m], m, ex[m]}' >&2
    echo "fuzz-gateway: replay one with: $bin < FILE; keep it under gateway/fuzz/regressions/ (the fuzz_seeds test replays them)" >&2
fi
if [ "${hangs:-0}" -gt 0 ]; then
    echo "fuzz-gateway: hangs in $output/default/hangs (replay: $bin < FILE)" >&2
fi
if [ "${crashes:-0}" -gt 0 ] || [ "${hangs:-0}" -gt 0 ] || [ "$status" -ne 0 ]; then
    exit 1
fi
echo "fuzz-gateway: no crashes, no hangs" >&2
