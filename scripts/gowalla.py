#!/usr/bin/env python3
"""Gowalla (LightGCN split) end to end, recsys beside implicit's ALS in one run.

Protocol: every choice is made on train.txt -> valid.txt; the chosen setting is then
fitted on train.txt + valid.txt and test.txt is looked at once.

  recsys: `recsys tune` on train -> valid, `recsys train --params` on train + valid,
          `recsys eval --test test.txt --k 20`; and the defaults (no flags) the same way.
  implicit: ALS k=64 with its defaults (15 iterations, regularization 0.05) and k=256 with
            regularization and alpha chosen on valid from a small grid.

Usage: python3 scripts/gowalla.py [--budget 100s] [--skip-implicit | --only-implicit] [--out DIR]
       python3 scripts/gowalla.py --grid "k=128,256 reg_exponent=1,0.8 item_degree_beta=0,0.3"
         (the per-setting table on train -> valid: every combination of the values given,
          on top of the defaults `recsys train` picks for train.txt; nothing looks at test)
Needs target/release/recsys; for the peer: pip install numpy scipy implicit threadpoolctl.
Metrics: recall@20 and nDCG@20 over users with a held-out item, training items excluded
(the same definitions as `recsys eval`).
"""
import argparse, json, os, subprocess, sys, time

D = "../shared/data/gowalla-lightgcn"
BIN = os.environ.get("RECSYS", "target/release/recsys")


def run(cmd):
    print("$", " ".join(cmd), flush=True)
    t = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return out, time.perf_counter() - t


def recsys_eval(model, test):
    out, _ = run([BIN, "eval", "--model", model, "--test", test, "--k", "20", "--format", "json"])
    m = json.loads(out)
    m = m.get("ranking", m)
    flat = {}

    def walk(o):
        for k, v in o.items():
            if isinstance(v, dict):
                walk(v)
            else:
                flat[k] = v

    walk(m)
    return flat["recall@20"], flat["ndcg@20"]


def recsys_part(a, out):
    rows = []
    best = f"{out}/best.json"
    _, t_tune = run([BIN, "tune", "--implicit", "--data", f"{D}/train.txt", "--validation",
                     f"{D}/valid.txt", "--metric", "recall@20", "--budget", a.budget, "--out", best,
                     "--format", "csv", "-q"])
    model = f"{out}/tuned.safetensors"
    _, t_fit = run([BIN, "train", "--implicit", "--params", best, "--data", f"{D}/train.txt", "--data",
                    f"{D}/valid.txt", "--out", model, "-q"])
    chosen = json.load(open(best))
    r, n = recsys_eval(model, f"{D}/test.txt")
    rows.append(("recsys tune + train --params", chosen["value"], r, n, t_tune + t_fit))
    print(json.dumps(chosen["params"]), flush=True)
    model = f"{out}/defaults.safetensors"
    _, t_def = run([BIN, "train", "--implicit", "--data", f"{D}/train.txt", "--data", f"{D}/valid.txt", "--out",
                    model, "-q"])
    r, n = recsys_eval(model, f"{D}/test.txt")
    rows.append(("recsys defaults (no flags)", None, r, n, t_def))
    return rows


def read_adj(path):
    pairs = []
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) > 1:
                u = int(p[0])
                pairs.extend((u, int(i)) for i in p[1:])
    return pairs


def implicit_part():
    import numpy as np, scipy.sparse as sp
    from threadpoolctl import threadpool_limits
    import implicit

    tr, va, te = (read_adj(f"{D}/{n}.txt") for n in ("train", "valid", "test"))
    nu = 1 + max(u for u, _ in tr + va + te)
    ni = 1 + max(i for _, i in tr + va + te)

    def csr(pairs):
        u, i = zip(*pairs)
        return sp.csr_matrix((np.ones(len(u), np.float32), (u, i)), shape=(nu, ni))

    def truth(pairs):
        t = {}
        for u, i in pairs:
            t.setdefault(u, set()).add(i)
        return t

    def fit_eval(train, test, k, reg, alpha):
        with threadpool_limits(1, "blas"):
            m = implicit.als.AlternatingLeastSquares(factors=k, iterations=15, regularization=reg,
                                                     alpha=alpha, num_threads=2, random_state=42)
            t = time.perf_counter()
            m.fit(train, show_progress=False)
            secs = time.perf_counter() - t
            uids = np.array(sorted(test))
            ids, _ = m.recommend(uids, train[uids], N=20, filter_already_liked_items=True)
        rec, nd = [], []
        for u, r in zip(uids, ids):
            h = [1.0 if x in test[u] else 0.0 for x in r]
            rec.append(sum(h) / len(test[u]))
            idcg = sum(1 / np.log2(j + 2) for j in range(min(20, len(test[u]))))
            nd.append(sum(g / np.log2(j + 2) for j, g in enumerate(h)) / idcg)
        return float(np.mean(rec)), float(np.mean(nd)), secs

    full = csr(tr + va)
    test = truth(te)
    rows = []
    r, n, s = fit_eval(full, test, 64, 0.05, 1.0)
    rows.append(("implicit ALS k=64 defaults", None, r, n, s))
    # k=256: regularization and alpha chosen on train -> valid only.
    train, valid = csr(tr), truth(va)
    grid = []
    for reg in (0.05, 1.0):
        for alpha in (1.0, 20.0):
            v = fit_eval(train, valid, 256, reg, alpha)[0]
            print(f"implicit k=256 reg={reg} alpha={alpha}: valid recall@20 {v:.4f}", flush=True)
            grid.append((v, reg, alpha))
    v, reg, alpha = max(grid)
    r, n, s = fit_eval(full, test, 256, reg, alpha)
    rows.append((f"implicit ALS k=256 reg={reg} alpha={alpha} (chosen on valid)", v, r, n, s))
    return rows


def grid(spec, out):
    import itertools
    base_model = f"{out}/base.safetensors"
    run([BIN, "train", "--implicit", "--data", f"{D}/train.txt", "--epochs", "1", "--out", base_model, "-q"])
    info, _ = run([BIN, "info", base_model, "--json"])
    info = json.loads(info)
    meta = info.get("meta", info)
    base = dict(meta["params"])
    base["epochs"] = 15
    tr = read_adj(f"{D}/train.txt")
    n_mean = len(tr) / len({u for u, _ in tr})
    n_items = len({i for _, i in tr})
    axes = [(a.split("=")[0], a.split("=")[1].split(",")) for a in spec.split()]
    print("| " + " | ".join(n for n, _ in axes) + " | valid recall@20 | valid nDCG@20 | fit s | s/sweep |")
    print("|" + "---|" * (len(axes) + 4))
    for combo in itertools.product(*(v for _, v in axes)):
        params = dict(base)
        for (name, _), v in zip(axes, combo):
            name = "factors" if name == "k" else name
            params[name] = v if name == "init" else (int(v) if name == "factors" else float(v))
        # reg follows ν so that λ is unchanged for a row of the mean count
        # (as `recsys tune` draws it), unless reg is on the grid itself.
        if "reg" not in dict(axes):
            off = params.get("reg_unobserved", 0.0) * n_items
            params["reg"] = base["reg"] * n_mean / (n_mean + off) ** params.get("reg_exponent", 1.0)
        f = f"{out}/grid.json"
        json.dump({"algorithm": "als-implicit", "params": params, "metric": "recall@20",
                   "value": 0, "trials": 0, "seconds": 0, "seed": 42, "validation": "grid",
                   "data": [f"{D}/train.txt"]}, open(f, "w"))
        m = f"{out}/grid.safetensors"
        _, secs = run([BIN, "train", "--implicit", "--params", f, "--data", f"{D}/train.txt", "--out", m, "-q"])
        info = json.loads(run([BIN, "info", m, "--json"])[0])
        hist = info.get("meta", info)["history"]
        sweep = sum(h["seconds"] for h in hist) / len(hist)
        r, n = recsys_eval(m, f"{D}/valid.txt")
        print("| " + " | ".join(combo) + f" | {r:.4f} | {n:.4f} | {secs:.1f} | {sweep:.2f} |",
              flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--grid")
    p.add_argument("--budget", default="100s")
    p.add_argument("--out", default="/tmp/gowalla-bench")
    p.add_argument("--skip-implicit", action="store_true")
    p.add_argument("--only-implicit", action="store_true")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    if a.grid:
        return grid(a.grid, a.out)
    rows = [] if a.only_implicit else recsys_part(a, a.out)
    if not a.skip_implicit:
        rows += implicit_part()
    print("\n| what | valid recall@20 | test recall@20 | test nDCG@20 | seconds |")
    print("|---|---|---|---|---|")
    for what, v, r, n, s in rows:
        vs = f"{v:.4f}" if v is not None else "–"
        print(f"| {what} | {vs} | {r:.4f} | {n:.4f} | {s:.1f} |")


if __name__ == "__main__":
    sys.exit(main())
