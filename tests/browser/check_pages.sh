#!/usr/bin/env bash
# The report in a real browser, with the binary the tests built (BIN, default
# target/debug/userlens): the committed fixture run re-rendered by `userlens report`,
# then the page of a whole sample run with every section drawn from fresh outputs.
# Each is loaded in headless Chromium by check_report.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${BIN:-target/debug/userlens}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# `cp -R dir/.` keeps the fixture's `.userlens` marker: `report` renders only a
# folder a run published.
mkdir "$work/fixture"
cp -R crates/report/tests/data/profile/. "$work/fixture"/
"$bin" report "$work/fixture"
bash tests/browser/check_report.sh "$work/fixture/report.html" "$work/fixture.png"

"$bin" run pipelines/profile.toml --out "$work/sample/out" --runs "$work/sample/runs" -q
bash tests/browser/check_report.sh "$work/sample/out/report.html" "$work/sample.png"

# Text without a break (a category spelt as one long word) stays inside its persona card.
mkdir "$work/long"
"$bin" generate --users 400 --seed 3 --out "$work/long/events.csv" >/dev/null
sed -i 's/,books,/,books_magazines_comics_and_everything_else_printed_on_paper_2026,/' \
    "$work/long/events.csv"
"$bin" profile "$work/long/events.csv" --out "$work/long/out" --runs "$work/long/runs" -q
bash tests/browser/check_report.sh "$work/long/out/report.html" "$work/long.png"
