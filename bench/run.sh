#!/usr/bin/env bash
# `make bench`: whole profile runs of userlens on generated event files against the
# polars floor (scan + group-by of the same file) and the peer (pandas + scikit-learn +
# lifetimes, bench/peer/), plus the BG/NBD fit on 1,000,000 simulated customers.
# Every size is run in two shapes: `short`, many users with short histories
# (`userlens generate --events N`, about 60 events a user) and `long`, few users with
# long histories (`--events-per-user 1000`). Prints one table and the ratios the
# targets are stated in, and writes them, with bench/notes.md, to docs/benchmarks.md.
#
#   BENCH_SIZES="1000000 10000000"   event counts (add 100000000 for the 7 GB file,
#                                    ingested out of core)
#   BENCH_SHAPES="short long"        shapes of log at each size
#   BENCH_ALONE=ingest               stages also run alone, each in a process of its
#                                    own on the whole run's artifacts (`all`: every
#                                    stage; `none`)
#   BENCH_PEER_MAX=10000000          the peer runs on files up to this many events
#   BENCH_PROFILE=dist               cargo profile (dist: LTO + one codegen unit;
#                                    release: quicker build)
#   BENCH_HELPER_PROFILE=$BENCH_PROFILE  profile of the BG/NBD, k-means and
#                                    recommendation examples (each is another cold
#                                    LTO build under dist)
#   BENCH_QUALITY=1                  also score predictions and personas against the
#                                    peer on known truth (bench/quality.sh)
#   BENCH_REPEAT=3                   runs of the floor and of each stage alone,
#                                    taken in turn; the tables give each one's median
#   BENCH_EXTRAS=1                   0: only the floor, userlens and the peer (no Rust
#                                    floor, BG/NBD, k-means, recommendations or
#                                    quality, whose examples are builds of their own)
#
# Event files are generated once into bench/cache/ (git-ignored), named after the
# size, the shape and the generator's source hash so that a changed generator makes
# new files.
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=${BENCH_SIZES:-1000000 10000000}
shapes=${BENCH_SHAPES:-short long}
alone_stages=${BENCH_ALONE:-ingest}
repeat=${BENCH_REPEAT:-3}
extras=${BENCH_EXTRAS:-1}
peer_max=${BENCH_PEER_MAX:-10000000}
profile=${BENCH_PROFILE:-dist}
helper_profile=${BENCH_HELPER_PROFILE:-$profile}
cache=bench/cache
mkdir -p "$cache"

if [ "$extras" = 1 ]; then
  cargo build --locked --profile "$profile" --bin userlens --example polars_floor
  cargo build --locked --profile "$helper_profile" -p userlens-predict --example stats_bench
else
  cargo build --locked --profile "$profile" --bin userlens
fi
venv_python=$(bash bench/venv.sh)
bin=target/$profile/userlens
floor=target/$profile/examples/polars_floor
generator=$(cat crates/synth/src/*.rs | python3 -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest()[:8])')

results=$cache/results.jsonl
: >"$results"
# The run of median wall time among measure.py's JSON lines on stdin, with every
# run's wall time (`walls`): the host's speed swings between runs of the same thing.
median() {
  python3 -c '
import json, sys
runs = [json.loads(line) for line in sys.stdin if line.strip() and line.strip() != "null"]
if not runs:
    print("null"); sys.exit()
ok = sorted((r for r in runs if r.get("status") == 0), key=lambda r: r["wall_s"]) or runs
pick = dict(ok[(len(ok) - 1) // 2])
pick["walls"] = [r["wall_s"] for r in runs]
print(json.dumps(pick))'
}
for events in $sizes; do
for shape in $shapes; do
  case $shape in
    short) shape_args=() ;;
    long) shape_args=(--events-per-user 1000) ;;
    *) echo "unknown shape $shape (short or long)" >&2; exit 2 ;;
  esac
  data=$cache/events_${events}_${shape}_$generator.csv
  if [ ! -f "$data" ]; then
    echo "generating ~$events events ($shape histories) into $data (once)"
    "$bin" generate --force --events "$events" "${shape_args[@]}" --seed 42 --out "$data.tmp" >/dev/null
    mv "$data.tmp" "$data"
  fi
  rows=$(($(wc -l <"$data") - 1))
  users=$(cut -d, -f1 "$data" | uniq | tail -n +2 | wc -l)
  size=$(du -h "$data" | cut -f1)
  tag="[$events $shape]"

  echo "$tag polars floor: streaming engine, bench/floor.py"
  floor_runs=$(python3 bench/measure.py "$venv_python" bench/floor.py "$data") || true
  rust_floor_json=null
  if [ "$extras" = 1 ]; then
    echo "$tag polars in memory with date inference (examples/polars_floor.rs)"
    rust_floor_json=$(python3 bench/measure.py "$floor" "$data") || true
  fi
  echo "$tag userlens profile (whole pipeline)"
  rm -rf "$cache/out" "$cache/runs"
  run_json=$(python3 bench/measure.py "$bin" profile "$data" --out "$cache/out" --runs "$cache/runs" -q)
  stages=$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["stages"]))' "$cache/out/run.json")
  # Stages alone, each in a process of its own, on the artifacts of the whole run
  # (`--only`: the stages before it are reused, nothing after it runs).
  case $alone_stages in
    all) alone_list=$(python3 -c 'import json,sys; print(" ".join(s["name"] for s in json.loads(sys.argv[1])))' "$stages") ;;
    none) alone_list="" ;;
    *) alone_list=$alone_stages ;;
  esac
  # The floor and each stage alone again, in turn, to `repeat` runs of each.
  declare -A alone_runs=()
  for ((round = 1; round <= repeat; round++)); do
    if [ "$round" -gt 1 ]; then
      echo "$tag polars floor (run $round of $repeat)"
      floor_runs+=$'\n'$(python3 bench/measure.py "$venv_python" bench/floor.py "$data") || true
    fi
    for stage in $alone_list; do
      echo "$tag stage $stage alone (run $round of $repeat)"
      one=$(python3 bench/measure.py "$bin" profile "$data" --out "$cache/out" --runs "$cache/runs" -q --only "$stage") || true
      alone_runs[$stage]+="${one:-null}"$'\n'
    done
  done
  floor_json=$(median <<<"$floor_runs")
  alone=""
  for stage in $alone_list; do
    alone="$alone${alone:+, }\"$stage\": $(median <<<"${alone_runs[$stage]}")"
  done
  # The peer's job alone (ingest to report: personas and predictions, no loyalty or
  # recommendations), cold in a runs folder of its own, for a like-for-like ratio.
  echo "$tag userlens on the peer's job (--until report)"
  rm -rf "$cache/out-job" "$cache/runs-job"
  job_json=$(python3 bench/measure.py "$bin" profile "$data" --out "$cache/out-job" --runs "$cache/runs-job" -q --until report) || job_json=null
  rm -rf "$cache/out-job" "$cache/runs-job"
  peer_json=null
  if [ "$events" -le "$peer_max" ]; then
    echo "$tag peer: pandas + scikit-learn + lifetimes"
    rm -rf "$cache/peer-out"
    peer_json=$(bash bench/peer.sh "$data" "$cache/peer-out" 2>"$cache/peer.log" | tail -n 1) || peer_json=null
    grep '^peer ' "$cache/peer.log" || true
  fi
  if [ "$extras" = 1 ] && [ "$shape" = short ] && [ "$events" -le "$peer_max" ]; then
    echo "$tag recommendations: the recommend stage's work and the implicit peer"
    RECS_PROFILE=$helper_profile bash bench/recs.sh "$data" "$cache/recs-$events" \
      >"$cache/recs-$events.txt" 2>"$cache/recs.log" || echo "recs.sh failed: $cache/recs.log"
  fi
  printf '{"events": %s, "shape": "%s", "rows": %s, "users": %s, "size": "%s", "floor": %s, "rust_floor": %s, "run": %s, "stages": %s, "alone": {%s}, "job": %s, "peer": %s}\n' \
    "$events" "$shape" "$rows" "$users" "$size" "$floor_json" "${rust_floor_json:-null}" "$run_json" "$stages" "$alone" "$job_json" "$peer_json" >>"$results"
done
done

bgnbd=""
kmeans=null
if [ "$extras" = 1 ]; then
  echo "BG/NBD fit on 1,000,000 simulated customers"
  bgnbd=$(target/$helper_profile/examples/stats_bench 1000000 42 2>&1 | tail -n 3 | tr '\n' ' ')

  echo "k-means on 1,000,000 users x 20 features against scikit-learn"
  cargo build --locked --profile "$helper_profile" -p userlens-profile --example kmeans_bench
  kmeans=$("$venv_python" bench/kmeans_vs_sklearn.py \
    "target/$helper_profile/examples/kmeans_bench" "$cache/kmeans" --n 1000000 --d 20 --k 8 --spread 1 \
    2>"$cache/kmeans.log" | tail -n 1) || kmeans=null
fi

python3 - "$results" "$profile" "$bgnbd" "$kmeans" "$helper_profile" <<'PY'
import json, platform, subprocess, sys
results = [json.loads(line) for line in open(sys.argv[1])]
profile, bgnbd, helper_profile = sys.argv[2], sys.argv[3].strip(), sys.argv[5]
kmeans = json.loads(sys.argv[4]) if sys.argv[4] not in ("", "null") else None
sh = lambda c: subprocess.run(["sh", "-c", c], capture_output=True, text=True).stdout.strip()
cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2") or platform.processor()
mem = sh("grep MemTotal /proc/meminfo | awk '{printf \"%.0f GiB\", $2/1048576}'")
cores = sh("nproc")
lines = [
    "# Benchmarks",
    "",
    f"Machine: {cpu}, {cores} cores, {mem}, {platform.system()} {platform.release()}; cargo profile `{profile}` (BG/NBD and k-means examples: `{helper_profile}`).",
    "Command: `make bench` (bench/run.sh; `BENCH_SIZES`, `BENCH_SHAPES`, `BENCH_PROFILE`); wall and CPU",
    "seconds and peak RSS from bench/measure.py. Inputs: `userlens generate --events N --seed 42`",
    "(short histories) and the same with `--events-per-user 1000` (long histories).",
    "",
    "| events | what | wall s | CPU s | peak RSS MiB | userlens / this |",
    "|---:|---|---:|---:|---:|---:|",
]
# A measure taken several times: its runs' wall times.
walls = lambda m: f" (median of {', '.join(f'{w:.1f}' for w in m['walls'])})" if len(m.get("walls", [])) > 1 else ""
for r in results:
    run = r["run"]
    ev = f"{r['rows']:,} ({r['size']}), {r.get('shape', 'short')}: {r.get('users', 0):,} users"
    lines.append(f"| {ev} | userlens profile, whole run | {run['wall_s']:.1f} | {run['cpu_s']:.1f} | {run['peak_rss_mib']:.0f} | |")
    for s in r["stages"]:
        a = r.get("alone", {}).get(s["name"])
        if a and a.get("status") == 0 and "seconds" in s:
            lines.append(f"| | stage `{s['name']}` ({s['uses']}) alone{walls(a)}; {s['seconds']:.1f} s in the whole run | {a['wall_s']:.1f} | {a['cpu_s']:.1f} | {a['peak_rss_mib']:.0f} | |")
        elif "seconds" in s:
            lines.append(f"| | stage `{s['name']}` ({s['uses']}) in the whole run | {s['seconds']:.1f} | | {s.get('peak_rss_mib') or 0:.0f} (so far) | |")
    for key, what in (("floor", "polars floor: streaming scan + group-by (bench/floor.py)"),
                      ("rust_floor", "polars in memory, dates inferred (examples/polars_floor.rs)")):
        f = r.get(key)
        if not f:
            continue
        if f.get("status") == 0:
            lines.append(f"| | {what}{walls(f)} | {f['wall_s']:.1f} | {f['cpu_s']:.1f} | {f['peak_rss_mib']:.0f} | {run['wall_s'] / f['wall_s']:.2f}x |")
        else:
            lines.append(f"| | {what} | failed (exit {f.get('status')}) after {f['wall_s']:.1f} | | {f['peak_rss_mib']:.0f} | |")
    j = r.get("job")
    if j and j.get("status") == 0:
        lines.append(f"| | userlens on the peer's job (`--until report`: no loyalty or recommendations) | {j['wall_s']:.1f} | {j['cpu_s']:.1f} | {j['peak_rss_mib']:.0f} | |")
    p = r["peer"]
    if p and p.get("status") == 0:
        lines.append(f"| | peer: pandas + scikit-learn + lifetimes | {p['wall_s']:.1f} | {p['cpu_s']:.1f} | {p['peak_rss_mib']:.0f} | {run['wall_s'] / p['wall_s']:.2f}x |")
    elif p:
        lines.append(f"| | peer: pandas + scikit-learn + lifetimes | failed (exit {p.get('status')}) | | | |")
# The targets of issue 20, as ratios within this one run.
ok = lambda m: m and m.get("status") == 0
lines += [
    "",
    "Ratios (issue 20's targets: whole run <= 3x the floor, ingest <= 1.5x the floor, >= 5x faster",
    "than the peer, peak RSS <= 1.5 GB at 10M). The peer does the profile's first five stages'",
    "job (features, personas, BG/NBD + Gamma-Gamma, a purchase model, CSVs), not loyalty or",
    "recommendations: `peer / run` sets it against the whole run, `peer / job` against",
    "userlens doing the same job (`--until report`, a run of its own). The job is also the",
    "profile pipeline issue 20 was written for (it had no loyalty or recommend stage then), so",
    "`job / floor` gives its whole-run target as written, `run / floor` for today's pipeline. The floor and the ingest",
    "alone are each the median of `BENCH_REPEAT` runs taken in turn (the table above lists them);",
    "the whole run, the job and the peer are one run each:",
    "",
    "| events | shape | floor s | ingest alone s | ingest / floor | whole run s | run / floor | peer s | peer / run | job s | job / floor | peer / job | peak RSS MiB |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]
for r in results:
    run, floor, peer, job = r["run"], r.get("floor"), r.get("peer"), r.get("job")
    ingest = r.get("alone", {}).get("ingest")
    cell = lambda m, f="{:.1f}": f.format(m["wall_s"]) if ok(m) else "-"
    div = lambda a, b: f"{a['wall_s'] / b['wall_s']:.2f}x" if ok(a) and ok(b) else "-"
    lines.append(
        f"| {r['rows']:,} | {r.get('shape', 'short')} | {cell(floor)} | {cell(ingest)} | {div(ingest, floor)} "
        f"| {cell(run)} | {div(run, floor)} | {cell(peer)} | {div(peer, run)} | {cell(job)} | {div(job, floor)} | {div(peer, job)} | {run['peak_rss_mib']:.0f} |"
    )
lines += [""]
if bgnbd:
    lines += [f"BG/NBD on 1,000,000 simulated customers (crates/predict/examples/stats_bench.rs): {bgnbd}", ""]
if kmeans:
    u, s = kmeans["userlens"], kmeans["sklearn"]
    lines += [
        f"k-means, {kmeans['n']:,} users x {kmeans['d']} features, k = {kmeans['k']} (bench/kmeans_vs_sklearn.py, blobs with centre spread {kmeans['spread']}):",
        f"userlens k-means (`userlens_profile::kmeans`: greedy k-means++ and 10 restarts on a 20k sample, Lloyd on every user) {u['kmeans_seconds']:.2f} s, inertia {u['kmeans_inertia']:.1f};",
        f"scikit-learn `KMeans().fit` (n_init auto) {s['fit_seconds']:.2f} s, inertia {s['inertia']:.1f}: inertia ratio {kmeans['inertia_ratio']:.4f}, time ratio {kmeans['time_ratio']:.2f}.",
        f"The whole `profile` call around the same k-means (standardising, silhouette on 10k users, indices, tables): {u['fit_seconds']:.2f} s ({kmeans['profile_time_ratio']:.2f}x scikit-learn's fit).",
        "",
    ]
recs = [(r["events"], f"bench/cache/recs-{r['events']}.txt") for r in results if r.get("shape", "short") == "short"]
recs = [(n, open(p).read().strip()) for n, p in recs if __import__("os").path.exists(p)]
if recs:
    lines += ["Recommendations (bench/recs.sh: the recommend stage's work and bench/peer_recs.py, every list scored by the stage's time split; NDCG@10 and seconds):", ""]
    for n, text in recs:
        lines += [f"{n:,} events:", "", "```", text, "```", ""]
table = "\n".join(lines)
print(table)
notes = open("bench/notes.md").read()
open("docs/benchmarks.md", "w").write(table + "\n" + notes)
PY

# The quality of predictions and personas on generated truth (its own section).
if [ "$extras" = 1 ] && [ "${BENCH_QUALITY:-1}" = 1 ]; then
  QUALITY_BIN=$bin bash bench/quality.sh || echo "quality.sh failed"
fi
