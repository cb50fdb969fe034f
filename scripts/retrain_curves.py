#!/usr/bin/env python3
"""Warm-started retrain vs. cold start on ml-1m: learning curves and time.

Split: each user's ratings in file order (ml-1m's ratings file has no
timestamps; its order is the order users rated in), the first 90% are "old",
the last 10% "new"; the new rows alternate between new training data and the
validation set both runs are evaluated on. The registry is seeded with a cold
model on the old data, then the same retrain runs warm (from that model) and
cold (--cold) on old + new, each reporting validation RMSE after every epoch.

With --chain N, the new training rows instead arrive in N parts, one warm
retrain each (as a daily schedule would run), and the last one is compared
with a cold model of everything: whether warm starts drift when chained.

Usage: scripts/retrain_curves.py [--recsys target/release/recsys] [--algo sgd|als] [--chain N]
"""
import argparse, json, os, shutil, subprocess, sys, tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--recsys", default="target/release/recsys")
ap.add_argument("--data", default="../shared/data/ml-1m/ratings_notimestamp.dat")
ap.add_argument("--algo", default="sgd")
ap.add_argument("--warm-epochs", type=int, default=None)
ap.add_argument("--work", default=None)
ap.add_argument("--chain", type=int, default=0)
a = ap.parse_args()

work = a.work or tempfile.mkdtemp(prefix="retrain-curves-")
os.makedirs(work, exist_ok=True)
rows = open(a.data).read().splitlines()
count = {}
for r in rows:
    u = r.split("::", 1)[0]
    count[u] = count.get(u, 0) + 1
seen = {}
old, new_train, valid = [], [], []
for n, r in enumerate(rows):
    u = r.split("::", 1)[0]
    seen[u] = seen.get(u, 0) + 1
    if seen[u] <= round(0.9 * count[u]):
        old.append(r)
    elif n % 2 == 0:
        new_train.append(r)
    else:
        valid.append(r)
for name, part in [("old.dat", old), ("new.dat", new_train), ("valid.dat", valid)]:
    with open(os.path.join(work, name), "w") as f:
        f.write("\n".join(part) + "\n")
print(f"split: {len(old)} old, {len(new_train)} new for training, {len(valid)} validation ({work})")


def retrain(models, data, extra):
    cmd = [a.recsys, "retrain", "--json", "-q", "--models", models, "--holdout",
           os.path.join(work, "valid.dat"), "--force", "--gate", "rmse <= 100 * current"]
    for d in data:
        cmd += ["--data", os.path.join(work, d)]
    out = subprocess.run(cmd + extra, capture_output=True, text=True)
    if out.returncode not in (0, 3):
        sys.exit(f"{' '.join(cmd + extra)} failed: {out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


if a.chain:
    reg = os.path.join(work, "registry-chain")
    shutil.rmtree(reg, ignore_errors=True)
    rec = retrain(reg, ["old.dat"], ["--algo", a.algo, "--cold"])
    print(f"round 0 (old data, cold): validation RMSE {rec['details']['metrics']['candidate']['rmse']:.4f}")
    files = ["old.dat"]
    for n in range(a.chain):
        part = new_train[n::a.chain]
        name = f"new{n}.dat"
        with open(os.path.join(work, name), "w") as f:
            f.write("\n".join(part) + "\n")
        files.append(name)
        rec = retrain(reg, files, [])
        print(f"round {n + 1} (warm, +{len(part)} rows): validation RMSE "
              f"{rec['details']['metrics']['candidate']['rmse']:.4f}")
    rec = retrain(reg, files, ["--cold", "--algo", a.algo])
    print(f"cold on everything: validation RMSE {rec['details']['metrics']['candidate']['rmse']:.4f}")
    sys.exit(0)

base = os.path.join(work, "registry")
shutil.rmtree(base, ignore_errors=True)
seed = retrain(base, ["old.dat"], ["--algo", a.algo, "--cold"])
print(f"current model (old data, cold): validation RMSE {seed['details']['metrics']['candidate']['rmse']:.4f}")
curves = {}
for mode in ["cold", "warm"]:
    reg = os.path.join(work, f"registry-{mode}")
    shutil.rmtree(reg, ignore_errors=True)
    shutil.copytree(base, reg)
    extra = ["--cold", "--algo", a.algo] if mode == "cold" else []
    if mode == "warm" and a.warm_epochs:
        extra += ["--epochs", str(a.warm_epochs)]
    rec = retrain(reg, ["old.dat", "new.dat"], extra)
    d = rec["details"]
    t, curve = 0.0, []
    for h in d["history"]:
        t += h["seconds"]
        curve.append((h["epoch"], t, h["valid_rmse"]))
    curves[mode] = (curve, d["seconds"])

cold_curve, cold_secs = curves["cold"]
target = cold_curve[-1][2]
print(f"\n| run | epoch | train s (cumulative) | validation RMSE |\n|---|---:|---:|---:|")
for mode in ["cold", "warm"]:
    for e, t, r in curves[mode][0]:
        print(f"| {mode} | {e} | {t:.3f} | {r:.4f} |")
print()
for mode in ["cold", "warm"]:
    s = curves[mode][1]
    print(f"{mode}: load {s['load']:.2f}s, train {s['train']:.2f}s, eval {s['eval']:.2f}s, total {s['total']:.2f}s")
reach = next(((e, t) for e, t, r in curves["warm"][0] if r <= target), None)
if reach:
    e, t = reach
    print(f"\nwarm reaches the cold model's final validation RMSE {target:.4f} at epoch {e}, "
          f"{t:.3f}s of training vs {cold_curve[-1][1]:.3f}s cold ({t / cold_curve[-1][1]:.2f}x); "
          f"whole runs {curves['warm'][1]['total']:.2f}s vs {cold_secs['total']:.2f}s")
else:
    print(f"\nwarm did not reach the cold RMSE {target:.4f} (best {min(r for _, _, r in curves['warm'][0]):.4f})")
