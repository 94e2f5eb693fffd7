#!/usr/bin/env python3
"""The loyalty stage's monthly cohort triangle against pandas, to the last digit.

Writes a line-item transactions file shaped like UCI's Online Retail (InvoiceNo,
StockCode, Description, Quantity, InvoiceDate as m/d/Y H:M, UnitPrice, CustomerID
with blanks, Country; cancellations are invoices starting with C and a negative
quantity), runs `userlens run` with an ingest and a loyalty stage on it, and
computes the same triangle with pandas: cohort = the calendar month of a
customer's first line, active in period k = at least one line in the month k
months later, retention = active / cohort size, unbounded = share of the cohort
with a line in month k or later. Every cell of retention.csv must equal pandas'
value: the counts exactly, and the shares written the same to the last digit (the
6 decimals of every userlens CSV; the counts fix the doubles behind them).

    python3 bench/loyalty_pandas.py [--bin target/debug/userlens] [--rows 200000]

Exit status 0 when every cell matches, 1 otherwise.
"""

import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta

import pandas as pd

PIPELINE = """
[pipeline]
name = "loyalty_pandas"
seed = 1
output = "{out}"
runs = "{runs}"

[stages.ingest]
uses = "ingest"
[stages.ingest.with]
path = "{data}"
time_format = "%m/%d/%Y %H:%M"
max_quarantine_share = 0.5
columns = {{ user_id = "CustomerID", event_time = "InvoiceDate", item_id = "StockCode", event_type = {{ constant = "purchase" }} }}

[stages.loyalty]
uses = "loyalty"
needs = ["ingest"]
with = {{ unit = "month" }}
"""


def write_retail(path, rows, seed):
    """Invoices of a few thousand customers over 13 months, several lines each."""
    rng = random.Random(seed)
    start = datetime(2010, 12, 1, 8, 0)
    customers = [12346 + i for i in range(max(50, rows // 60))]
    # Each customer joins on some day and buys with a rate of their own.
    joins = {c: rng.randrange(0, 373) for c in customers}
    rates = {c: rng.choice([0.002, 0.01, 0.03, 0.08]) for c in customers}
    written = 0
    invoice = 536365
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["InvoiceNo", "StockCode", "Description", "Quantity",
                    "InvoiceDate", "UnitPrice", "CustomerID", "Country"])
        while written < rows:
            c = rng.choice(customers)
            day = joins[c] + int(rng.expovariate(rates[c]))
            if day >= 373:
                day = joins[c]
            when = start + timedelta(days=day, minutes=rng.randrange(0, 600))
            cancel = rng.random() < 0.02
            anonymous = rng.random() < 0.2
            number = ("C" if cancel else "") + str(invoice)
            invoice += 1
            for _ in range(rng.randrange(1, 12)):
                quantity = rng.randrange(1, 24) * (-1 if cancel else 1)
                w.writerow([
                    number,
                    f"{rng.randrange(10000, 99999)}",
                    "WHITE HANGING HEART T-LIGHT HOLDER",
                    quantity,
                    f"{when.month}/{when.day}/{when.year} {when.hour}:{when.minute:02d}",
                    f"{rng.randrange(10, 2000) / 100:.2f}",
                    "" if anonymous else str(c),
                    "United Kingdom",
                ])
                written += 1


def pandas_triangle(path):
    df = pd.read_csv(path, dtype={"CustomerID": str, "InvoiceNo": str, "StockCode": str})
    df = df.dropna(subset=["CustomerID"])
    df["InvoiceDate"] = pd.to_datetime(df["InvoiceDate"], format="%m/%d/%Y %H:%M")
    df["month"] = df["InvoiceDate"].dt.to_period("M")
    cohort = df.groupby("CustomerID")["month"].min().rename("cohort")
    df = df.join(cohort, on="CustomerID")
    df["period"] = (df["month"] - df["cohort"]).apply(lambda offset: offset.n)
    active = df.groupby(["cohort", "period"])["CustomerID"].nunique()
    last_period = df.groupby("CustomerID")["period"].max()
    sizes = cohort.value_counts()
    latest = df["month"].max()
    rows = []
    for month in sorted(sizes.index):
        size = int(sizes[month])
        members = cohort[cohort == month].index
        for k in range((latest - month).n + 1):
            a = int(active.get((month, k), 0))
            later = int((last_period[members] >= k).sum())
            rows.append((str(month), size, k, a, a / size, later / size))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="target/debug/userlens")
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "online_retail.csv")
        write_retail(data, args.rows, args.seed)
        out, runs = os.path.join(tmp, "out"), os.path.join(tmp, "runs")
        pipeline = os.path.join(tmp, "retail.toml")
        with open(pipeline, "w") as f:
            f.write(PIPELINE.format(out=out, runs=runs, data=data))
        subprocess.run([args.bin, "run", pipeline, "-q"], check=True,
                       stdout=subprocess.DEVNULL)
        with open(os.path.join(out, "retention.csv"), newline="") as f:
            ours = list(csv.DictReader(f))
        theirs = pandas_triangle(data)
    mismatches = 0
    if len(ours) != len(theirs):
        print(f"userlens has {len(ours)} cells, pandas {len(theirs)}")
        mismatches += 1
    for row, (cohort, size, k, active, retention, unbounded) in zip(ours, theirs):
        expected = {
            "cohort": cohort,
            "cohort_users": str(size),
            "period": str(k),
            "active_users": str(active),
            # userlens writes every float with 6 decimals (correctly rounded, as
            # Python's format is): the shares must read the same to the last digit.
            "retention": f"{retention:.6f}",
            "retention_unbounded": f"{unbounded:.6f}",
        }
        for name, want in expected.items():
            got = row[name]
            if got != want:
                mismatches += 1
                print(f"{cohort} period {k} {name}: userlens {got}, pandas {want}")
    cells = len(theirs)
    print(f"{cells} cells of the monthly cohort triangle ({args.rows} lines): "
          f"{'all equal' if mismatches == 0 else f'{mismatches} differences'}")
    return 0 if mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
