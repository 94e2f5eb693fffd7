#!/usr/bin/env bash
# Prediction and persona quality of userlens and the peer (bench/peer/) on generated
# logs with known truth: six personas whose behaviour blurs into another's
# (moderate: up to 35 %, strong: up to 60 %), and what each user did in the 28 days
# after the as-of date. bench/quality.py generates the files and scores both runs;
# the table goes to bench/quality.md and to its section of docs/benchmarks.md.
#
#   QUALITY_USERS=7000     users per file (7,000 make about 1M events)
#   QUALITY_BIN=path       the userlens binary (default: a dev build, made here)
#   QUALITY_BEFORE=path    another userlens binary, scored in a column `before`
#
# Files are generated once into bench/cache/quality/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."

users=${QUALITY_USERS:-7000}
bin=${QUALITY_BIN:-}
before=${QUALITY_BEFORE:-}
if [ -z "$bin" ]; then
  cargo build --offline --bin userlens >&2
  bin=target/debug/userlens
fi
cache=bench/cache/quality
mkdir -p "$cache"
# The profile pipeline's personas and predictions alone, so that older binaries
# (QUALITY_BEFORE) run it too.
pipeline=$cache/quality.toml
{
  sed -n '1,/^\[stages\.report\]/p' pipelines/profile.toml | sed '$d'
  printf '[stages.report]\nuses = "report"\nneeds = ["features", "personas", "predict"]\n'
} >"$pipeline"

out=$cache/table.md
: >"$out"
for level in moderate strong; do
  case $level in
    moderate) blur=0.35 seed=42 ;;
    strong) blur=0.6 seed=7 ;;
  esac
  dir=$cache/$level-$users
  if [ ! -f "$dir/events.csv" ]; then
    python3 bench/quality.py generate "$dir.tmp" --users "$users" --blur "$blur" --seed "$seed"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
  fi
  events=$(($(wc -l <"$dir/events.csv") - 1))
  echo "[$level] userlens on $events events" >&2
  rm -rf "$dir/userlens" "$dir/runs"
  "$bin" run "$pipeline" --set "ingest.path=\"$dir/events.csv\"" \
    --out "$dir/userlens" --runs "$dir/runs" --as-of 2026-06-30 -q >&2
  runs=("userlens=$dir/userlens")
  if [ -n "$before" ]; then
    echo "[$level] userlens before" >&2
    rm -rf "$dir/before" "$dir/runs-before"
    "$before" run "$pipeline" --set "ingest.path=\"$dir/events.csv\"" \
      --out "$dir/before" --runs "$dir/runs-before" --as-of 2026-06-30 -q >&2
    runs+=("before=$dir/before")
  fi
  # The peer's outputs are kept until the peer or the events change.
  if [ ! "$dir/peer/user_predictions.csv" -nt bench/peer/peer_pipeline.py ] ||
    [ ! "$dir/peer/user_predictions.csv" -nt "$dir/events.csv" ]; then
    echo "[$level] peer" >&2
    PEER_AS_OF=2026-06-30 bash bench/peer.sh "$dir/events.csv" "$dir/peer" >/dev/null
  fi
  {
    echo
    python3 bench/quality.py score "$dir/truth.csv" "${runs[@]}" "peer=$dir/peer" \
      --markdown --title "$users users, $events events, $level blur (up to $blur)"
  } >>"$out"
done

{
  echo "## Prediction and persona quality against known truth"
  echo
  echo "\`bash bench/quality.sh\` (bench/quality.py): userlens and the peer on the same"
  echo "generated files, scored on what each user did in the 28 days after the as-of"
  echo "date and on the persona each was drawn from. AUCs and correlations: higher is"
  echo "better; mean absolute errors: lower is better. Measured $(date -u +%F) at"
  echo "commit $(git rev-parse --short HEAD)${before:+; \`before\` is $before}."
  echo
  echo "The generator is bench/quality.py's own (crates/synth has no blur): six personas"
  echo "(one, the window shopper, browses for months and never buys), each user's"
  echo "behaviour pulled towards a second persona by up to the blur. The mean absolute"
  echo "error of \`expected_purchases\` favours predicting 0 for a likely non-buyer (the"
  echo "median), which the peer does for every non-buyer; userlens gives them their"
  echo "expected count, which ranks them (the AUC) but costs a little absolute error."
  cat "$out"
} >bench/quality.md

# Replace this section of docs/benchmarks.md, up to the next section, or add it at
# the end; the other sections are left as they are.
python3 - <<'EOF'
doc = open("docs/benchmarks.md").read()
section = open("bench/quality.md").read().rstrip("\n") + "\n"
marker = "## Prediction and persona quality against known truth"
if marker in doc:
    start = doc.index(marker)
    end = doc.find("\n## ", start + len(marker))
    rest = "" if end < 0 else "\n" + doc[end + 1 :]
    doc = doc[:start] + section + rest
else:
    doc = doc.rstrip("\n") + "\n\n" + section
open("docs/benchmarks.md", "w").write(doc)
EOF
cat bench/quality.md
