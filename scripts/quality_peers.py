#!/usr/bin/env python3
"""One peer of the quality tables of scripts/bench.py on one train/test pair: prints its test metrics as JSON.

  python3 scripts/quality_peers.py MODEL TRAIN.csv TEST.csv [--k 10,20] [--select precision@10]

MODEL is als or bpr (pip implicit: implicit feedback), svd (pip scikit-surprise) or libmf (pip libmf): ratings.
The CSVs have a header; their columns are user, item and an optional value (a rating or a count); more are ignored.

- implicit: the protocol of ../shared/bench/peer_implicit.py: k=64, ALS 15 iterations with regularization 0.05,
  BPR 100 iterations, num_threads=2 with BLAS at one thread, the best (by --select) of raw and log1p
  confidences when the values are not all 1.
- svd: Surprise's SVD with its defaults (k=100, 20 epochs, lr 0.005, reg 0.02), one thread (Surprise has no more).
- libmf: LIBMF's own defaults (L2 0.1, step 0.1, 20 iterations) at k=64 and 2 threads, as benches/sgd.rs runs it.
  The pip package's defaults differ (k=8, L1 0.04), hence the explicit parameters.
Rating models rank by predicted rating; RMSE covers every test row (predictions clipped to the training range).

Users and items are those of the training side, as `recsys eval` has them: held-out users the training side lacks
are not scored, held-out items it lacks count as relevant and are never recommended. Lists exclude training
items; every held-out row is relevant. The metric code is peer_implicit.py's, for each cut-off k: P@k = hits/k,
recall@k = hits/|held out|, nDCG@k with binary gains and the ideal DCG over min(k, |held out|).

Prints one JSON line (last on stdout): train_seconds (the fit alone, wall clock), metrics, params. Exits non-zero,
saying why on stderr, when the library is not installed or the run takes longer than --timeout.
"""
import argparse
import faulthandler
import json
import sys
import time

import numpy as np
import pandas as pd

SEED = 42


def load(train_csv, test_csv):
    tr, te = pd.read_csv(train_csv), pd.read_csv(test_csv)
    users, items = pd.Index(tr[tr.columns[0]].unique()), pd.Index(tr[tr.columns[1]].unique())
    value = lambda df: (df[df.columns[2]].to_numpy(np.float32) if df.shape[1] > 2
                        else np.ones(len(df), np.float32))
    enc = lambda df: (users.get_indexer(df[df.columns[0]]), items.get_indexer(df[df.columns[1]]), value(df))
    return enc(tr), enc(te), len(users), len(items)


def truth_of(te):
    """Per known test user: the set of held-out items known to training, and how many rows it holds out."""
    u, i, _ = te
    known = u >= 0
    df = pd.DataFrame({"u": u[known], "i": i[known]})
    g = df.groupby("u")
    sets = g.i.apply(lambda s: set(s[s >= 0]))
    return sets.index.to_numpy(np.int32), list(sets), g.size().to_numpy()


def ranking(recs, truth, n_rel, ks):
    out = {}
    for k in ks:
        p, r, nd = [], [], []
        for top, t, n in zip(recs, truth, n_rel):
            h = [1.0 if x in t else 0.0 for x in top[:k]]
            p.append(sum(h) / k)
            r.append(sum(h) / n)
            idcg = sum(1 / np.log2(i + 2) for i in range(min(k, n)))
            nd.append(sum(g / np.log2(i + 2) for i, g in enumerate(h)) / idcg)
        out.update({f"precision@{k}": float(np.mean(p)), f"recall@{k}": float(np.mean(r)),
                    f"ndcg@{k}": float(np.mean(nd))})
    return out


def top_n(scores, seen, n):
    """Best n columns of each row of scores, leaving out the seen (csr) entries."""
    rows = np.repeat(np.arange(scores.shape[0]), np.diff(seen.indptr))
    scores[rows, seen.indices] = -np.inf
    part = np.argpartition(-scores, n, axis=1)[:, :n]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1)
    return np.take_along_axis(part, order, axis=1)


def csr(tr, nu, ni):
    import scipy.sparse as sp
    u, i, w = tr
    return sp.csr_matrix((w, (u, i)), shape=(nu, ni))


def need(module, pip_name):
    try:
        return __import__(module)
    except ImportError:
        sys.exit(f"not installed (pip install {pip_name})")


def run_implicit(model, tr, te, nu, ni, ks, select):
    need("implicit", "implicit")
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking
    from threadpoolctl import threadpool_limits
    if model == "als":
        cls, params = AlternatingLeastSquares, dict(factors=64, iterations=15, regularization=0.05)
    else:
        cls, params = BayesianPersonalizedRanking, dict(factors=64, iterations=100)
    params.update(num_threads=2, random_state=SEED)
    m = csr(tr, nu, ni)
    uids, truth, n_rel = truth_of(te)
    variants = [("raw", m), ("log1p", m.log1p())] if m.data.max() > 1 else [("raw", m)]
    best = None
    for name, mm in variants:
        with threadpool_limits(1, "blas"):
            algo = cls(**params)
            t = time.perf_counter()
            algo.fit(mm, show_progress=False)
            secs = time.perf_counter() - t
            ids, _ = algo.recommend(uids, mm[uids], N=max(ks), filter_already_liked_items=True)
        metrics = ranking(ids, truth, n_rel, ks)
        if best is None or metrics[select] > best["metrics"][select]:
            best = dict(train_seconds=secs, metrics=metrics, params=dict(params, confidence=name))
    return best


def run_ratings(model, tr, te, nu, ni, ks):
    u, i, r = tr
    lo, hi = float(r.min()), float(r.max())
    if model == "svd":
        surprise = need("surprise", "scikit-surprise")
        params = dict(n_factors=100, n_epochs=20, lr_all=0.005, reg_all=0.02, random_state=SEED)
        ts = surprise.Dataset.load_from_df(pd.DataFrame({"u": u, "i": i, "r": r}),
                                           surprise.Reader(rating_scale=(lo, hi))).build_full_trainset()
        t = time.perf_counter()
        algo = surprise.SVD(**params).fit(ts)
        secs = time.perf_counter() - t
        # Unknown ids (-1) get the baseline terms Surprise has for them, clipped to the scale.
        pred = np.array([p.est for p in algo.test(list(zip(te[0], te[1], te[2].astype(float))))])
        # Surprise's inner ids follow the order of appearance; put its factors in ours.
        ui = [ts.to_inner_uid(x) for x in range(nu)]
        ii = [ts.to_inner_iid(x) for x in range(ni)]
        P, Q = algo.pu[ui], algo.qi[ii]
        user_bias, item_bias = ts.global_mean + algo.bu[ui], algo.bi[ii]
    else:
        need("libmf", "libmf")
        from libmf import mf
        params = dict(k=64, nr_iters=20, nr_threads=2, nr_bins=20, lambda_p1=0.0, lambda_q1=0.0,
                      lambda_p2=0.1, lambda_q2=0.1, eta=0.1, quiet=True)
        algo = mf.MF(**params)
        x = np.column_stack([u, i, r]).astype(np.float32)
        t = time.perf_counter()
        algo.fit(x)
        secs = time.perf_counter() - t
        # LIBMF answers ids outside the model (our -1) with the mean rating it keeps. Its predict reads the
        # pairs column by column (all users, then all items), hence the Fortran order.
        pairs = np.asfortranarray(np.column_stack([te[0], te[1]]), dtype=np.float32)
        pred = np.clip(algo.predict(pairs), lo, hi)
        P, Q = algo.p_factors(), algo.q_factors()
        user_bias, item_bias = np.zeros(nu), np.zeros(ni)
    metrics = {"rmse": float(np.sqrt(np.mean((pred - te[2]) ** 2)))}
    uids, truth, n_rel = truth_of(te)
    scores = (P[uids] @ Q.T + user_bias[uids, None] + item_bias[None, :]).astype(np.float32)
    metrics.update(ranking(top_n(scores, csr(tr, nu, ni)[uids], max(ks)), truth, n_rel, ks))
    return dict(train_seconds=secs, metrics=metrics, params=params)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", choices=["als", "bpr", "svd", "libmf"])
    ap.add_argument("train")
    ap.add_argument("test")
    ap.add_argument("--k", default="10", help="cut-offs of the ranking metrics")
    ap.add_argument("--select", default="precision@10", help="implicit: the metric that picks raw or log1p")
    ap.add_argument("--timeout", type=float, default=600,
                    help="seconds before giving up with a traceback (a stuck native fit included)")
    a = ap.parse_args()
    # A watchdog thread, so that it fires inside C code too, where a Python signal handler would wait.
    faulthandler.dump_traceback_later(a.timeout, exit=True)
    ks = [int(k) for k in a.k.split(",")]
    tr, te, nu, ni = load(a.train, a.test)
    if a.model in ("als", "bpr"):
        res = run_implicit(a.model, tr, te, nu, ni, ks, a.select)
    else:
        res = run_ratings(a.model, tr, te, nu, ni, ks)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
