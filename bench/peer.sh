#!/usr/bin/env bash
# The peer benchmark: bench/peer/peer_pipeline.py (pandas + scikit-learn + lifetimes, the
# same job as a userlens profile run) on an event CSV, timed by bench/measure.py.
#
#   bash bench/peer.sh EVENTS.csv OUT_DIR [extra args for peer_pipeline.py]
#
# The last line of stdout is measure.py's JSON (status, wall_s, cpu_s, peak_rss_mib);
# everything else (venv creation, pip, the peer's own stage-time line) goes to stderr.
# Exits with the peer's exit status.
#
#   PEER_AS_OF=2026-06-30   --as-of for the peer (default fits `userlens generate`'s
#                           180 days from 2026-01-01); a later --as-of in the extra
#                           args wins too, argparse keeps the last one
#
# The Python environment is bench/venv.sh's (made once, in bench/cache/peer-venv).
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: bash bench/peer.sh EVENTS.csv OUT_DIR [extra args for peer_pipeline.py]" >&2
  exit 2
fi
# Paths given relative to the caller's directory stay so after the cd below.
abs() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }
events=$(abs "$1")
out=$(abs "$2")
shift 2

cd "$(dirname "$0")/.."

as_of=${PEER_AS_OF:-2026-06-30}

if [ ! -f "$events" ]; then
  echo "peer.sh: no such events file: $events" >&2
  exit 2
fi

python=$(bash bench/venv.sh)

echo "peer.sh: $events -> $out (--as-of $as_of)" >&2
# measure.py discards the child's stdout, so the peer's stdout (its stage line) is sent
# to stderr by an exec'ing sh: the measured child is then the peer's python itself.
python3 bench/measure.py sh -c 'exec "$@" 1>&2' peer-sh \
  "$python" bench/peer/peer_pipeline.py "$events" "$out" --as-of "$as_of" "$@"
