#!/usr/bin/env bash
# The recommendation benchmark at one size: userlens's recommend stage and the Python
# peer (bench/peer_recs.py: popularity, implicit's BM25 item-kNN and ALS) on the same
# events, every list scored by the same protocol (userlens's time split).
#
#   bash bench/recs.sh EVENTS.csv [OUT_DIR]
#
#   RECS_AS_OF=2026-06-30   the as-of date (default fits `userlens generate`'s 180 days
#                           from 2026-01-01); the peer fits at the cutoff, 28 days before
#   RECS_PROFILE=release    cargo profile of the scorer (`dist` for published figures)
#
# The peer runs at the cutoff with `--exclude seen` (the protocol ranks no training
# item); crates/recommend/examples/recs_eval.rs then runs the stage's work (score every
# recommender on the horizon, refit the best at the as-of date, list every user) and
# scores the peer's CSVs. Timings: the peer's own line (read, each model's fit +
# recommend) and recs_eval's `recommend=` (the stage's work, events already read).
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: bash bench/recs.sh EVENTS.csv [OUT_DIR]" >&2
  exit 2
fi
abs() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }
events=$(abs "$1")
out=$(abs "${2:-bench/cache/recs}")
cd "$(dirname "$0")/.."

as_of=${RECS_AS_OF:-2026-06-30}
cutoff=$(date -u -d "$as_of - 28 days" +%F)
profile=${RECS_PROFILE:-release}
python=$(bash bench/venv.sh)

cargo build --quiet --offline --profile "$profile" -p userlens-recommend --example recs_eval >&2
case $profile in dev) dir=debug ;; *) dir=$profile ;; esac

rm -rf "$out/peer"
mkdir -p "$out/peer"
echo "recs.sh: peer at the cutoff $cutoff" >&2
"$python" -W ignore bench/peer_recs.py "$events" "$out/peer" --as-of "$cutoff" --exclude seen \
  | tee "$out/peer_times.txt"
echo "recs.sh: userlens at $as_of, and the peer's lists by the same protocol" >&2
"target/$dir/examples/recs_eval" "$events" --as-of "$as_of" --peer "$out/peer" | tee "$out/scores.txt"
