#!/usr/bin/env python3
"""Prediction and persona quality of userlens and the peer against known truth.

    quality.py generate OUT_DIR --users N --blur B [--seed S]
    quality.py score TRUTH.csv NAME=OUT_DIR [NAME=OUT_DIR ...] [--markdown]

`generate` writes `events.csv` (canonical columns, every event before the as-of date
2026-06-30) and `truth.csv` (`user_id, persona, purchases, revenue, active`: the
persona each user was drawn from and what they did in the 28 days from the as-of
date on, purchases counted as distinct days with a purchase, as BG/NBD and lifetimes
count them). Six personas; `--blur` in [0, 1) pulls every user's behaviour towards a
second persona by a uniform share of up to B, so personas overlap as they do in real
logs. Stdlib only and deterministic for a seed.

`score` reads each run's `user_predictions.csv` and `user_personas.csv` and prints,
per run: the AUC of `p_purchase` and of `expected_purchases` for "buys in the
horizon", the AUC of `p_alive` for "any event in the horizon", the correlation, mean
absolute error and top-decile share of `predicted_revenue` against the horizon's
revenue, the mean absolute error of `expected_purchases` against the purchase count,
and the adjusted Rand index of the personas. A user without a value counts as 0.
"""
import argparse
import csv
import math
import os
import random
import sys
from datetime import datetime, timedelta

START = datetime(2026, 1, 1)
OBSERVED_DAYS = 180
HORIZON_DAYS = 28
AS_OF = START + timedelta(days=OBSERVED_DAYS)
CATEGORIES = ["fashion", "home", "electronics", "books", "garden", "sports", "toys", "beauty"]

# Numeric behaviour of each persona; `blur` interpolates these between two personas.
# spw: sessions per week, weekend: share of sessions on Sat/Sun, night: share at
# 22-04 UTC, searches/views: per session, cart/buy: rates per view and per carted
# item, price: mean order value, until: share of the period active, purchases: cap.
PERSONAS = [
    ("bargain browser", dict(spw=1.5, weekend=0.29, night=0.05, searches=0.5, views=6.0,
                             cart=0.10, buy=0.20, price=18.0, until=1.0), ["fashion", "home", "beauty"]),
    ("loyal big spender", dict(spw=0.8, weekend=0.25, night=0.05, searches=0.3, views=4.0,
                               cart=0.30, buy=0.70, price=160.0, until=1.0), ["electronics", "home"]),
    ("night searcher", dict(spw=1.1, weekend=0.29, night=0.85, searches=3.0, views=3.0,
                            cart=0.08, buy=0.45, price=45.0, until=1.0), ["books", "electronics"]),
    ("weekend hobbyist", dict(spw=0.7, weekend=0.85, night=0.05, searches=1.0, views=5.0,
                              cart=0.15, buy=0.55, price=70.0, until=1.0), ["garden", "sports", "toys"]),
    ("lapsed one-timer", dict(spw=0.8, weekend=0.29, night=0.10, searches=0.8, views=4.0,
                              cart=0.12, buy=0.50, price=40.0, until=0.25), ["toys", "beauty", "fashion"]),
    ("window shopper", dict(spw=0.8, weekend=0.35, night=0.15, searches=1.5, views=6.0,
                            cart=0.06, buy=0.0, price=30.0, until=1.0), ["fashion", "electronics", "sports"]),
]
WEIGHTS = [0.22, 0.14, 0.16, 0.16, 0.16, 0.16]
WORDS = ["red", "cheap", "best", "new", "gift", "small", "pro", "classic", "sale", "set"]
DROPOUT = 0.15


def user_behaviour(rng, blur):
    own = rng.choices(range(len(PERSONAS)), WEIGHTS)[0]
    other = rng.choice([p for p in range(len(PERSONAS)) if p != own])
    w = rng.uniform(0.0, blur)
    a, b = PERSONAS[own][1], PERSONAS[other][1]
    mix = {k: (1.0 - w) * a[k] + w * b[k] for k in a}
    # Categories: the persona's own, strayed into the other's with the blur's share.
    cats = (PERSONAS[own][2], PERSONAS[other][2], w)
    activity = math.exp(rng.gauss(0.0, 0.5))  # per-user activity, heavy-tailed
    spend = math.exp(rng.gauss(0.0, 0.35))    # per-user spend level
    return own, mix, cats, activity, spend


def simulate(rng, mix, cats, activity, spend, total_days):
    """Sessions of one user over `total_days` from START: (time, type, cat, amount, rating)."""
    start = rng.uniform(0.0, 0.4 * OBSERVED_DAYS)
    end = mix["until"] * total_days if mix["until"] < 1.0 else total_days
    end = max(end, start + 7.0)
    if rng.random() < DROPOUT:
        end = rng.uniform(start + (end - start) / 2.0, end)
    rate = mix["spw"] * activity / 7.0
    day = start
    sessions = []
    while True:
        day += rng.expovariate(rate)
        if day >= end:
            break
        sessions.append(day)
    events = []
    for s, d in enumerate(sessions):
        date = START + timedelta(days=math.floor(d))
        weekend_wanted = rng.random() < mix["weekend"]
        # Move the session to the nearest day of the wanted kind.
        while (date.weekday() >= 5) != weekend_wanted:
            date += timedelta(days=1)
        if rng.random() < mix["night"]:
            hour = rng.choice([22, 23, 0, 1, 2, 3])
        else:
            hour = rng.randint(8, 21)
        t = date + timedelta(hours=hour, minutes=rng.randint(0, 59), seconds=rng.randint(0, 59))
        own, other, w = cats
        cat = rng.choice(other if rng.random() < w else own)
        if rng.random() < 0.1:
            cat = rng.choice(CATEGORIES)
        for _ in range(poisson(rng, mix["searches"])):
            events.append((t, "search", s, None, cat, " ".join(rng.sample(WORDS, 2)), None, None))
            t += timedelta(seconds=rng.randint(5, 90))
        carted = []
        for _ in range(max(1, poisson(rng, mix["views"]))):
            item = f"{cat[:3]}-{rng.randint(1, 400):04d}"
            events.append((t, "view", s, item, cat, None, None, None))
            t += timedelta(seconds=rng.randint(5, 120))
            if rng.random() < mix["cart"]:
                events.append((t, "add_to_cart", s, item, cat, None, None, None))
                t += timedelta(seconds=rng.randint(5, 60))
                carted.append(item)
        for item in carted:
            if rng.random() < mix["buy"]:
                amount = max(1.0, rng.gauss(mix["price"], 0.3 * mix["price"]) * spend)
                events.append((t, "purchase", s, item, cat, None, round(amount, 2), None))
                t += timedelta(seconds=rng.randint(5, 30))
                if rng.random() < 0.2:
                    events.append((t, "rating", s, item, cat, None, None, rng.randint(2, 5)))
                    t += timedelta(seconds=5)
    return events


def poisson(rng, mean):
    if mean <= 0:
        return 0
    l, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= l:
            return k
        k += 1


def generate(a):
    rng = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)
    total_days = OBSERVED_DAYS + HORIZON_DAYS
    n_events = 0
    with open(os.path.join(a.out, "events.csv"), "w", newline="") as ef, \
            open(os.path.join(a.out, "truth.csv"), "w", newline="") as tf:
        ev = csv.writer(ef, lineterminator="\n")
        tr = csv.writer(tf, lineterminator="\n")
        ev.writerow(["user_id", "event_time", "event_type", "session_id", "item_id",
                     "category", "query", "amount", "rating"])
        tr.writerow(["user_id", "persona", "purchases", "revenue", "active"])
        for u in range(a.users):
            uid = f"u{u:07d}"
            own, mix, cats, activity, spend = user_behaviour(rng, a.blur)
            events = simulate(rng, mix, cats, activity, spend, total_days)
            before = [e for e in events if e[0] < AS_OF]
            after = [e for e in events if AS_OF <= e[0] < AS_OF + timedelta(days=HORIZON_DAYS)]
            if not before:
                continue  # a user first seen after the as-of date is no one's to predict
            for t, kind, s, item, cat, query, amount, rating in before:
                ev.writerow([uid, t.strftime("%Y-%m-%d %H:%M:%S"), kind, f"{uid}-{s}", item or "",
                             cat, query or "", "" if amount is None else f"{amount:.2f}",
                             "" if rating is None else rating])
            n_events += len(before)
            buys = [e for e in after if e[1] == "purchase"]
            days = len({e[0].date() for e in buys})
            revenue = round(sum(e[6] for e in buys), 2)
            tr.writerow([uid, PERSONAS[own][0], days, f"{revenue:.2f}", int(bool(after))])
    print(f"generated {n_events} events, {a.users} users, blur {a.blur} -> {a.out}", file=sys.stderr)


# ---- scoring ------------------------------------------------------------------------

def auc(scores, labels):
    """Mann-Whitney AUC with ties averaged."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2.0 + 1.0
        i = j + 1
    pos = sum(labels)
    neg = len(labels) - pos
    if pos == 0 or neg == 0:
        return float("nan")
    return (sum(r for r, l in zip(ranks, labels) if l) - pos * (pos + 1) / 2.0) / (pos * neg)


def correlation(x, y):
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else float("nan")


def top_decile_share(pred, actual):
    order = sorted(range(len(pred)), key=lambda i: -pred[i])
    top = order[: max(1, len(pred) // 10)]
    total = sum(actual)
    return sum(actual[i] for i in top) / total if total > 0 else float("nan")


def ari(a, b):
    from collections import Counter
    n = len(a)
    comb = lambda v: v * (v - 1) / 2.0
    table = Counter(zip(a, b))
    sum_ij = sum(comb(v) for v in table.values())
    sum_a = sum(comb(v) for v in Counter(a).values())
    sum_b = sum(comb(v) for v in Counter(b).values())
    expected = sum_a * sum_b / comb(n)
    top = (sum_a + sum_b) / 2.0
    return (sum_ij - expected) / (top - expected) if top != expected else 1.0


def read_column(path, column):
    out = {}
    if not os.path.exists(path):
        return out
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        key = reader.fieldnames[0]
        for row in reader:
            v = row.get(column)
            if v is None:
                return {}
            out[row[key]] = v
    return out


def number(v):
    try:
        x = float(v)
        return x if math.isfinite(x) else 0.0
    except (TypeError, ValueError):
        return 0.0


METRICS = [
    ("AUC of `p_purchase` (buys in the horizon)", "auc_p_purchase"),
    ("AUC of `expected_purchases` (buys)", "auc_expected"),
    ("MAE of `expected_purchases` (purchase days)", "mae_expected"),
    ("AUC of `p_alive` (any event in the horizon)", "auc_p_alive"),
    ("correlation of `predicted_revenue` with revenue", "corr_revenue"),
    ("MAE of `predicted_revenue`", "mae_revenue"),
    ("top-decile share of revenue", "top_decile_revenue"),
    ("persona recovery (adjusted Rand index)", "ari"),
]


def score_run(truth, out):
    users = sorted(truth)
    buys = [truth[u]["purchases"] > 0 for u in users]
    counts = [truth[u]["purchases"] for u in users]
    active = [truth[u]["active"] for u in users]
    revenue = [truth[u]["revenue"] for u in users]
    preds = os.path.join(out, "user_predictions.csv")
    res = {}

    def col(name):
        values = read_column(preds, name)
        return [number(values.get(u)) for u in users] if values else None

    p = col("p_purchase")
    res["auc_p_purchase"] = auc(p, buys) if p else float("nan")
    e = col("expected_purchases")
    if e:
        res["auc_expected"] = auc(e, buys)
        res["mae_expected"] = sum(abs(a - b) for a, b in zip(e, counts)) / len(users)
    a = col("p_alive")
    res["auc_p_alive"] = auc(a, active) if a else float("nan")
    r = col("predicted_revenue")
    if r:
        res["corr_revenue"] = correlation(r, revenue)
        res["mae_revenue"] = sum(abs(x - y) for x, y in zip(r, revenue)) / len(users)
        res["top_decile_revenue"] = top_decile_share(r, revenue)
    personas = read_column(os.path.join(out, "user_personas.csv"), "persona_id")
    if personas:
        both = [u for u in users if u in personas]
        res["ari"] = ari([truth[u]["persona"] for u in both], [personas[u] for u in both])
    return res


def score(a):
    truth = {}
    with open(a.truth, newline="") as f:
        for row in csv.DictReader(f):
            truth[row["user_id"]] = dict(persona=row["persona"], purchases=int(row["purchases"]),
                                         revenue=float(row["revenue"]), active=int(row["active"]) > 0)
    runs = [r.split("=", 1) for r in a.runs]
    results = [(name, score_run(truth, out)) for name, out in runs]
    if a.markdown:
        print("| " + (a.title or "metric") + " | " + " | ".join(n for n, _ in results) + " |")
        print("|---|" + "---|" * len(results))
    for label, key in METRICS:
        cells = []
        for _, res in results:
            v = res.get(key, float("nan"))
            cells.append("—" if math.isnan(v) else (f"{v:.2f}" if key.startswith("mae") else f"{v:.3f}"))
        if a.markdown:
            print(f"| {label} | " + " | ".join(cells) + " |")
        else:
            print(f"{key:20s} " + " ".join(f"{c:>8s}" for c in cells))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("out")
    g.add_argument("--users", type=int, required=True)
    g.add_argument("--blur", type=float, default=0.0)
    g.add_argument("--seed", type=int, default=42)
    s = sub.add_parser("score")
    s.add_argument("truth")
    s.add_argument("runs", nargs="+", help="NAME=OUT_DIR")
    s.add_argument("--markdown", action="store_true")
    s.add_argument("--title")
    a = ap.parse_args()
    if a.cmd == "generate":
        if not 0.0 <= a.blur < 1.0:
            ap.error("--blur must be in [0, 1)")
        generate(a)
    else:
        score(a)


if __name__ == "__main__":
    main()
