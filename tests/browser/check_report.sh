#!/usr/bin/env bash
# Opens a userlens report.html in headless Chromium and checks that it works offline:
#   1. the file holds no "http" at all (no URL, so nothing can be fetched);
#   2. loading it logs no console message (errors, uncaught exceptions) and makes no
#      network request (read from Chromium's net log; name resolution is also blocked);
#   3. the DOM Chromium parsed has the report's sections, figures and charts;
#   3b. at 1280, 768 and 360 px nothing runs past the screen or a persona card, and
#      every chart is legible (see 3b below);
#   4. a screenshot (1280x2400) is written to OUT_PNG and is not blank.
#
# Usage: tests/browser/check_report.sh REPORT_HTML OUT_PNG
#
# Needs Debian's `chromium` (apt-get install -y chromium; CHROMIUM=path overrides) and
# python3 (standard library only). Without Chromium it prints "skipped: chromium not
# installed" and exits 0, unless USERLENS_REQUIRE_BROWSER is set, then it fails.
set -euo pipefail
export LC_ALL=C

if [[ $# -ne 2 ]]; then
    echo "usage: $0 REPORT_HTML OUT_PNG" >&2
    exit 2
fi
report=$1
out_png=$2
if [[ ! -f $report ]]; then
    echo "error: \`$report\` is not a file" >&2
    exit 2
fi

chromium=${CHROMIUM:-}
if [[ -z $chromium ]]; then
    for candidate in chromium chromium-browser; do
        if command -v "$candidate" >/dev/null 2>&1; then
            chromium=$(command -v "$candidate")
            break
        fi
    done
fi
if [[ -z $chromium ]]; then
    if [[ -z ${USERLENS_REQUIRE_BROWSER:-} ]]; then
        echo "skipped: chromium not installed"
        exit 0
    fi
    echo "error: chromium not installed and USERLENS_REQUIRE_BROWSER is set" >&2
    exit 1
fi

start=$EPOCHREALTIME
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
url="file://$(realpath "$report")"
flags=(
    --headless --no-sandbox --disable-gpu --disable-quic --no-first-run
    --disable-background-networking --disable-component-update --disable-sync
    --disable-extensions --hide-scrollbars --mute-audio
    # Any host name the page asked for would fail to resolve, and show in the net log.
    "--host-resolver-rules=MAP * ~NOTFOUND"
)
failures=0
fail() {
    echo "FAIL: $*" >&2
    failures=$((failures + 1))
}

# 1. No URL anywhere in the file.
if grep -qi 'http' "$report"; then
    fail "the report contains \"http\": $(grep -oi '.\{0,30\}http.\{0,30\}' "$report" | head -3 | tr '\n' ' ')"
fi

# 2 and 3. Load the page once: DOM to stdout, console to the log, requests to the net log.
# The Debian wrapper and Chromium's D-Bus probing write noise to stderr; only the
# CONSOLE lines are the page's.
if ! timeout 120 "$chromium" "${flags[@]}" --user-data-dir="$work/profile-dom" \
    --enable-logging=stderr --v=0 --log-net-log="$work/net.json" \
    --dump-dom "$url" >"$work/dom.html" 2>"$work/chromium.log"; then
    fail "chromium could not load the page (log: $(tail -3 "$work/chromium.log" | tr '\n' ' '))"
fi
if grep -E ':CONSOLE[:(]|Uncaught' "$work/chromium.log" >"$work/console.log"; then
    fail "console messages while loading the page:"
    sed 's/^/    /' "$work/console.log" >&2
fi

python3 - "$work/net.json" "$work/dom.html" "$report" <<'PY' || failures=$((failures + 1))
import json, re, sys

net_path, dom_path, html_path = sys.argv[1], sys.argv[2], sys.argv[3]
ok = True

# Requests made for the page carry a file:// isolation key; Chromium's own background
# requests (update checks) do not, and are blocked by the resolver rules anyway.
try:
    with open(net_path, encoding="utf-8") as f:
        text = f.read()
    # A net log cut short by the browser's exit misses its closing brackets.
    try:
        log = json.loads(text)
    except json.JSONDecodeError:
        log = json.loads(text.rstrip().rstrip(",") + "]}")
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    fetched = sorted({
        e["params"]["url"]
        for e in log.get("events", [])
        if e.get("type") == start_job
        and "file://" in str(e.get("params", {}).get("network_isolation_key", ""))
        and not str(e["params"].get("url", "")).startswith(("file:", "data:"))
    })
    if fetched:
        ok = False
        print("FAIL: the page made network requests: " + ", ".join(fetched), file=sys.stderr)
except (OSError, ValueError, KeyError) as err:
    ok = False
    print(f"FAIL: cannot read the net log: {err}", file=sys.stderr)

with open(dom_path, encoding="utf-8") as f:
    dom = f.read()
required = ["summary", "personas", "sizes", "profile", "projection"]
optional = ["k-selection", "prediction", "calibration", "lift", "migration", "drift"]
ids = set(re.findall(r'<section id="([^"]+)"', dom))
# Every section the file holds (recommendations, loyalty, ... when their stages ran)
# must be in the page the browser built.
with open(html_path, encoding="utf-8") as f:
    written = re.findall(r'<section id="([^"]+)"', f.read())
missing = [s for s in dict.fromkeys(required + written) if s not in ids]
if missing:
    ok = False
    print("FAIL: sections missing from the DOM: " + ", ".join(missing), file=sys.stderr)
svgs = len(re.findall(r'<svg role="img" aria-label="[^"]+"', dom))
figures = len(re.findall(r"<figure\b", dom))
tables = len(re.findall(r"<table\b", dom))
if svgs < 4 or figures != svgs or tables < figures:
    ok = False
    print(f"FAIL: expected every chart (svg with role and label) in its own figure with a table; "
          f"found {svgs} charts, {figures} figures, {tables} tables", file=sys.stderr)
if "<script" in dom:
    ok = False
    print("FAIL: the page has a script", file=sys.stderr)
present = [s for s in dict.fromkeys(required + optional + written) if s in ids]
print(f"dom: {len(dom)} bytes, sections {', '.join(present)}; {svgs} charts, {tables} tables")
sys.exit(0 if ok else 1)
PY

# 3b. No persona card's text runs past the card, nor the card past its section, on a
# wide window, a tablet's (768 px) and a phone's (360 px; both frames, since headless
# Chromium's windows are at least 500 px wide). The page never runs past the screen;
# on the phone every chart keeps the 720 px its text needs (it scrolls in a box of its
# own), on the tablet every chart fits its box. A copy of the page with a script at
# its end measures them, its verdicts read from the DOMs Chromium dumps.
{
    cat "$report"
    cat <<'JS'
<script>
// Measured once the page has loaded: laid out before, it can be wider for a moment.
window.addEventListener("load", () => {
  const over = [];
  for (const card of document.querySelectorAll(".card")) {
    const box = card.getBoundingClientRect();
    const section = card.closest("section").getBoundingClientRect();
    if (box.right > section.right + 1) {
      over.push(`a card ${Math.round(box.right - section.right)} px past its section`);
      continue;
    }
    for (const el of card.querySelectorAll("*")) {
      const r = el.getBoundingClientRect();
      if (r.width > 0 && (r.right > box.right + 1 || r.left < box.left - 1)) {
        over.push(el.tagName + " " + el.textContent.trim().slice(0, 40));
        break;
      }
    }
  }
  const narrow = [];
  const page = document.documentElement;
  if (page.scrollWidth > page.clientWidth + 1) {
    narrow.push(`the page is ${page.scrollWidth} px wide on a ${page.clientWidth} px screen`);
  }
  for (const svg of document.querySelectorAll("figure svg")) {
    const width = svg.getBoundingClientRect().width;
    const box = svg.closest(".chart") || svg.parentElement;
    const id = svg.closest("figure").id;
    if (page.clientWidth <= 640 && width < 719) {
      narrow.push(`${id} drawn ${Math.round(width)} px wide`);
    } else if (page.clientWidth > 640 && box.scrollWidth > box.clientWidth + 1) {
      narrow.push(`${id} cut to ${box.clientWidth} of its ${box.scrollWidth} px`);
    }
  }
  const body = window.parent === window ? document.body : window.parent.document.body;
  body.setAttribute("data-overflow", over.length ? over.join(" | ") : "none");
  body.setAttribute("data-narrow", narrow.length ? narrow.join(" | ") : "none");
});
</script>
JS
} >"$work/measured.html"
for width in 360 768; do
    printf '<!DOCTYPE html><html><body style="margin:0"><iframe src="measured.html" style="width:%spx;height:2400px;border:0"></iframe></body></html>\n' \
        "$width" >"$work/frame-$width.html"
done
measure() { # WINDOW_WIDTH PAGE DOM_OUT: Chromium's DOM of a measured page
    timeout 120 "$chromium" "${flags[@]}" --user-data-dir="$work/profile-measure-$1" \
        --allow-file-access-from-files --virtual-time-budget=10000 \
        --window-size="$1,2400" --dump-dom "file://$work/$2" >"$3" 2>"$work/measure-$1.log"
}
verdicts() { # SCREEN_WIDTH DOM: each verdict the measured page wrote is "none"
    for verdict in overflow narrow; do
        if ! grep -q "data-$verdict=\"none\"" "$2"; then
            fail "on a $1 px screen: $(grep -o "data-$verdict=\"[^\"]*\"" "$2" | head -c 300)"
        fi
    done
}
if measure 1280 measured.html "$work/measured.dom"; then
    verdicts 1280 "$work/measured.dom"
else
    fail "chromium could not load the measured page"
fi
for width in 360 768; do
    if measure 800 "frame-$width.html" "$work/frame-$width.dom"; then
        verdicts "$width" "$work/frame-$width.dom"
    else
        fail "chromium could not load the measured page in a $width px frame"
    fi
done

# 4. Screenshot, then check it shows a page, not a blank or an error screen.
mkdir -p "$(dirname "$out_png")"
rm -f "$out_png"
if ! timeout 120 "$chromium" "${flags[@]}" --user-data-dir="$work/profile-shot" \
    --window-size=1280,2400 --screenshot="$out_png" "$url" \
    >"$work/shot.out" 2>"$work/shot.log" || [[ ! -s $out_png ]]; then
    fail "chromium wrote no screenshot (log: $(tail -3 "$work/shot.log" | tr '\n' ' '))"
else
    python3 - "$out_png" <<'PY' || failures=$((failures + 1))
import struct, sys, zlib
from collections import Counter

path = sys.argv[1]
with open(path, "rb") as f:
    data = f.read()
if data[:8] != b"\x89PNG\r\n\x1a\n":
    sys.exit(f"FAIL: {path} is not a PNG")
pos, idat, header = 8, [], None
while pos < len(data):
    (length,) = struct.unpack(">I", data[pos:pos + 4])
    kind = data[pos + 4:pos + 8]
    body = data[pos + 8:pos + 8 + length]
    if kind == b"IHDR":
        header = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat.append(body)
    pos += 12 + length
width, height, depth, colour, _, _, interlace = header
channels = {2: 3, 6: 4}.get(colour)
if depth != 8 or channels is None or interlace != 0:
    sys.exit(f"FAIL: unexpected PNG format (depth {depth}, colour type {colour}, interlace {interlace})")
raw = zlib.decompress(b"".join(idat))
stride = width * channels
prev = bytearray(stride)
colours = Counter()
for y in range(height):
    start = y * (stride + 1)
    kind = raw[start]
    line = bytearray(raw[start + 1:start + 1 + stride])
    for i in range(stride):
        a = line[i - channels] if i >= channels else 0
        b = prev[i]
        c = prev[i - channels] if i >= channels else 0
        if kind == 1:
            line[i] = (line[i] + a) & 0xFF
        elif kind == 2:
            line[i] = (line[i] + b) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + (a + b) // 2) & 0xFF
        elif kind == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
    # Every fourth row and column is plenty to tell a page from a blank.
    if y % 4 == 0:
        for x in range(0, width, 4):
            colours[bytes(line[x * channels:x * channels + 3])] += 1
    prev = line
total = sum(colours.values())
background = colours.most_common(1)[0][1] / total
distinct = len(colours)
print(f"screenshot: {width}x{height}, {distinct} distinct colours, "
      f"{100 * (1 - background):.1f}% of pixels off the main background")
if distinct < 64 or background > 0.97:
    sys.exit("FAIL: the screenshot looks blank")
PY
fi

elapsed=$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$start" "$EPOCHREALTIME")
if [[ $failures -gt 0 ]]; then
    echo "browser check failed ($failures failing check(s)) in ${elapsed}s" >&2
    exit 1
fi
echo "browser check passed in ${elapsed}s: $report -> $out_png"
