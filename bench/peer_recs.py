#!/usr/bin/env python3
# Copied from ../shared/bench/peer_recs.py (the recommendation peer), unchanged below this line.
"""The recommendation peer: what an analyst would run in Python on the same events —
popularity, implicit's item-kNN (BM25) and implicit's ALS — top-K per user, never
recommending an item the user already bought before the as-of date.

  peer_recs.py EVENTS.csv OUT_DIR --as-of 2026-06-01 [--k 10]
writes OUT_DIR/{popular,itemknn,als}.csv (user_id,rank,item_id) and prints timings.
Needs: pandas, scipy, implicit.
"""
import argparse, os, time
import numpy as np
import pandas as pd
import scipy.sparse as sp

WEIGHTS = {"view": 1.0, "add_to_cart": 3.0, "purchase": 5.0, "rating": 2.0, "search": 0.0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("events")
    ap.add_argument("out")
    ap.add_argument("--as-of", required=True)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--exclude", choices=["bought", "seen"], default="bought",
                    help="never recommend items the user bought (default) or interacted with at all")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    t0 = time.time()
    ev = pd.read_csv(a.events, usecols=["user_id", "event_time", "event_type", "item_id"],
                     dtype={"user_id": str, "item_id": str, "event_type": str})
    ev["event_time"] = pd.to_datetime(ev["event_time"], format="mixed")
    ev = ev[(ev["event_time"] < pd.Timestamp(a.as_of)) & ev["item_id"].notna()]
    ev["w"] = ev["event_type"].map(WEIGHTS).fillna(1.0)
    ev = ev[ev["w"] > 0]
    users = ev["user_id"].astype("category")
    items = ev["item_id"].astype("category")
    ui = sp.csr_matrix((ev["w"].to_numpy(np.float32), (users.cat.codes, items.cat.codes)),
                       shape=(len(users.cat.categories), len(items.cat.categories)))
    ui.sum_duplicates()
    bought = ev[ev["event_type"] == "purchase"] if a.exclude == "bought" else ev
    bought_ui = sp.csr_matrix((np.ones(len(bought), np.float32),
                               (pd.Categorical(bought["user_id"], users.cat.categories).codes,
                                pd.Categorical(bought["item_id"], items.cat.categories).codes)), shape=ui.shape)
    t_read = time.time() - t0
    uids = np.asarray(users.cat.categories)
    iids = np.asarray(items.cat.categories)
    allu = np.arange(ui.shape[0])

    def write(name, ids, scores_unused=None):
        rows = []
        for u in range(ids.shape[0]):
            for r, j in enumerate(ids[u]):
                if j >= 0:
                    rows.append((uids[u], r + 1, iids[j]))
        pd.DataFrame(rows, columns=["user_id", "rank", "item_id"]).to_csv(os.path.join(a.out, name + ".csv"), index=False)

    timings = {"read": t_read}
    # popularity: purchases, then all weight
    t = time.time()
    pop = np.asarray(bought_ui.sum(axis=0)).ravel() * 1000 + np.asarray(ui.sum(axis=0)).ravel()
    order = np.argsort(-pop, kind="stable")
    ids = np.full((ui.shape[0], a.k), -1)
    for u in range(ui.shape[0]):
        seen = set(bought_ui.indices[bought_ui.indptr[u]:bought_ui.indptr[u + 1]])
        picks = [j for j in order[: a.k + len(seen)] if j not in seen][: a.k]
        ids[u, : len(picks)] = picks
    write("popular", ids)
    timings["popular"] = time.time() - t

    from implicit.nearest_neighbours import BM25Recommender
    from implicit.als import AlternatingLeastSquares
    import implicit.gpu  # noqa: F401

    for name, model in (("itemknn", BM25Recommender(K=100)),
                        ("als", AlternatingLeastSquares(factors=64, regularization=0.05, alpha=2.0,
                                                        iterations=15, random_state=42))):
        t = time.time()
        model.fit(ui, show_progress=False)
        ids, _ = model.recommend(allu, bought_ui, N=a.k, filter_already_liked_items=True)
        write(name, ids)
        timings[name] = time.time() - t
    print("peer_recs " + " ".join(f"{k}={v:.2f}" for k, v in timings.items()) + f" total={time.time() - t0:.2f}")


if __name__ == "__main__":
    main()
