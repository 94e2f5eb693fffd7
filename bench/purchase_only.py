#!/usr/bin/env python3
"""How much of the next horizon's revenue the personas of a purchase-only line-item
log explain, against the RFM segments (issue 21): eta squared, the share of the
variance of each customer's revenue in [as-of, as-of + horizon) that lies between the
groups.

The log: `userlens generate` (USERS users, 180 days), its purchases written as a
UCI-shaped line-item export by examples/retail_export.rs, read by
pipelines/retail.toml with `--as-of` AS_OF. Standard library only.

usage: bench/purchase_only.py --bin target/debug/userlens [--users 6000]
       [--as-of 2026-05-01] [--horizon 60] [--keep DIR]
"""

import argparse
import csv
import gzip
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from datetime import datetime, timedelta


def eta_squared(groups, values):
    """Between-group share of the variance of `values` (dicts keyed by user)."""
    users = [u for u in values if u in groups]
    n = len(users)
    mean = sum(values[u] for u in users) / n
    total = sum((values[u] - mean) ** 2 for u in users)
    by_group = defaultdict(list)
    for u in users:
        by_group[groups[u]].append(values[u])
    between = sum(len(v) * (sum(v) / len(v) - mean) ** 2 for v in by_group.values())
    return between / total if total > 0 else float("nan"), n, len(by_group)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--users", type=int, default=6000)
    ap.add_argument("--as-of", default="2026-05-01")
    ap.add_argument("--horizon", type=int, default=60)
    ap.add_argument("--keep", help="folder to keep the files and outputs in")
    args = ap.parse_args()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    work = args.keep or tempfile.mkdtemp(prefix="purchase-only-")
    os.makedirs(work, exist_ok=True)
    events = os.path.join(work, "events.csv")
    retail = os.path.join(work, "retail.csv")
    run = lambda cmd: subprocess.run(cmd, check=True, cwd=repo, stdout=subprocess.DEVNULL)
    run([args.bin, "generate", "--users", str(args.users), "--seed", "7",
         "--start", "2026-01-01", "--days", "180", "--out", events])
    examples = os.path.join(os.path.dirname(os.path.abspath(args.bin)), "examples")
    exporter = os.path.join(examples, "retail_export")
    if not os.path.exists(exporter):
        run(["cargo", "build", "--offline", "--example", "retail_export"])
    run([exporter, events, retail])
    pipeline = os.path.join(work, "retail.toml")
    with open(os.path.join(repo, "pipelines/retail.toml")) as f:
        text = f.read().replace('"sample_data/retail.csv.gz"', repr(retail).replace("'", '"'))
    with open(pipeline, "w") as f:
        f.write(text)
    out = os.path.join(work, "out")
    run([args.bin, "run", pipeline, "--as-of", args.as_of, "--out", out,
         "--runs", os.path.join(work, "runs"), "-q", "--force-output"])

    start = datetime.strptime(args.as_of, "%Y-%m-%d")
    end = start + timedelta(days=args.horizon)
    revenue = defaultdict(float)
    with open(retail) as f:
        for row in csv.DictReader(f):
            if not row["CustomerID"]:
                continue
            t = datetime.strptime(row["InvoiceDate"], "%m/%d/%Y %H:%M")
            if start <= t < end:
                value = float(row["Quantity"]) * float(row["UnitPrice"])
                if row["InvoiceNo"].startswith("C"):
                    value = -abs(value)
                revenue[row["CustomerID"][:-2]] += value
    read = lambda name: list(csv.DictReader(open(os.path.join(out, name))))
    personas = {r["user_id"]: r["persona_id"] for r in read("user_personas.csv")}
    segments = {r["user_id"]: r["segment"] for r in read("user_segments.csv")}
    values = {u: revenue.get(u, 0.0) for u in personas}
    labels = [r["label"] for r in read("personas.csv")]
    p, n, k = eta_squared(personas, values)
    s, _, ks = eta_squared(segments, values)
    print(f"customers before {args.as_of}: {n}; revenue in the next {args.horizon} days")
    print(f"| grouping | groups | eta squared |")
    print(f"|---|---|---|")
    print(f"| personas | {k} | {p:.3f} |")
    print(f"| RFM segments | {ks} | {s:.3f} |")
    print("persona labels: " + "; ".join(labels))


if __name__ == "__main__":
    sys.exit(main())
