#!/usr/bin/env python3
"""Regenerates BENCHMARKS.md: recsys and its peers, measured in one run on one machine.

Workloads (ml-1m splits in ../shared/bench/splits unless said otherwise):
  load          recsys inspect vs pandas / polars (Python) reading the same file + dense ids
  train SGD     recsys sgd vs Surprise SVD (run_peers.py)
  train ALS     recsys implicit ALS vs implicit and Spark (run_peers.py)
  train BPR     recsys bpr vs implicit BPR (run_peers.py)
  explicit ALS  recsys als vs Spark ALS (run_peers.py)
  recommend-all recsys recommend --all vs implicit's model.recommend (run_peers.py)
  serve         recsys serve + recsys loadtest (and nginx serving a static JSON file, if installed)
  scale         (with --scale N) synth N ratings, then load, SGD and implicit ALS at k=64 with peak RSS
  quality       (with --quality) recsys defaults, recsys tune and peers on six data sets, written into
                docs/benchmarks.md (its section "Quality across data sets"); peers by scripts/quality_peers.py

Every figure has the 1-min load average taken just before it: the machine has few cores and
anything else running shows up in the timings.

Usage (from the repository root, after `cargo build --release`):
  python3 scripts/bench.py                       # everything, writes BENCHMARKS.md
  python3 scripts/bench.py --quick --out /tmp/b.md   # a fast dry run of the script
  python3 scripts/bench.py --scale 25000000 --scale-only --out /tmp/scale.md
  python3 scripts/bench.py --quality-only        # the quality tables alone, into docs/benchmarks.md
  python3 scripts/bench.py --quality-only --quick --quality-out /tmp/q.md   # tune 10 s, no Gowalla
Peers need: pip install numpy pandas scipy scikit-surprise implicit pyspark threadpoolctl polars pyarrow
(and Java 17 for Spark; libmf for the quality tables). Missing peers are reported as such, not silently dropped.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.normpath(os.path.join(ROOT, "..", "shared"))
SPLITS = os.path.join(SHARED, "bench", "splits")
DATA = os.path.join(SHARED, "data")
RUN_PEERS = os.path.join(SHARED, "bench", "run_peers.py")
TIME = "/usr/bin/time"


TMP = None  # the run's scratch folder, shown as $TMP in the commands


def rel(p):
    """A path as written in the commands of the page (relative to the repository)."""
    if TMP and p.startswith(TMP):
        return "$TMP" + p[len(TMP):]
    try:
        r = os.path.relpath(p, ROOT)
    except ValueError:
        return p
    return r if not r.startswith("../../") else p


def load1():
    return os.getloadavg()[0]


def run(cmd, env=None, check=True, unset=()):
    """Runs cmd under /usr/bin/time -v, with env added and the variables in unset removed.
    Returns (stdout, wall seconds, peak RSS bytes, load before, stderr)."""
    la = load1()
    env = {k: v for k, v in dict(os.environ, **(env or {})).items() if k not in unset}
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        full = [TIME, "-v", "-o", tf.name] + cmd
        t0 = time.perf_counter()
        p = subprocess.run(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        wall = time.perf_counter() - t0
        tv = tf.read()
    if check and p.returncode != 0:
        sys.exit(f"command failed ({p.returncode}): {shlex.join(cmd)}\n{p.stderr[-3000:]}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", tv)
    rss = int(m.group(1)) * 1024 if m else None
    return p.stdout, wall, rss, la, p.stderr


def best(cmd, repeats, parse=lambda out: {}, **kw):
    """Best (lowest wall) of `repeats` runs; the parsed output of that run, its RSS and load."""
    runs = []
    for _ in range(repeats):
        out, wall, rss, la, err = run(cmd, **kw)
        runs.append(dict(parse(out), wall=wall, rss=rss, load=la, stderr=err))
    key = "key" if "key" in runs[0] else "wall"
    return min(runs, key=lambda r: r[key])


def gb(b):
    return f"{b / 2**30:.2f} GiB" if b >= 2**30 else f"{b / 2**20:.0f} MiB"


def fmt_s(s):
    return f"{s:.3f} s" if s < 10 else f"{s:.1f} s"


class Page:
    def __init__(self):
        self.parts = []
        self.max_load = 0.0

    def table(self, title, header, rows, commands, notes=(), level=2):
        self.parts.append(f"{'#' * level} {title}\n")
        self.parts.append("| " + " | ".join(header) + " |")
        self.parts.append("|" + "|".join("---" for _ in header) + "|")
        for r in rows:
            self.parts.append("| " + " | ".join("" if c is None else str(c) for c in r) + " |")
        self.parts.append("")
        for n in notes:
            self.parts.append(n)
            self.parts.append("")
        self.parts.append("```sh")
        # Scratch paths read as $TMP/..., unquoted, so the lines still paste into a shell.
        self.parts.extend(re.sub(r"'\$TMP(/[^' ]*)'", r"$TMP\1", c) for c in commands)
        self.parts.append("```\n")

    def note_load(self, la):
        self.max_load = max(self.max_load, la)
        return f"{la:.2f}"


# ----------------------------------------------------------------------------------------------
# workloads
# ----------------------------------------------------------------------------------------------
def inspect_parse(out):
    j = json.loads(out)
    return dict(key=j["load_seconds"], seconds=j["load_seconds"], rows=j["rows"], users=j["users"], items=j["items"])


PY_LOAD = r"""
import json, sys, time
lib, path = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
if lib == "pandas":
    import pandas as pd
    df = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
    t1 = time.perf_counter()
    u, _ = pd.factorize(df[df.columns[0]]); i, _ = pd.factorize(df[df.columns[1]])
else:
    import polars as pl
    df = pl.read_parquet(path) if path.endswith(".parquet") else pl.read_csv(path)
    t1 = time.perf_counter()
    c = df.columns
    d = df.select(pl.col(c[0]).rank("dense").cast(pl.UInt32), pl.col(c[1]).rank("dense").cast(pl.UInt32))
t2 = time.perf_counter()
print(json.dumps({"read": t1 - t0, "total": t2 - t0, "rows": len(df)}))
"""


def bench_load(page, a, files):
    rows, cmds = [], []
    for path in files:
        if not os.path.exists(path):
            continue
        name = os.path.basename(path)
        cmd = [a.bin, "inspect", "--data", path]
        r = best(cmd, a.repeats, inspect_parse)
        rows.append([name, "recsys inspect (read, check, dense ids, de-duplication)", f"{r['rows']:,}",
                     fmt_s(r["seconds"]), gb(r["rss"]), page.note_load(r["load"])])
        cmds.append(shlex.join([rel(a.bin), "inspect", "--data", rel(path)]))
        for lib in ("pandas", "polars"):
            pc = [sys.executable, "-c", PY_LOAD, lib, path]
            try:
                r = best(pc, a.repeats, lambda o: (lambda j: dict(key=j["total"], **j))(json.loads(o)),
                         env={"POLARS_MAX_THREADS": str(os.cpu_count())})
            except SystemExit as e:
                rows.append([name, f"{lib} (Python)", "", f"failed: {str(e)[:80]}", "", ""])
                continue
            what = ("pandas read_csv/read_parquet + pd.factorize" if lib == "pandas"
                    else "polars read_csv/read_parquet + rank('dense')")
            rows.append([name, what, f"{r['rows']:,}", f"{fmt_s(r['total'])} (read {fmt_s(r['read'])})",
                         gb(r["rss"]), page.note_load(r["load"])])
        cmds.append(f"python3 -c \"$PY_LOAD\" pandas|polars {rel(path)}   # see scripts/bench.py")
    page.table("Load", ["file", "system", "rows", "time", "peak RSS", "load"], rows, cmds,
               ["Time = best of the repeats, measured inside the process (recsys: `load_seconds`). "
                "The peers read the file and give dense integer ids to the user and item columns; recsys also "
                "checks every row, resolves duplicates and fingerprints the data."])


def train_parse(out):
    j = json.loads(out)
    return dict(key=j["train_seconds"], **j)


def recsys_train(a, args, out_model):
    cmd = [a.bin, "train", "-q", "--json", "--out", out_model] + args
    return best(cmd, a.repeats, train_parse), shlex.join([rel(a.bin), "train"] + [rel(x) for x in args])


def peers(results, task, library, model_prefix):
    return [r for r in results if r["dataset"] == "ml-1m" and r["task"] == task and r["library"] == library
            and r["model"].startswith(model_prefix)]


def pstr(params, keys):
    return ", ".join(f"{k}={params[k]}" for k in keys if k in params)


def bench_train(page, a, peer_res, peer_cmd, tmp):
    tr_e, te_e = (os.path.join(SPLITS, f"ml-1m_explicit_{s}.csv") for s in ("train", "test"))
    tr_i, te_i = (os.path.join(SPLITS, f"ml-1m_implicit_{s}.csv") for s in ("train", "test"))
    ep = ["--epochs", "2"] if a.quick else []
    models = {}

    # SGD
    r, c = recsys_train(a, ["--data", tr_e, "--test", te_e] + ep, os.path.join(tmp, "sgd.safetensors"))
    rows = [["recsys", f"biased MF, SGD, k=64, {r['epochs']} epochs, 2 threads", fmt_s(r["train_seconds"]),
             f"{r['train_rows'] * r['epochs'] / r['train_seconds'] / 1e6:.1f} M", f"{r['test']['rmse']:.4f}",
             page.note_load(r["load"])]]
    for p in peers(peer_res, "explicit", "scikit-surprise", "SVD"):
        thr = p.get("throughput", {}).get("ratings_per_sec_per_epoch")
        rows.append(["Surprise", f"SVD, {pstr(p['params'], ['n_factors', 'n_epochs'])}, 1 thread",
                     fmt_s(p["train_seconds"]), f"{thr / 1e6:.1f} M" if thr else "", f"{p['metrics']['rmse']:.4f}",
                     peer_load(p)])
    page.table("Train: SGD on ratings (ml-1m, 800,167 train / 200,042 test ratings)",
               ["system", "model", "train time", "ratings/s/epoch", "test RMSE", "load"], rows, [c, peer_cmd])

    # explicit ALS
    r, c = recsys_train(a, ["--algo", "als", "--data", tr_e, "--test", te_e] + ep, os.path.join(tmp, "eals.safetensors"))
    rows = [["recsys", f"ALS (weighted-λ, biases), k=16, {r['epochs']} sweeps, 2 threads", fmt_s(r["train_seconds"]),
             f"{r['seconds_per_epoch']:.3f}", f"{r['test']['rmse']:.4f}", page.note_load(r["load"])]]
    for p in peers(peer_res, "explicit", "pyspark.ml", "ALS"):
        rows.append(["Spark", f"ALS, {pstr(p['params'], ['rank', 'maxIter', 'regParam', 'numUserBlocks'])}, local[2]",
                     fmt_s(p["train_seconds"]), f"{p['throughput']['seconds_per_iteration']:.3f}",
                     f"{p['metrics']['rmse']:.4f}", peer_load(p)])
    page.table("Train: ALS on ratings (ml-1m, same split)",
               ["system", "model", "train time", "s/iteration", "test RMSE", "load"], rows, [c, peer_cmd],
               ["Spark drops test rows of users/items it has not seen (45 of 200,042); recsys scores them by the "
                "baseline terms."])

    # implicit ALS
    r, c = recsys_train(a, ["--implicit", "-k", "64", "--data", tr_i, "--test", te_i] + ep,
                        os.path.join(tmp, "ials.safetensors"))
    models["ials"] = os.path.join(tmp, "ials.safetensors")
    rows = [["recsys", f"implicit ALS (CG), k=64, {r['epochs']} iterations, 2 threads", fmt_s(r["train_seconds"]),
             f"{r['seconds_per_epoch']:.4f}", f"{r['test']['precision@10']:.4f}", f"{r['test']['ndcg@10']:.4f}",
             page.note_load(r["load"])]]
    for lib, name in (("implicit", "implicit"), ("pyspark.ml", "Spark")):
        for p in peers(peer_res, "implicit", lib, "ALS"):
            rows.append([name, f"{p['model']}, {pstr(p['params'], ['factors', 'rank', 'iterations', 'maxIter', 'num_threads', 'numUserBlocks'])}",
                         fmt_s(p["train_seconds"]), f"{p['throughput']['seconds_per_iteration']:.4f}",
                         f"{p['metrics']['precision@10']:.4f}", f"{p['metrics']['ndcg@10']:.4f}", peer_load(p)])
    page.table("Train: implicit ALS (ml-1m ratings ≥ 4 as positives, per-user 80/20)",
               ["system", "model", "train time", "s/iteration", "P@10", "nDCG@10", "load"], rows, [c, peer_cmd])

    # BPR
    r, c = recsys_train(a, ["--algo", "bpr", "--data", tr_i, "--test", te_i] + ep, os.path.join(tmp, "bpr.safetensors"))
    rows = [["recsys", f"BPR, k=64, {r['epochs']} epochs, 2 threads", fmt_s(r["train_seconds"]),
             f"{r['seconds_per_epoch']:.4f}", f"{r['test']['precision@10']:.4f}", f"{r['test']['ndcg@10']:.4f}",
             page.note_load(r["load"])]]
    for p in peers(peer_res, "implicit", "implicit", "BPR"):
        rows.append(["implicit", f"BPR, {pstr(p['params'], ['factors', 'iterations', 'num_threads'])}",
                     fmt_s(p["train_seconds"]), f"{p['throughput']['seconds_per_iteration']:.4f}",
                     f"{p['metrics']['precision@10']:.4f}", f"{p['metrics']['ndcg@10']:.4f}", peer_load(p)])
    page.table("Train: BPR (same implicit split)",
               ["system", "model", "train time", "s/epoch", "P@10", "nDCG@10", "load"], rows, [c, peer_cmd])
    return models


def peer_load(p):
    v = p.get("loadavg_1m_before")
    return f"{v:.2f}" if isinstance(v, (int, float)) else "see note"


def bench_recommend_all(page, a, peer_res, peer_cmd, model, tmp):
    out = os.path.join(tmp, "recs.parquet")
    cmd = [a.bin, "recommend", "--all", "-n", "10", "--model", model, "--out", out]
    r = best(cmd, a.repeats)
    info = json.loads(subprocess.run([a.bin, "info", model, "--json"], stdout=subprocess.PIPE, text=True,
                                     check=True).stdout)
    nu = info.get("n_users") or info.get("users")
    rows = [["recsys", "top-10 for every user, training items excluded, written to Parquet (process wall time, "
             "model load included)", fmt_s(r["wall"]), f"{nu / r['wall']:,.0f}" if nu else "", gb(r["rss"]),
             page.note_load(r["load"])]]
    for p in peers(peer_res, "implicit", "implicit", "ALS (implicit, CG)"):
        t = p["throughput"]
        rows.append(["implicit", f"`model.recommend(all users, N=10, filter_already_liked_items=True)` after {p['model']}"
                     f" (in memory, no output file)", fmt_s(t["recommend_all_seconds"]),
                     f"{t['users_per_sec']:,.0f}", "", peer_load(p)])
    page.table("Recommend-all (implicit ALS k=64 model of ml-1m, 6,038 users × 3,533 items)",
               ["system", "what", "time", "users/s", "peak RSS", "load"], rows,
               [shlex.join([rel(a.bin), "recommend", "--all", "-n", "10", "--model", rel(model), "--out", rel(out)]),
                peer_cmd])


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=30):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def loadtest(a, model, port, conns):
    cmd = [a.bin, "loadtest", "--model", model, "--addr", f"127.0.0.1:{port}", "-c", str(conns),
           "-d", str(a.serve_seconds), "--json"]
    out, wall, rss, la, _ = run(cmd)
    return json.loads(out), la, cmd


def bench_serve(page, a, model, tmp):
    rows, cmds = [], []
    port = free_port()
    srv = subprocess.Popen([a.bin, "serve", "--model", model, "--addr", f"127.0.0.1:{port}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_port(port):
            sys.exit("recsys serve did not start")
        for conns in a.connections:
            j, la, cmd = loadtest(a, model, port, conns)
            rows.append(["recsys serve", f"GET /v1/users/{{id}}/recommendations?n=10, random users, {conns} connections",
                         f"{j['requests_per_second']:,.0f}", f"{j['p50_ms']:.2f}", f"{j['p99_ms']:.2f}",
                         f"{j['non_2xx']} / {j['errors']}", page.note_load(la)])
            cmds.append(shlex.join([rel(x) if x.startswith("/") else x for x in cmd]))
    finally:
        srv.send_signal(signal.SIGTERM)
        srv.wait(timeout=30)
    cmds.insert(0, shlex.join([rel(a.bin), "serve", "--model", rel(model), "--addr", f"127.0.0.1:{port}"]))
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if nginx:
        nport = free_port()
        d = os.path.join(tmp, "nginx")
        os.makedirs(os.path.join(d, "logs"), exist_ok=True)
        # nginx workers drop root: they must be able to read the file.
        for x in (tmp, d):
            os.chmod(x, 0o755)
        # One fixed top-10 answer of about the same size as recsys' reply.
        body = json.dumps({"user": "1", "items": [{"item": str(i), "score": 1.0 - i / 100} for i in range(10)],
                           "source": "model"})
        open(os.path.join(d, "reply.json"), "w").write(body)
        conf = os.path.join(d, "nginx.conf")
        open(conf, "w").write(f"""daemon off; worker_processes {os.cpu_count()}; pid {d}/nginx.pid;
error_log {d}/logs/error.log; events {{ worker_connections 8192; }}
http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d}; fastcgi_temp_path {d};
uwsgi_temp_path {d}; scgi_temp_path {d}; keepalive_requests 1000000;
server {{ listen 127.0.0.1:{nport}; root {d};
location / {{ default_type application/json; try_files /reply.json =404; }} }} }}
""")
        ng = subprocess.Popen([nginx, "-c", conf, "-p", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if wait_port(nport):
                for conns in a.connections:
                    j, la, cmd = loadtest(a, model, nport, conns)
                    rows.append(["nginx (static JSON file)", f"the same requests, one fixed file, {conns} connections",
                                 f"{j['requests_per_second']:,.0f}", f"{j['p50_ms']:.2f}", f"{j['p99_ms']:.2f}",
                                 f"{j['non_2xx']} / {j['errors']}", page.note_load(la)])
                cmds.append(f"nginx -c nginx.conf   # {os.cpu_count()} workers, every path answered with reply.json, "
                            f"same loadtest against its port")
        finally:
            ng.send_signal(signal.SIGQUIT)
            ng.wait(timeout=30)
    else:
        rows.append(["nginx", "not installed on this machine (apt-get install nginx-light)", "", "", "", "", ""])
    page.table(f"Serve (implicit ALS k=64 ml-1m model, closed loop, {a.serve_seconds:g} s per run)",
               ["server", "requests", "req/s", "p50 ms", "p99 ms", "non-2xx / errors", "load"], rows, cmds,
               ["The load generator (`recsys loadtest`, 1 thread) runs on the same 2 cores as the server, so both "
                "figures are lower bounds of what the server alone could do."])


def bench_scale(page, a, tmp):
    n = a.scale
    path = a.scale_file or os.path.join("/tmp", f"synth{n // 1_000_000}m.parquet")
    users, items = n // 100, max(n // 400, 1000)
    rows, cmds = [], []
    if not os.path.exists(path):
        cmd = [a.bin, "synth", "--users", str(users), "--items", str(items), "--ratings", str(n), "--seed", "1",
               "--out", path]
        out, wall, rss, la, _ = run(cmd)
        rows.append(["synth (generate, write Parquet)", fmt_s(wall), gb(rss), "", "", page.note_load(la)])
        cmds.append(shlex.join(cmd))
    out, wall, rss, la, _ = run([a.bin, "inspect", "--data", path])
    j = json.loads(out)
    nr, nu, ni = j["rows"], j["users"], j["items"]
    k = 64
    triples = nr * 12
    times = nr * 8 if j.get("has_timestamps") else 0
    factors = (nu + ni) * k * 4
    bound = triples + factors
    rows.append([f"load ({nr:,} ratings, {nu:,} users, {ni:,} items)", fmt_s(j["load_seconds"]), gb(rss),
                 gb(triples + times), f"{rss / (triples + times):.2f}×", page.note_load(la)])
    cmds.append(shlex.join([rel(a.bin), "inspect", "--data", path]))
    for name, extra in (("SGD", ["--epochs", str(a.scale_epochs)]),
                        ("implicit ALS (CG)", ["--implicit", "--epochs", str(a.scale_epochs)])):
        args = ["train", "--data", path, "-k", str(k), "-q", "--json", "--out", os.path.join(tmp, "scale.safetensors")]
        out, wall, rss, la, _ = run([a.bin] + args + extra)
        j = json.loads(out)
        # The trainer's own data on top of the triples: SGD's blocked copy (12 B/rating), ALS's CSR + CSC (16 B).
        own = nr * (12 if name == "SGD" else 16)
        rows.append([f"train {name}, k={k}: {j['epochs']} epochs, {j['seconds_per_epoch']:.1f} s/epoch "
                     f"(process {fmt_s(wall)})", fmt_s(j["train_seconds"]), gb(rss),
                     f"{gb(bound)} / {gb(bound + times + own)}", f"{rss / bound:.2f}× / {rss / (bound + times + own):.2f}×",
                     page.note_load(la)])
        cmds.append(shlex.join([rel(a.bin)] + args[:-2] + extra))
    page.table(f"Scale: {nr:,} generated ratings",
               ["step", "time", "peak RSS", "floor: triples + factors / + timestamps + trainer layout", "RSS / floor",
                "load"], rows, cmds,
               ["Floors: triples = u32 user + u32 item + f32 value (12 B per rating); factors = (users + items) × k × "
                "4 B; timestamps 8 B per rating (the generator writes them; the model keeps recent popularity); "
                "the trainer's layout = SGD's blocked copy (12 B) or ALS's CSR + CSC (16 B per rating)."])


# ----------------------------------------------------------------------------------------------
# quality across data sets (--quality)
# ----------------------------------------------------------------------------------------------
QUALITY_PEERS = os.path.join(ROOT, "scripts", "quality_peers.py")
QUALITY_HEADING = "## Quality across data sets (generated by scripts/bench.py --quality)"
LABELS = {"rmse": "RMSE", "precision@10": "P@10", "ndcg@10": "nDCG@10", "recall@20": "recall@20",
          "ndcg@20": "nDCG@20"}
# implicit wants BLAS at one thread beside its own two; ../shared/bench/README.md has it run without these two.
PEER_ENV = dict(env={"OPENBLAS_NUM_THREADS": "1"}, unset=("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"))
PEER_SHOWN = "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 "
# name in the table, parameters shown
QUALITY_PEER = {
    "svd": ("Surprise SVD", ["n_factors", "n_epochs", "lr_all", "reg_all"]),
    "libmf": ("LIBMF", ["k", "nr_iters", "lambda_p2", "lambda_q2", "eta", "nr_threads"]),
    "als": ("implicit ALS", ["factors", "iterations", "regularization", "confidence", "num_threads"]),
    "bpr": ("implicit BPR", ["factors", "iterations", "confidence", "num_threads"]),
}


def per_user_split(df, seed=42):
    """Holds out floor(0.2·n) of each user's n rows at random (numpy default_rng(seed), users in sorted order)."""
    import numpy as np
    rng = np.random.default_rng(seed)
    test = np.zeros(len(df), bool)
    groups = df.groupby("user").indices
    for u in sorted(groups):
        idx = groups[u]
        test[rng.choice(idx, len(idx) // 5, replace=False)] = True
    return df[~test], df[test]


def write_split(df, tmp, name):
    paths = [os.path.join(tmp, f"{name}-{side}.csv") for side in ("train", "test")]
    for part, path in zip(per_user_split(df), paths):
        part.to_csv(path, index=False)
    return paths


def online_retail(tmp):
    """UCI Online Retail as user,item,value: each customer's quantities summed per StockCode, sums ≤ 0 dropped."""
    import pandas as pd
    df = pd.read_csv(os.path.join(DATA, "online-retail", "OnlineRetail.csv"), encoding="latin-1",
                     usecols=["CustomerID", "StockCode", "Quantity"], dtype={"StockCode": str})
    df = df.dropna(subset=["CustomerID"]).astype({"CustomerID": int})
    df = df.groupby(["CustomerID", "StockCode"], as_index=False).Quantity.sum()
    df.columns = ["user", "item", "value"]
    return write_split(df[df.value > 0], tmp, "retail")


def synth_small(tmp):
    import pandas as pd
    # The timestamps stay out: every system here sees user, item and rating alone.
    df = pd.read_csv(os.path.join(ROOT, "data", "synth-small.csv"))[["user", "item", "rating"]]
    return write_split(df, tmp, "synth")


def tsv_csv(src, out):
    """ml-100k's tab-separated user item rating time, as CSV with a header for the peers."""
    with open(src) as f, open(out, "w") as o:
        o.write("user,item,rating,ts\n")
        o.writelines(line.replace("\t", ",") for line in f)
    return out


def adjacency_csv(srcs, out):
    """LightGCN's "user item item ..." lines as user,item rows for the peers."""
    with open(out, "w") as o:
        o.write("user,item\n")
        for src in srcs:
            for line in open(src):
                u, *items = line.split()
                o.writelines(f"{u},{i}\n" for i in items)
    return out


def quality_sets(a, tmp):
    """The data sets: recsys' train files and test file, the same pairs as CSV for the peers, the metrics
    (the first is the main one, which tune and the peers' raw/log1p choice optimise)."""
    ml100k, gowalla = os.path.join(DATA, "ml-100k"), os.path.join(DATA, "gowalla-lightgcn")
    u1 = [os.path.join(ml100k, f) for f in ("u1.base", "u1.test")]
    ml1m_e, ml1m_i = ([os.path.join(SPLITS, f"ml-1m_{kind}_{side}.csv") for side in ("train", "test")]
                      for kind in ("explicit", "implicit"))
    retail, synth = online_retail(tmp), synth_small(tmp)
    sets = [
        dict(name="ml-100k u1", ratings=True, train=u1[:1], test=u1[1], metrics=["rmse", "precision@10"],
             peers=[tsv_csv(f, os.path.join(tmp, os.path.basename(f) + ".csv")) for f in u1],
             about="GroupLens' u1.base / u1.test."),
        dict(name="ml-1m explicit", ratings=True, train=ml1m_e[:1], test=ml1m_e[1], peers=ml1m_e,
             metrics=["rmse", "precision@10"], about="Seeded random 80/20 of all ratings (../shared/bench/splits)."),
        dict(name="ml-1m implicit", ratings=False, train=ml1m_i[:1], test=ml1m_i[1], peers=ml1m_i,
             metrics=["ndcg@10", "precision@10"],
             about="Ratings ≥ 4 as positives, per-user seeded 80/20 (../shared/bench/splits)."),
        dict(name="Online Retail", ratings=False, train=retail[:1], test=retail[1], peers=retail,
             metrics=["precision@10", "ndcg@10"],
             about="Built by this script from ../shared/data/online-retail/OnlineRetail.csv: rows without a "
                   "CustomerID dropped, Quantity summed per (CustomerID, StockCode), sums ≤ 0 dropped, then "
                   "floor(20%) of each customer's items held out at random (numpy default_rng(42))."),
        dict(name="synth-small", ratings=True, train=synth[:1], test=synth[1], peers=synth,
             metrics=["rmse", "precision@10"],
             about="data/synth-small.csv (`recsys synth`, see docs/data.md) without its timestamps, split by "
                   "this script as Online Retail is: floor(20%) of each user's ratings held out, default_rng(42)."),
    ]
    if not a.quick:
        gw = [os.path.join(gowalla, f) for f in ("train.txt", "valid.txt", "test.txt")]
        sets.insert(3, dict(
            name="Gowalla", ratings=False, train=gw[:2], test=gw[2], metrics=["recall@20", "ndcg@20"],
            peers=[adjacency_csv(gw[:2], os.path.join(tmp, "gowalla-train.csv")),
                   adjacency_csv(gw[2:], os.path.join(tmp, "gowalla-test.csv"))],
            about="LightGCN's split: train.txt + valid.txt to train (recsys reads the adjacency lists, the peers "
                  "the same pairs as CSV), test.txt to test."))
    return sets


def describe(info, epochs):
    """What a model file holds, from `recsys info --json`."""
    s = f"{info['algorithm']}, k={info['factors']}, {epochs} epochs"
    lh = info.get("list_head")
    return s + (f"; lists: {lh['algorithm']}, k={lh['factors']}" if lh else "")


def n_rows(csv):
    with open(csv) as f:
        return sum(1 for _ in f) - 1


def bench_quality_set(page, a, d, tmp):
    ks = ",".join(str(k) for k in sorted({int(m.split("@")[1]) for m in d["metrics"] if "@" in m}))
    main = d["metrics"][0]
    feedback = [] if d["ratings"] else ["--implicit"]
    data = [x for f in d["train"] for x in ("--data", f)]
    tag = re.sub(r"\W+", "-", d["name"])
    show = lambda cmd: shlex.join(rel(x) if x.startswith("/") else x for x in cmd)
    rows, cmds = [], []

    def train_eval(params, model):
        cmd = [a.bin, "train", "-t", "2"] + params + data + feedback + ["--out", model, "-q", "--json"]
        out, _, _, la, _ = run(cmd)
        j = json.loads(out)
        info = json.loads(run([a.bin, "info", model, "--json"])[0])
        ecmd = [a.bin, "eval", "--model", model, "--test", d["test"], "--k", ks, "--format", "json"]
        ev = json.loads(run(ecmd)[0])
        cmds.extend([show(cmd), show(ecmd)])
        return j, describe(info, j["epochs"]), [f"{ev[m]:.4f}" for m in d["metrics"]], la

    j, what, metrics, la = train_eval([], os.path.join(tmp, f"{tag}-defaults.safetensors"))
    rows.append([f"recsys defaults ({what})", "", fmt_s(j["train_seconds"])] + metrics + [page.note_load(la)])

    best = os.path.join(tmp, f"{tag}-best.json")
    tcmd = [a.bin, "tune"] + data + feedback + ["--metric", main, "--budget", f"{a.tune_seconds}s", "--out",
                                                best, "--format", "json"]
    out, tune_wall, _, tune_la, _ = run(tcmd)
    trials = json.loads(out)["trials"]
    cmds.append(show(tcmd))
    j, what, metrics, la = train_eval(["--params", best], os.path.join(tmp, f"{tag}-tuned.safetensors"))
    rows.append([f"recsys tune {a.tune_seconds} s ({what})", f"{fmt_s(tune_wall)} ({trials} trials)",
                 fmt_s(j["train_seconds"])] + metrics + [page.note_load(max(tune_la, la))])

    for peer in (["svd", "libmf"] if d["ratings"] else ["als", "bpr"]):
        name, keys = QUALITY_PEER[peer]
        pcmd = [QUALITY_PEERS, peer] + d["peers"] + ["--k", ks] + ([] if d["ratings"] else ["--select", main])
        try:
            out, _, _, la, _ = run([sys.executable] + pcmd, **PEER_ENV)
        except SystemExit as e:
            # A peer that is not installed (or fails) is said so in its row; the other rows still stand.
            rows.append([f"{name}: {str(e).strip().splitlines()[-1][:120]}", "", ""] + [""] * len(d["metrics"])
                        + [""])
        else:
            r = json.loads(out.strip().splitlines()[-1])
            rows.append([f"{name} ({pstr(r['params'], keys)})", "", fmt_s(r["train_seconds"])] +
                        [f"{r['metrics'][m]:.4f}" for m in d["metrics"]] + [page.note_load(la)])
        cmds.append(PEER_SHOWN + show(["python3"] + pcmd))

    header = (["method", "tuning (wall, trials)", "train (wall)"] +
              [LABELS[m] + (" (main)" if m == main else "") for m in d["metrics"]] + ["load"])
    page.table(f"{d['name']} ({'ratings' if d['ratings'] else 'implicit feedback'})", header, rows, cmds,
               [f"{d['about']} Train / test: {n_rows(d['peers'][0]):,} / {n_rows(d['peers'][1]):,} rows."],
               level=3)


def bench_quality(a, tmp, argv):
    """Writes the quality tables into a.quality_out, in place of their section if it has one."""
    started = datetime.datetime.now(datetime.timezone.utc)
    la_start = os.getloadavg()
    page = Page()
    for d in quality_sets(a, tmp):
        print("quality:", d["name"], flush=True)
        bench_quality_set(page, a, d, tmp)
    finished = datetime.datetime.now(datetime.timezone.utc)
    intro = [
        QUALITY_HEADING,
        "",
        "Do not edit this section by hand: `python3 scripts/bench.py --quality-only` measures it again and "
        "replaces it.",
        "",
        *run_lines(started, finished, argv, la_start),
        *loaded_lines(page.max_load),
        "- Rows: `recsys train -t 2` with no other flags (defaults); `recsys tune` for the table's main metric "
        f"on a validation carve of the training side, {a.tune_seconds} s budget, then `recsys train -t 2 --params "
        "best.json`; and the peers in `scripts/quality_peers.py` (its docstring has their parameters and "
        "protocol, after `../shared/bench/peer_implicit.py`). Each is run once.",
        "- `tuning` is the whole `recsys tune` process (loading included) and the trials it ran; `train` is the "
        "fit alone, wall clock, loading excluded (recsys: `train_seconds` of `train --json`, list head "
        "included; peers: their fit call).",
        "- Metrics on the test side: RMSE over every test row; ranking metrics over the test users the training "
        "side has, training items excluded, every held-out item relevant (unknown items count as misses): "
        "P@k = hits/k, recall@k = hits/held-out, nDCG@k with binary gains and the ideal DCG over "
        "min(k, held-out). recsys by `recsys eval`, the peers by the same definitions.",
        "",
    ]
    section = "\n".join(intro + page.parts).rstrip("\n").split("\n")
    lines = open(a.quality_out).read().splitlines() if os.path.exists(a.quality_out) else []
    if QUALITY_HEADING in lines:
        # The section runs to the next heading of its level (its tables are one level down).
        start = lines.index(QUALITY_HEADING)
        end = next((n for n in range(start + 1, len(lines)) if lines[n].startswith("## ")), len(lines))
        lines[start:end] = section + ([""] if end < len(lines) else [])
    else:
        lines += ([""] if lines and lines[-1] else []) + section
    write_file(a.quality_out, "\n".join(lines) + "\n")
    print(f"wrote {a.quality_out}")


def run_lines(started, finished, argv, la_start):
    """The when, where and what of a run, as the list items heading its page or section."""
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE,
                            text=True).stdout.strip()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((int(l.split()[1]) * 1024 for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    return [
        f"- Date: {started.isoformat(timespec='seconds')} to {finished.isoformat(timespec='seconds')}",
        f"- Machine: {os.cpu_count()} cores ({cpu}), {mem / 2**30:.1f} GiB RAM, {platform.platform()}",
        f"- recsys: commit {commit}, release build; command: `{argv}`",
        f"- Load average (1/5/15 min) at the start: {la_start[0]:.2f} / {la_start[1]:.2f} / {la_start[2]:.2f}; "
        f"the `load` column is the 1-min load average just before each figure.",
    ]


def loaded_lines(max_load):
    if max_load <= 0.5 * os.cpu_count():
        return []
    return [f"- **The machine was loaded during this run** (1-min load up to {max_load:.2f} on "
            f"{os.cpu_count()} cores): other processes competed for the CPUs, so times are pessimistic "
            "and comparisons between rows measured at different loads are approximate."]


def write_file(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "recsys"))
    ap.add_argument("--out", default=os.path.join(ROOT, "BENCHMARKS.md"))
    ap.add_argument("--repeats", type=int, default=3, help="best of N for recsys runs")
    ap.add_argument("--peer-repeats", type=int, default=1, help="best of N for the peers (run_peers --repeats-large)")
    ap.add_argument("--peers-json", help="reuse a run_peers.py results.json instead of running the peers")
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--serve-seconds", type=float, default=10)
    ap.add_argument("--connections", default="100,1000")
    ap.add_argument("--quick", action="store_true", help="few epochs, 1 repeat, 2 s serve: checks the script only")
    ap.add_argument("--scale", type=int, help="also: synth this many ratings and load/train them (peak RSS)")
    ap.add_argument("--scale-file", help="the generated file to use (default /tmp/synthNm.parquet)")
    ap.add_argument("--scale-epochs", type=int, default=2)
    ap.add_argument("--scale-only", action="store_true")
    ap.add_argument("--include", action="append", default=[],
                    help="append the sections of a page written earlier by this script (e.g. a --scale-only run), "
                         "under its own date")
    ap.add_argument("--load-file", action="append", default=[],
                    help="extra files for the load table (e.g. /tmp/synth25m.parquet)")
    ap.add_argument("--quality", action="store_true",
                    help="also: recsys defaults, recsys tune and peers on six data sets, into --quality-out")
    ap.add_argument("--quality-only", action="store_true", help="only the quality tables (--out is not written)")
    ap.add_argument("--quality-out", default=os.path.join(ROOT, "docs", "benchmarks.md"),
                    help="the page whose section 'Quality across data sets' the quality tables replace")
    a = ap.parse_args()
    a.tune_seconds = 60
    if a.quick:
        a.repeats, a.serve_seconds, a.tune_seconds = 1, 2, 10
    a.connections = [int(c) for c in a.connections.split(",")]
    a.bin = os.path.abspath(a.bin)
    if not os.path.exists(a.bin):
        sys.exit(f"{a.bin}: not built (cargo build --release)")
    started = datetime.datetime.now(datetime.timezone.utc)
    page = Page()
    global TMP
    tmp = TMP = tempfile.mkdtemp(prefix="recsys-bench-")
    argv = " ".join(shlex.quote(x) for x in ["python3", "scripts/bench.py"] + sys.argv[1:])
    la_start = os.getloadavg()
    try:
        if not (a.scale_only or a.quality_only):
            peer_res, peer_cmd = [], "(peers skipped)"
            if a.peers_json:
                pj = json.load(open(a.peers_json))
                peer_res = pj["results"]
                peer_cmd = (f"{pj['meta'].get('command', 'run_peers.py')}   # peers run separately, "
                            f"started {pj['meta'].get('date', '?')}, same machine")
            elif not a.skip_peers:
                pdir = os.path.join(tmp, "peers")
                pc = [sys.executable, RUN_PEERS, "--datasets", "ml-1m", "--repeats-large", str(a.peer_repeats),
                      "--out", pdir]
                print("running peers:", shlex.join(pc), flush=True)
                subprocess.run(pc, check=True)
                peer_res = json.load(open(os.path.join(pdir, "results.json")))["results"]
                peer_cmd = shlex.join(["python3", "../shared/bench/run_peers.py"] + pc[2:-2] + ["--out", "DIR"])
            print("load", flush=True)
            bench_load(page, a, [os.path.join(SPLITS, "ml-1m_explicit_train.csv")] + a.load_file)
            print("train", flush=True)
            models = bench_train(page, a, peer_res, peer_cmd, tmp)
            print("recommend-all", flush=True)
            bench_recommend_all(page, a, peer_res, peer_cmd, models["ials"], tmp)
            print("serve", flush=True)
            bench_serve(page, a, models["ials"], tmp)
        if a.scale and not a.quality_only:
            print("scale", flush=True)
            bench_scale(page, a, tmp)
        if a.quality or a.quality_only:
            bench_quality(a, tmp, argv)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if a.quality_only:
        return
    finished = datetime.datetime.now(datetime.timezone.utc)
    head = [
        "# Benchmarks",
        "",
        "recsys and its peers measured in the same run, on the same machine. Regenerate with "
        "`python3 scripts/bench.py` (after `cargo build --release`; it runs "
        "`../shared/bench/run_peers.py` for Surprise, implicit and Spark).",
        "",
        *run_lines(started, finished, argv, la_start),
        "- Times are wall-clock; recsys figures are the best of "
        f"{a.repeats} run(s), the peers' the best of {a.peer_repeats} (as `run_peers.py` reports them; its own "
        "load figure is in its results.json).",
        *loaded_lines(page.max_load),
    ]
    text = "\n".join(head) + "\n\n" + "\n".join(page.parts)
    for inc in a.include:
        lines = open(inc).read().splitlines()
        when = next((l for l in lines if l.startswith("- Date:")), "- Date: ?")
        cmd = next((l for l in lines if l.startswith("- recsys:")), "")
        lo = next((l for l in lines if l.startswith("- Load average")), "")
        body = lines[next((n for n, l in enumerate(lines) if l.startswith("## ")), len(lines)):]
        text += "\n" + "\n".join(body[:1] + ["", f"Measured separately — {when[2:]}.",
                                               cmd, lo, ""] + body[1:]) + "\n"
    write_file(a.out, text)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
