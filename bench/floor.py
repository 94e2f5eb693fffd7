#!/usr/bin/env python3
# Copied from the project brief's shared bench (../shared/bench/floor.py), unchanged below.
"""The polars floor: polars' streaming engine scans a canonical event CSV (explicit schema)
and groups it by user once. Prints the number of users and the wall time.

  floor.py EVENTS.csv
"""
import sys
import time

import polars as pl

t = time.time()
per_user = (
    pl.scan_csv(sys.argv[1], schema_overrides={"user_id": pl.Utf8, "amount": pl.Float64})
    .with_columns(pl.col("event_time").str.to_datetime("%Y-%m-%d %H:%M:%S"))
    .group_by("user_id")
    .agg(
        pl.len().alias("events"),
        pl.col("event_time").min().alias("first"),
        pl.col("event_time").max().alias("last"),
        (pl.col("event_type") == "purchase").sum().alias("purchases"),
        pl.col("amount").sum().alias("revenue"),
        pl.col("session_id").n_unique().alias("sessions"),
    )
    .collect(engine="streaming")
)
print(per_user.height, f"{time.time() - t:.2f}s")
