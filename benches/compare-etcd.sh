#!/usr/bin/env bash
# Kauri vs etcd, side by side on this machine (issue #4).
#
# In one run: installs Debian's etcd-server (and etcd-client, and
# protobuf-compiler for the etcd client crate) when missing, builds
# kauri-node and kauri-bench in release mode, then measures both systems
# with the same tool, the same closed-loop driver and the same failover
# procedure:
#   - closed-loop writes at each concurrency level: Kauri domain creates vs
#     etcd puts of unique keys with a 256-byte value, each level on a fresh
#     3-node cluster, the two systems interleaved level by level and never
#     running at the same time;
#   - the leader SIGKILLed KILLS times under a steady write load, on each
#     system: write unavailability min/median/max, lost and duplicated writes;
# once in plain text and once with both systems over mutual TLS (SECURITY),
# and prints a table per run (also written to $RESULTS/table.md).
#
# Both systems run with fsync on: Kauri with its default synced log appends,
# etcd always fsyncs its WAL. Data directories live under BENCH_TMPDIR, which
# must be on a real disk (not tmpfs). etcd's flags and the reason for each:
# `kauri-bench etcd settings`. All traffic stays on 127.0.0.1; every process
# is started and killed by PID by kauri-bench.
#
# Settings (environment):
#   LEVELS=1,16,64        concurrency levels
#   DURATION=15           seconds per level
#   WARMUP=3              unmeasured seconds before each level
#   VALUE_BYTES=256       etcd value size (a Kauri create proposal is ~250 bytes)
#   KILLS=5               leader kills per system
#   FAILOVER_CONCURRENCY=8  writes in flight during the failover runs
#   SETTLE_MS=2000        steady load before each kill
#   SECURITY=plain,tls    the runs: both systems in plain text, then both
#                         over mutual TLS between peers and to clients
#                         (certificates of a development CA made per run;
#                         `kauri-bench etcd put --help` names etcd's flags)
#   RESULTS=benches/results/<UTC time>   where the JSON, log and tables go
#   BENCH_TMPDIR=/var/tmp  parent of the clusters' data directories
#
# A quick check: LEVELS=1,4 DURATION=2 WARMUP=1 KILLS=1 benches/compare-etcd.sh
set -euo pipefail
cd "$(dirname "$0")/.."

LEVELS=${LEVELS:-1,16,64}
DURATION=${DURATION:-15}
WARMUP=${WARMUP:-3}
VALUE_BYTES=${VALUE_BYTES:-256}
KILLS=${KILLS:-5}
SECURITY=${SECURITY:-plain,tls}
FAILOVER_CONCURRENCY=${FAILOVER_CONCURRENCY:-8}
SETTLE_MS=${SETTLE_MS:-2000}
RESULTS=${RESULTS:-benches/results/$(date -u +%Y%m%dT%H%M%SZ)}
BENCH_TMPDIR=${BENCH_TMPDIR:-/var/tmp}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

say() { printf '\n== %s\n' "$*"; }

say "system packages"
missing=()
command -v etcd >/dev/null || missing+=(etcd-server)
command -v etcdctl >/dev/null || missing+=(etcd-client)
command -v protoc >/dev/null || missing+=(protobuf-compiler)
if ((${#missing[@]})); then
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
ETCD=$(command -v etcd)
"$ETCD" --version | sed -n 1p

say "release build"
scripts/patched-crates.sh
cargo build --release -p kauri-node -p kauri-bench --features kauri-bench/etcd
BENCH=$CARGO_TARGET_DIR/release/kauri-bench
NODE=$CARGO_TARGET_DIR/release/kauri-node

mkdir -p "$RESULTS" "$BENCH_TMPDIR"
RESULTS=$(cd "$RESULTS" && pwd)
WORK=$(mktemp -d "$BENCH_TMPDIR/kauri-vs-etcd.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
if [[ $(stat -f -c %T "$WORK") == tmpfs ]]; then
    echo "$WORK is on tmpfs, where fsync costs nothing: set BENCH_TMPDIR to a disk" >&2
    exit 1
fi
LOG=$RESULTS/log.txt
: >"$LOG"

# Runs a kauri-bench command with cluster data under $WORK, logging it.
bench() {
    echo "+ kauri-bench $*" | tee -a "$LOG"
    TMPDIR=$WORK "$BENCH" "$@" 2>&1 | tee -a "$LOG"
}

say "machine" | tee -a "$LOG"
{
    echo "cpu: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "memory: $(free -g | awk '/^Mem:/ {print $2}') GiB"
    echo "kernel: $(uname -r)"
    echo "disk under $WORK: $(df --output=source,fstype "$WORK" | tail -1)"
    echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "etcd: $("$ETCD" --version | sed -n 1p)"
    echo "kauri: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
    # The floor under every acknowledged write on both systems: one 4 KiB
    # synchronous write.
    dd if=/dev/zero of="$WORK/fsync-probe" bs=4k count=200 oflag=dsync 2>&1 |
        awk '/copied/ {printf "synchronous 4 KiB writes: %.2f ms each\n", $(NF-3) * 1000 / 200}'
    rm -f "$WORK/fsync-probe"
} | tee -a "$LOG"

say "etcd settings" | tee -a "$LOG"
bench etcd settings

IFS=, read -r -a levels <<<"$LEVELS"
IFS=, read -r -a modes <<<"$SECURITY"
# A violation (lost or duplicated writes) makes a failover run exit
# non-zero: finish the run and the tables, then report it.
status=0
for mode in "${modes[@]}"; do
    case $mode in
    plain) tls=() ;;
    tls) tls=(--tls) ;;
    *)
        echo "SECURITY names plain and tls, not $mode" >&2
        exit 2
        ;;
    esac
    dir=$RESULTS/$mode
    mkdir -p "$dir"
    rm -f "$dir"/{kauri,etcd}-{load,failover}.json
    for c in "${levels[@]}"; do
        say "$mode, concurrency $c: etcd puts, then Kauri creates (fresh clusters)" | tee -a "$LOG"
        bench etcd put --local-cluster "${tls[@]}" --etcd-bin "$ETCD" --value-bytes "$VALUE_BYTES" \
            --concurrency "$c" --duration-secs "$DURATION" --warmup-secs "$WARMUP" \
            --json "$dir/etcd-load.json"
        bench create --local-cluster "${tls[@]}" --node-bin "$NODE" \
            --concurrency "$c" --duration-secs "$DURATION" --warmup-secs "$WARMUP" \
            --json "$dir/kauri-load.json"
    done
    say "$mode, failover: etcd" | tee -a "$LOG"
    bench etcd failover "${tls[@]}" --etcd-bin "$ETCD" --value-bytes "$VALUE_BYTES" \
        --kills "$KILLS" --concurrency "$FAILOVER_CONCURRENCY" --settle-ms "$SETTLE_MS" \
        --json "$dir/etcd-failover.json" || status=1
    say "$mode, failover: Kauri" | tee -a "$LOG"
    bench failover "${tls[@]}" --node-bin "$NODE" --kills "$KILLS" \
        --concurrency "$FAILOVER_CONCURRENCY" --settle-ms "$SETTLE_MS" \
        --json "$dir/kauri-failover.json" || status=1
done

say "Kauri vs etcd" | tee -a "$LOG"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$LOG"
for mode in "${modes[@]}"; do
    case $mode in
    plain) echo "### Plain text (no TLS on either system)" ;;
    tls) echo "### Mutual TLS between peers and to clients (both systems)" ;;
    esac
    echo
    "$BENCH" report --dir "$RESULTS/$mode"
    echo
done | tee "$RESULTS/table.md"
echo "results: $RESULTS (table.md, log.txt, plain/ and tls/ *.json)"
exit "$status"
