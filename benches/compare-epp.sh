#!/usr/bin/env bash
# The EPP gateway next to the raw gRPC API, side by side on one cluster.
#
# In one run: builds kauri-node, kauri-gateway and kauri-bench in release
# mode, makes development certificates (`kauri-bench epp certs`: what `kauri
# dev certs` writes, plus staff and registrar certificates for "bench"),
# starts a 3-node cluster over mutual TLS and one kauri-gateway in front of
# it, all on 127.0.0.1, then measures with the same closed-loop driver:
#   - at each concurrency level, domain creates over gRPC (`kauri-bench
#     create` as registrar "bench") and through the gateway in EPP
#     (`kauri-bench epp create`, one session per worker, spread over
#     REGISTRARS registrars), on the same cluster, in ROUNDS rounds that
#     alternate which goes first (gRPC, EPP; EPP, gRPC; ...), so that a
#     cluster warming up or a disk slowing down weighs on both alike;
#   - domain checks and infos the same way (gRPC reads linearizable; the
#     gateway's checks bounded-stale, its default, and its infos
#     linearizable);
#   - SESSIONS idle EPP sessions logged in on a fresh gateway, with its
#     resident memory (VmRSS from /proc/PID/status) before and after;
# and prints the table (also written to $RESULTS/table.md).
#
# Every process is started by this script and stopped by its PID at the end.
#
# Settings (environment):
#   LEVELS=16,64          concurrency levels
#   KINDS=create,check,info  what is measured at each level
#   DURATION=10           seconds per round
#   ROUNDS=3              rounds per level and system (the report combines
#                         them: the rate over all rounds, the median round's
#                         percentiles, and each round's EPP/gRPC create ratio)
#   WARMUP=3              unmeasured seconds before each round
#   SESSIONS=1000         idle sessions
#   REGISTRARS=40         EPP registrars (the registry allows each 32 sessions)
#   ROUND_REGISTRARS=fewest  how many of them the sessions of a measured round
#                         spread over: "fewest" is the fewest that hold the
#                         round's sessions (1 up to c=32, 2 at c=64), as the
#                         gRPC side acts for its one registrar "bench"; a
#                         number spreads them over that many (each create
#                         then touches another registrar's account and
#                         contact, which costs the cluster more per create:
#                         docs/performance.md, EPP gateway)
#   RESULTS=benches/results/epp-<UTC time>   where the JSON, log and table go
#   BENCH_TMPDIR=/var/tmp  parent of the cluster's data directories
#   GATEWAY_WORKERS=1     the gateway's --worker-threads (0: one per CPU).
#                         Here the gateway shares two vCPUs with three
#                         nodes and the load generator: one thread leaves
#                         the nodes the CPUs and saves a hand-off per
#                         command (docs/performance.md, EPP gateway)
#   NODE_BIN, GATEWAY_BIN  other kauri-node / kauri-gateway builds to measure
#                         (default: the release builds made here)
#   CLUSTER_CPUS, CLIENT_CPUS  CPU lists (taskset -c) to keep the three nodes
#                         apart from the gateway and kauri-bench, as when
#                         gateways run on their own hosts: for example
#                         CLUSTER_CPUS=0 CLIENT_CPUS=1 (default: unpinned)
#
# A quick check: LEVELS=4 DURATION=2 ROUNDS=1 WARMUP=1 SESSIONS=50 benches/compare-epp.sh
set -euo pipefail
cd "$(dirname "$0")/.."

LEVELS=${LEVELS:-16,64}
KINDS=${KINDS:-create,check,info}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-3}
SESSIONS=${SESSIONS:-1000}
REGISTRARS=${REGISTRARS:-40}
ROUND_REGISTRARS=${ROUND_REGISTRARS:-fewest}
GATEWAY_WORKERS=${GATEWAY_WORKERS:-1}
RESULTS=${RESULTS:-benches/results/epp-$(date -u +%Y%m%dT%H%M%SZ)}
BENCH_TMPDIR=${BENCH_TMPDIR:-/var/tmp}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

# The registry allows a registrar 32 open sessions (MAX_SESSIONS_PER_REGISTRAR
# in node/src/registry/session.rs); the gateway is started with the same.
max_sessions=$((REGISTRARS * 32))
if [[ $ROUND_REGISTRARS != fewest ]] && ! [[ $ROUND_REGISTRARS =~ ^[1-9][0-9]*$ && $ROUND_REGISTRARS -le $REGISTRARS ]]; then
    echo "ROUND_REGISTRARS=$ROUND_REGISTRARS: give \"fewest\" or 1 to REGISTRARS=$REGISTRARS" >&2
    exit 1
fi
for n in ${LEVELS//,/ } "$SESSIONS"; do
    if ((n > max_sessions)); then
        echo "$n sessions need more than REGISTRARS=$REGISTRARS registrars (32 sessions each)" >&2
        exit 1
    fi
done

say() { printf '\n== %s\n' "$*"; }

# Pinning (CLUSTER_CPUS / CLIENT_CPUS): a command prefix for each side.
on_cluster=() on_clients=()
if [[ -n ${CLUSTER_CPUS:-} || -n ${CLIENT_CPUS:-} ]]; then
    if [[ -z ${CLUSTER_CPUS:-} || -z ${CLIENT_CPUS:-} ]]; then
        echo "set both CLUSTER_CPUS and CLIENT_CPUS, or neither" >&2
        exit 1
    fi
    command -v taskset >/dev/null || { echo "CLUSTER_CPUS needs taskset (util-linux)" >&2; exit 1; }
    on_cluster=(taskset -c "$CLUSTER_CPUS")
    on_clients=(taskset -c "$CLIENT_CPUS")
fi

say "release build"
scripts/patched-crates.sh
cargo build --release -p kauri-node -p kauri-gateway -p kauri-bench
BENCH=$CARGO_TARGET_DIR/release/kauri-bench
NODE=${NODE_BIN:-$CARGO_TARGET_DIR/release/kauri-node}
GATEWAY=${GATEWAY_BIN:-$CARGO_TARGET_DIR/release/kauri-gateway}

mkdir -p "$RESULTS" "$BENCH_TMPDIR"
RESULTS=$(cd "$RESULTS" && pwd)
WORK=$(mktemp -d "$BENCH_TMPDIR/kauri-epp.XXXXXX")
if [[ $(stat -f -c %T "$WORK") == tmpfs ]]; then
    echo "$WORK is on tmpfs, where fsync costs nothing: set BENCH_TMPDIR to a disk" >&2
    rm -rf "$WORK"
    exit 1
fi
LOG=$RESULTS/log.txt
: >"$LOG"
rm -f "$RESULTS"/{grpc,epp}-*.json

# Everything this script starts, stopped by PID on the way out.
PIDS=()
stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}
cleanup() {
    stop_all
    # Keep the logs of the cluster and the gateways with the results.
    cp "$WORK"/*.log "$RESULTS"/ 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# 1000 client connections in one process, and as many in the gateway.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# A loopback port nothing listens on, below the usual ephemeral range
# (32768-60999), so no outgoing connection takes it before it is bound.
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
}

wait_listening() {
    local addr=$1 what=$2 i
    for i in $(seq 1 300); do
        if (exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "$what does not listen on $addr after 30 s" >&2
    return 1
}

# CPU accounting: the processes watched (name per PID), their CPU ticks,
# and this shell's children's (kauri-bench's) CPU, so that the log shows
# what each run cost every process.
declare -A WATCHED=()
TCK=$(getconf CLK_TCK)
cpu_ticks() {
    local pid
    for pid in "${!WATCHED[@]}"; do
        echo "$pid $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)"
    done
}
# (`times` in this shell, not in a $(...) subshell, which has no children.)
children_cpu() {
    times >"$WORK/times"
    awk 'NR == 2 {
        split($1, u, /[ms]/); split($2, s, /[ms]/)
        printf "%.2f", u[1] * 60 + u[2] + s[1] * 60 + s[2]
    }' "$WORK/times"
}

# Runs a kauri-bench command against the cluster, logging it and the CPU
# seconds it cost each watched process.
bench() {
    echo "+ kauri-bench $*" | tee -a "$LOG"
    local before pid ticks line
    before=$(cpu_ticks)
    children_cpu >"$WORK/cpu-before"
    "${on_clients[@]}" "$BENCH" --endpoints "$ENDPOINTS" "$@" 2>&1 | tee -a "$LOG"
    children_cpu >"$WORK/cpu-after"
    line="cpu seconds:"
    while read -r pid ticks; do
        local now
        now=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo "$ticks")
        line+=" ${WATCHED[$pid]} $(awk -v a="$ticks" -v b="$now" -v t="$TCK" 'BEGIN {printf "%.2f", (b - a) / t}'),"
    done <<<"$before"
    line+=" kauri-bench+tee $(awk 'NR == FNR {a = $1; next} {printf "%.2f", $1 - a}' "$WORK/cpu-before" "$WORK/cpu-after")"
    echo "  $line" | tee -a "$LOG"
}

say "machine" | tee -a "$LOG"
{
    echo "cpu: $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "memory: $(free -g | awk '/^Mem:/ {print $2}') GiB"
    echo "kernel: $(uname -r)"
    echo "disk under $WORK: $(df --output=source,fstype "$WORK" | tail -1)"
    echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "kauri: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
    echo "kauri-node: $NODE"
    echo "kauri-gateway: $GATEWAY (--worker-threads $GATEWAY_WORKERS)"
    if ((${#on_cluster[@]})); then
        echo "pinned: nodes on CPUs $CLUSTER_CPUS, gateway and kauri-bench on CPUs $CLIENT_CPUS"
    else
        echo "pinned: no (nodes, gateway and kauri-bench share every CPU)"
    fi
} | tee -a "$LOG"

say "certificates, a 3-node mutual-TLS cluster and a gateway" | tee -a "$LOG"
CERTS=$WORK/certs
"$BENCH" epp certs --out "$CERTS" --cluster bench | tee -a "$LOG"
ports=()
for i in 1 2 3; do ports+=("$(free_port)"); done
ENDPOINTS="127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
PEERS="1=127.0.0.1:${ports[0]},2=127.0.0.1:${ports[1]},3=127.0.0.1:${ports[2]}"
for i in 1 2 3; do
    mkdir -p "$WORK/node$i"
    "${on_cluster[@]}" "$NODE" --id "$i" --grpc-addr "127.0.0.1:${ports[$((i - 1))]}" \
        --metrics-addr "127.0.0.1:$(free_port)" --data-dir "$WORK/node$i" \
        --peers "$PEERS" --site local --cluster-name bench \
        --tls-ca "$CERTS/ca.pem" --tls-cert "$CERTS/node$i.pem" --tls-key "$CERTS/node$i.key" \
        </dev/null >"$WORK/node$i.log" 2>&1 &
    PIDS+=($!)
    WATCHED[$!]=node$i
done
echo "nodes: $ENDPOINTS (PIDs ${PIDS[*]})" | tee -a "$LOG"

# Starts a kauri-gateway on a fresh port; sets GW_ADDR and GW_PID.
start_gateway() {
    local name=$1
    GW_ADDR=127.0.0.1:$(free_port)
    "${on_clients[@]}" "$GATEWAY" --endpoints "$ENDPOINTS" --epp-addr "$GW_ADDR" \
        --tls-cert "$CERTS/epp.pem" --tls-key "$CERTS/epp.key" --identity "$CERTS/gateway" \
        --metrics-addr "127.0.0.1:$(free_port)" \
        --max-sessions-per-registrar 32 --max-connections 4096 \
        --worker-threads "$GATEWAY_WORKERS" \
        </dev/null >"$WORK/$name.log" 2>&1 &
    GW_PID=$!
    PIDS+=("$GW_PID")
    WATCHED[$GW_PID]=$name
    wait_listening "$GW_ADDR" kauri-gateway
    echo "kauri-gateway ($name): EPP on $GW_ADDR, PID $GW_PID" | tee -a "$LOG"
}
start_gateway gateway
epp=(--ca "$CERTS/ca.pem" --registrars "$REGISTRARS")
grpc=(--identity "$CERTS/bench-registrar" --staff-identity "$CERTS/bench-staff")

say "fixtures: the TLD, registrar bench (gRPC) and $REGISTRARS EPP registrars" | tee -a "$LOG"
bench epp setup --addr "$GW_ADDR" "${epp[@]}" --staff-identity "$CERTS/bench-staff"

level=(--duration-secs "$DURATION" --warmup-secs "$WARMUP")
IFS=, read -r -a levels <<<"$LEVELS"
# One round of `kind` (create, check, info) at concurrency $2 over gRPC.
grpc_round() {
    local kind=$1 c=$2 mix=()
    [[ $kind == create ]] || mix=(--mix "$kind=1")
    bench create "${grpc[@]}" "${mix[@]}" --concurrency "$c" "${level[@]}" \
        --json "$RESULTS/grpc-$kind.json"
}
# ... and through the gateway in EPP, the sessions spread over
# ROUND_REGISTRARS registrars.
epp_round() {
    local kind=$1 c=$2 spread=$ROUND_REGISTRARS
    [[ $spread == fewest ]] && spread=$(((c + 31) / 32))
    bench epp "$kind" --addr "$GW_ADDR" --ca "$CERTS/ca.pem" --registrars "$spread" \
        --concurrency "$c" "${level[@]}" --json "$RESULTS/epp-$kind.json"
}
IFS=, read -r -a kinds <<<"$KINDS"
for kind in "${kinds[@]}"; do
    case $kind in
    create | check | info) ;;
    *)
        echo "KINDS: $kind is not create, check or info" >&2
        exit 1
        ;;
    esac
    for c in "${levels[@]}"; do
        for ((round = 1; round <= ROUNDS; round++)); do
            if ((round % 2)); then
                say "concurrency $c: ${kind}s, round $round of $ROUNDS: gRPC then EPP" | tee -a "$LOG"
                grpc_round "$kind" "$c"
                epp_round "$kind" "$c"
            else
                say "concurrency $c: ${kind}s, round $round of $ROUNDS: EPP then gRPC" | tee -a "$LOG"
                epp_round "$kind" "$c"
                grpc_round "$kind" "$c"
            fi
        done
    done
done

say "$SESSIONS idle sessions on a fresh gateway" | tee -a "$LOG"
kill -TERM "$GW_PID"
wait "$GW_PID" 2>/dev/null || true
unset "WATCHED[$GW_PID]"
start_gateway gateway-idle
bench epp idle --addr "$GW_ADDR" "${epp[@]}" --sessions "$SESSIONS" --gateway-pid "$GW_PID" \
    --json "$RESULTS/epp-idle.json"

say "gRPC vs EPP" | tee -a "$LOG"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$LOG"
"$BENCH" epp report --dir "$RESULTS" | tee "$RESULTS/table.md"
echo
echo "results: $RESULTS (table.md, log.txt, *.json, node and gateway logs)"
