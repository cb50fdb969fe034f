"""The Python API and the CLI are fronts on one library: for the same data,
seed and threads they give the same model, and a model trained in Python is
served by `recsys serve` with the same lists."""

import json
import re
import subprocess
import time
import urllib.request

import numpy as np
import pytest

import recsys

USERS = [1, 2, 13, 196, 405, 655, 942]


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert p.returncode == 0, f"{cmd} exited {p.returncode}:\n{p.stderr}"
    return p


def top10(model, user):
    return [i for i, _ in model.recommend(user, n=10)]


@pytest.mark.parametrize(
    "flags, make",
    [
        (["--implicit", "--factors", "16", "--epochs", "4"],
         lambda: recsys.ALS(factors=16, epochs=4, threads=2, seed=7)),
        (["--algo", "sgd", "--factors", "12", "--epochs", "5"],
         lambda: recsys.SGD(factors=12, epochs=5, threads=2, seed=7)),
        (["--algo", "bpr", "--factors", "8", "--epochs", "5"],
         lambda: recsys.BPR(factors=8, epochs=5, threads=2, seed=7)),
    ],
    ids=["als-implicit", "sgd", "bpr"],
)
def test_cli_and_python_train_the_same_model(tmp_path, recsys_bin, ml100k, flags, make):
    data = str(ml100k / "u1.base")
    out = tmp_path / "cli.safetensors"
    run([recsys_bin, "train", "--data", data, "--threads", "2", "--seed", "7",
         "--quiet", "--out", str(out), *flags])
    implicit = "--implicit" in flags or "bpr" in flags
    trainer = make()
    x = recsys.Interactions.from_csv(data, implicit=implicit)
    py = trainer.fit(x, show_progress=False)
    cli = recsys.load(out)
    assert py.info()["params"] == cli.info()["params"]
    assert list(py.user_ids) == list(cli.user_ids)
    assert list(py.item_ids) == list(cli.item_ids)
    np.testing.assert_allclose(py.user_factors, cli.user_factors, rtol=0, atol=1e-6)
    np.testing.assert_allclose(py.item_factors, cli.item_factors, rtol=0, atol=1e-6)
    for u in USERS:
        assert top10(py, u) == top10(cli, u), f"user {u}"
    # The CLI's own recommend prints the same list for the Python model.
    saved = tmp_path / "py.safetensors"
    py.save(saved)
    p = run([recsys_bin, "recommend", "--model", str(saved), "--user", "196", "-n", "10",
             "--format", "json"])
    got = [str(r["item"]) for r in json.loads(p.stdout)["items"]]
    assert got == [str(i) for i in top10(py, 196)]


def test_evaluate_has_the_keys_and_figures_of_recsys_eval(tmp_path, recsys_bin, ml100k):
    model = recsys.ALS(factors=16, epochs=3, threads=2).fit(
        recsys.Interactions.from_csv(ml100k / "u1.base", implicit=True), show_progress=False)
    path = tmp_path / "m.safetensors"
    model.save(path)
    test = ml100k / "u1.test"
    p = run([recsys_bin, "eval", "--model", str(path), "--test", str(test), "--k", "10",
             "--format", "json"])
    cli = json.loads(p.stdout)
    for got in (model.evaluate(test, k=10),
                model.evaluate(recsys.Interactions.from_csv(test, implicit=True), k=[10])):
        assert got.keys() == cli.keys()
        for k, v in cli.items():
            assert got[k] == pytest.approx(v, abs=1e-9), k


def test_a_python_model_is_served_with_the_same_lists(tmp_path, recsys_bin, ml100k):
    model = recsys.ALS(factors=16, epochs=3, threads=2).fit(
        recsys.Interactions.from_csv(ml100k / "u1.base", implicit=True), show_progress=False)
    path = tmp_path / "served.safetensors"
    model.save(path)
    # Port 0: the kernel picks a free port and serve prints it.
    srv = subprocess.Popen([recsys_bin, "serve", "--model", str(path), "--addr", "127.0.0.1:0"],
                           stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        addr = None
        while addr is None:
            assert time.monotonic() < deadline, "recsys serve did not say where it listens"
            line = srv.stderr.readline()
            assert line or srv.poll() is None, "recsys serve exited"
            m = re.search(r"listening on (http://[0-9.:]+)", line)
            if m:
                addr = m.group(1)
        for u in USERS:
            with urllib.request.urlopen(f"{addr}/v1/users/{u}/recommendations?n=10", timeout=30) as r:
                body = json.load(r)
            assert [str(i["item"]) for i in body["items"]] == [str(i) for i in top10(model, u)]
            want = dict(model.recommend(u, n=10))
            for i in body["items"]:
                assert i["score"] == pytest.approx(want[int(i["item"])], abs=1e-5)
    finally:
        srv.terminate()
        srv.wait(timeout=30)
