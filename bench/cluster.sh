#!/usr/bin/env bash
# `make bench-cluster`: the profile pipeline on 10M events, locally and on a Ballista
# cluster on 127.0.0.1 (a scheduler and two executors of the same binary), in one
# run. Reports wall time, the driver's peak memory and each executor's, checks that
# both runs published the same CSVs, and writes docs/benchmarks-cluster.md (the table,
# then the prose of bench/cluster-notes.md).
#
#   BENCH_CLUSTER_EVENTS=10000000   events (the `short` shape of `make bench`)
#   BENCH_PROFILE=release           cargo profile of the `--features cluster` build
set -euo pipefail
cd "$(dirname "$0")/.."

events=${BENCH_CLUSTER_EVENTS:-10000000}
profile=${BENCH_PROFILE:-release}
cache=bench/cache
mkdir -p "$cache"
cargo build --locked --profile "$profile" --features cluster --bin userlens
bin=$PWD/target/$profile/userlens
generator=$(cat crates/synth/src/*.rs | python3 -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest()[:8])')
data=$cache/events_${events}_short_$generator.csv
if [ ! -f "$data" ]; then
  echo "generating ~$events events into $data (once)"
  "$bin" generate --force --events "$events" --seed 42 --out "$data.tmp" >/dev/null
  mv "$data.tmp" "$data"
fi

work=$(mktemp -d "$cache/cluster.XXXXXX")
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 600); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "nothing listens on $1" >&2; exit 1; }

sport=$(free_port)
"$bin" cluster scheduler --bind "127.0.0.1:$sport" 2>"$work/scheduler.log" &
pids+=($!)
wait_port "$sport"
executors=()
for i in 0 1; do
  port=$(free_port); grpc=$(free_port)
  mkdir -p "$work/executor-$i"
  RUST_LOG=info "$bin" cluster executor --scheduler "127.0.0.1:$sport" --port "$port" --grpc-port "$grpc" \
    --concurrency 1 --heartbeat 5 --work-dir "$work/executor-$i" 2>"$work/executor-$i.log" &
  pids+=($!); executors+=($!)
  wait_port "$port"
done
sleep 6 # a heartbeat each

run() { # name, extra args...
  local name=$1; shift
  python3 bench/measure.py "$bin" profile "$data" --out "$work/out-$name" --runs "$work/runs-$name" -q "$@"
}
echo "local, events in memory"
local_json=$(run local)
echo "local, out of core in parts of a cluster's size"
parts_json=$(run parts --set ingest.out_of_core_above_mb=64)
echo "cluster: ballista://127.0.0.1:$sport"
cluster_json=$(run cluster --engine "ballista://127.0.0.1:$sport")
echo "cluster, k-means E-steps too (personas.cluster_lloyd_above=0)"
kmeans_json=$(run kmeans --engine "ballista://127.0.0.1:$sport" --set personas.cluster_lloyd_above=0)
executor_mib=()
for pid in "${executors[@]}"; do
  executor_mib+=($(awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$pid/status"))
done
tasks=$(cat "$work"/executor-*.log | grep -cE "userlens: .+ of part [0-9]+ \(" || true)

same=yes
for f in "$work"/out-local/*.csv; do
  for run in cluster kmeans; do
    cmp -s "$f" "$work/out-$run/$(basename "$f")" || { same=no; echo "differs: $run/$(basename "$f")"; }
  done
done

python3 - "$events" "$local_json" "$parts_json" "$cluster_json" "$kmeans_json" "${executor_mib[0]}" "${executor_mib[1]}" "$tasks" "$same" <<'PY'
import json, sys, subprocess
events, local, parts, cluster, kmeans = int(sys.argv[1]), *map(json.loads, sys.argv[2:6])
e0, e1, tasks, same = sys.argv[6], sys.argv[7], sys.argv[8], sys.argv[9]
rows = [
    ("local, in memory", local),
    ("local, out of core (64 MB parts)", parts),
    ("Ballista, 2 executors", cluster),
    ("Ballista, k-means E-steps too", kmeans),
]
lines = [
    "# Cluster benchmark",
    "",
    "Written by `make bench-cluster` (bench/cluster.sh); prose in bench/cluster-notes.md.",
    f"The profile pipeline on {events:,} generated events (the `short` shape), on this "
    f"machine ({subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores), "
    "locally and on a Ballista scheduler with two executors on 127.0.0.1.",
    "",
    "| run | wall s | driver CPU s | driver peak MiB | vs local |",
    "|---|---:|---:|---:|---:|",
]
for name, r in rows:
    lines.append(f"| {name} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['peak_rss_mib']:.0f} | {r['wall_s'] / local['wall_s']:.2f}× |")
lines += [
    "",
    f"- Executors' peak memory: {e0} MiB and {e1} MiB; tasks run (features at two dates, prediction inputs, k-means E-steps): {tasks}.",
    f"- Every published CSV of both cluster runs the same as the local run's: {same}.",
    f"- Cluster run against the local in-memory run: {cluster['wall_s'] / local['wall_s']:.2f}× "
    "the wall time (target: at most 1.5×).",
]
notes = open("bench/cluster-notes.md").read()
open("docs/benchmarks-cluster.md", "w").write("\n".join(lines) + "\n\n" + notes)
print("\n".join(lines))
PY
[ "$same" = yes ]
