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
