#!/usr/bin/env bash
# `make bench`: a whole profile run on ~10M generated events against the polars floor
# (scan + group-by of the same file). Prints a table and writes docs/benchmarks.md.
#
#   BENCH_EVENTS=10000000   events to generate (cached under bench/cache/)
#   BENCH_PROFILE=dist      cargo profile (dist: LTO + one codegen unit; release: quicker build)
set -euo pipefail
cd "$(dirname "$0")/.."

events=${BENCH_EVENTS:-10000000}
profile=${BENCH_PROFILE:-dist}
cache=bench/cache
mkdir -p "$cache"

cargo build --locked --profile "$profile" --bin userlens --example polars_floor
cargo build --locked --profile "$profile" -p userlens-predict --example stats_bench
bin=target/$profile/userlens
floor=target/$profile/examples/polars_floor

data=$cache/events_$events.csv
if [ ! -f "$data" ]; then
  echo "generating ~$events events into $data (once)"
  "$bin" generate --events "$events" --seed 42 --out "$data" >/dev/null
fi
rows=$(($(wc -l <"$data") - 1))
size=$(du -h "$data" | cut -f1)

echo "polars floor (scan + group-by)"
floor_json=$(python3 bench/measure.py "$floor" "$data")
echo "userlens profile (whole pipeline)"
rm -rf "$cache/out" "$cache/runs"
run_json=$(python3 bench/measure.py "$bin" profile "$data" --out "$cache/out" --runs "$cache/runs" -q)

echo "BG/NBD fit on 1,000,000 simulated customers"
bgnbd=$(target/$profile/examples/stats_bench 1000000 42 2>&1 | tail -n 3 | tr '\n' ' ')

python3 - "$floor_json" "$run_json" "$cache/out/run.json" "$rows" "$size" "$profile" "$bgnbd" <<'PY'
import json, platform, subprocess, sys
floor, run, record = json.loads(sys.argv[1]), json.loads(sys.argv[2]), json.load(open(sys.argv[3]))
rows, size, profile = int(sys.argv[4]), sys.argv[5], sys.argv[6]
cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
mem = subprocess.run(["sh", "-c", "grep MemTotal /proc/meminfo | awk '{printf \"%.0f GiB\", $2/1048576}'"], capture_output=True, text=True).stdout.strip()
lines = [
    f"# Benchmarks",
    "",
    f"Machine: {cpu or platform.processor()}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores, {mem}; cargo profile `{profile}`.",
    f"Input: {rows:,} generated events ({size} CSV), `userlens generate --events N --seed 42`.",
    "Command: `make bench` (bench/run.sh); wall and CPU time and peak RSS from bench/measure.py.",
    "",
    "| what | wall s | CPU s | peak RSS MiB |",
    "|---|---:|---:|---:|",
    f"| polars floor: scan + group-by | {floor['wall_s']:.2f} | {floor['cpu_s']:.2f} | {floor['peak_rss_mib']:.0f} |",
    f"| userlens profile, whole run | {run['wall_s']:.2f} | {run['cpu_s']:.2f} | {run['peak_rss_mib']:.0f} |",
]
for stage in record["stages"]:
    lines.append(f"| stage `{stage['name']}` ({stage['uses']}) | {stage['seconds']:.2f} | | {stage.get('peak_rss_mib') or 0:.0f} (so far) |")
lines += ["", f"userlens / floor: {run['wall_s'] / floor['wall_s']:.2f}x wall time.", "", f"BG/NBD on 1,000,000 simulated customers (crates/predict/examples/stats_bench.rs): {sys.argv[7].strip()}"]
text = "\n".join(lines) + "\n"
print(text)
open("docs/benchmarks.md", "w").write(text)
PY
