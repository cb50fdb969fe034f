"""recsys against implicit, both from Python, in one run: implicit ALS with
k = 64 and 15 iterations on 2 threads, timed with time.perf_counter.

    OPENBLAS_NUM_THREADS=1 python python/bench/vs_implicit.py \
        ../shared/bench/splits/ml-1m_implicit_train.csv ../shared/bench/splits/ml-1m_implicit_test.csv

Prints, for each library: fit seconds, recommend-all top-10 seconds (every
training user, training items excluded) and P@10 / nDCG@10 on the test file,
computed by one function here from each library's lists (users with test
items; training items excluded). implicit is run as
../shared/bench/peer_implicit.py runs it (regularization 0.05, BLAS on one
thread); recsys with its defaults at k = 64 (α and λ follow the data).
Needs: numpy, pandas, scipy, implicit, threadpoolctl.
"""

import sys
import time

import numpy as np
import pandas as pd
import scipy.sparse as sp

import recsys

K, ITERS, THREADS, N = 64, 15, 2, 10


def metrics(lists, truth):
    """P@10 and nDCG@10 over the users of `truth` ({user: set of items})."""
    p, nd = [], []
    for u, rel in truth.items():
        got = lists.get(u, [])[:N]
        hits = [1.0 if i in rel else 0.0 for i in got]
        p.append(sum(hits) / N)
        idcg = sum(1 / np.log2(r + 2) for r in range(min(N, len(rel))))
        nd.append(sum(h / np.log2(r + 2) for r, h in enumerate(hits)) / idcg)
    return float(np.mean(p)), float(np.mean(nd))


def run_recsys(train_csv, test_csv, truth):
    t = time.perf_counter()
    x = recsys.Interactions.from_csv(train_csv, implicit=True)
    load = time.perf_counter() - t
    t = time.perf_counter()
    model = recsys.ALS(factors=K, epochs=ITERS, threads=THREADS).fit(x, show_progress=False)
    fit = time.perf_counter() - t
    t = time.perf_counter()
    df = model.recommend_all(n=N, format="numpy")
    rec_all = time.perf_counter() - t
    lists = {}
    for u, i in zip(df["user"].tolist(), df["item"].tolist()):
        lists.setdefault(u, []).append(i)
    own = model.evaluate(test_csv, k=N)
    return load, fit, rec_all, metrics(lists, truth), own


def run_implicit(tr, truth):
    import implicit
    from threadpoolctl import threadpool_limits

    users = pd.Index(tr.user.unique())
    items = pd.Index(tr.item.unique())
    w = tr[tr.columns[2]].astype(np.float32).values if tr.shape[1] > 2 else np.ones(len(tr), np.float32)
    m = sp.csr_matrix((w, (users.get_indexer(tr.user), items.get_indexer(tr.item))),
                      shape=(len(users), len(items)))
    with threadpool_limits(1, "blas"):
        model = implicit.als.AlternatingLeastSquares(
            factors=K, iterations=ITERS, regularization=0.05, num_threads=THREADS, random_state=42)
        t = time.perf_counter()
        model.fit(m, show_progress=False)
        fit = time.perf_counter() - t
        every = np.arange(len(users))
        t = time.perf_counter()
        ids, _ = model.recommend(every, m[every], N=N, filter_already_liked_items=True)
        rec_all = time.perf_counter() - t
    lists = {users[u]: [items[i] for i in row if i >= 0] for u, row in zip(every, ids)}
    return fit, rec_all, metrics(lists, truth)


def main():
    train_csv, test_csv = sys.argv[1], sys.argv[2]
    tr, te = pd.read_csv(train_csv), pd.read_csv(test_csv)
    truth = te.groupby("user").item.apply(set).to_dict()
    load, fit, rec_all, (p, nd), own = run_recsys(train_csv, test_csv, truth)
    print(f"recsys   {recsys.__version__}: load {load:.3f}s  fit {fit:.3f}s  recommend_all {rec_all:.3f}s  "
          f"P@10 {p:.4f}  nDCG@10 {nd:.4f}  (evaluate(): P@10 {own['precision@10']:.4f} "
          f"nDCG@10 {own['ndcg@10']:.4f})")
    ifit, irec, (ip, ind) = run_implicit(tr, truth)
    import implicit

    print(f"implicit {implicit.__version__}: fit {ifit:.3f}s  recommend_all {irec:.3f}s  "
          f"P@10 {ip:.4f}  nDCG@10 {ind:.4f}")
    print(f"recsys / implicit speed: fit {ifit / fit:.2f}x  recommend_all {irec / rec_all:.2f}x")


if __name__ == "__main__":
    main()
