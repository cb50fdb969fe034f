"""The model API: lists, filters, batch scoring, fold-in, factor views,
save and load, metadata, docs, Ctrl-C."""

import gc
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import recsys


@pytest.fixture(scope="module")
def data(ml100k):
    return recsys.Interactions.from_csv(ml100k / "u1.base", implicit=True)


@pytest.fixture(scope="module")
def model(data):
    return recsys.ALS(factors=16, epochs=3, threads=2).fit(data, show_progress=False)


def seen(data, user):
    u, i, _ = data.to_arrays()
    return set(i[u == user].tolist())


def test_recommend_leaves_out_seen_and_excluded_items_and_keeps_to_only(model, data):
    recs = model.recommend(196, n=10)
    assert len(recs) == 10 and all(type(i) is int for i, _ in recs)
    scores = [s for _, s in recs]
    assert scores == sorted(scores, reverse=True)
    assert not {i for i, _ in recs} & seen(data, 196)
    top = recs[0][0]
    assert top not in [i for i, _ in model.recommend(196, n=10, exclude=[top])]
    only = [i for i, _ in recs[3:6]]
    assert [i for i, _ in model.recommend(196, n=10, only=only)] == only
    with_seen = [i for i, _ in model.recommend(196, n=50, exclude_seen=False)]
    assert set(with_seen) & seen(data, 196)


def test_recommend_many_and_all_agree_with_recommend(model):
    pl = pytest.importorskip("polars")
    users = [196, 1, 13]
    df = model.recommend_many(users, n=5)
    assert isinstance(df, pl.DataFrame) and df.columns == ["user", "rank", "item", "score"]
    assert df["user"].to_list() == [u for u in users for _ in range(5)]
    for u in users:
        want = model.recommend(u, n=5)
        got = df.filter(pl.col("user") == u)
        assert got["item"].to_list() == [i for i, _ in want]
        np.testing.assert_allclose(got["score"].to_numpy(), [s for _, s in want], atol=1e-5)
    everyone = model.recommend_all(n=10)
    assert everyone.height == model.n_users * 10
    assert everyone.filter(pl.col("user") == 196)["item"].to_list() == [
        i for i, _ in model.recommend(196, n=10)]
    pa = pytest.importorskip("pyarrow")
    t = model.recommend_many(users, n=5, format="pyarrow")
    assert isinstance(t, pa.Table) and t.num_rows == 15
    # An unknown user gets the popularity fallback unless strict.
    cold = model.recommend_many([10**9], n=3, format="numpy")
    assert cold["user"].tolist() == [10**9] * 3


def test_similar_items_and_fold_in(model, data):
    sims = model.similar_items(50, n=5)
    assert len(sims) == 5 and 50 not in [i for i, _ in sims]
    assert all(type(i) is int for i, _ in sims)
    assert all(-1.0 - 1e-6 <= s <= 1.0 + 1e-6 for _, s in sims)
    # A new user given by a known user's items gets that user's list back.
    items = sorted(seen(data, 196))
    folded = model.recommend_for_items(items, n=10)
    assert not {i for i, _ in folded} & set(items)
    overlap = {i for i, _ in folded} & {i for i, _ in model.recommend(196, n=10)}
    assert len(overlap) >= 5
    assert len(model.recommend_for_items([(50, 5.0), 172], n=3)) == 3


def test_factor_views_are_zero_copy_read_only_and_keep_the_model_alive(data, tmp_path):
    m = recsys.ALS(factors=8, epochs=2, threads=2).fit(data, show_progress=False)
    uf, itf = m.user_factors, m.item_factors
    assert uf.shape == (m.n_users, 8) and itf.shape == (m.n_items, 8)
    assert uf.dtype == np.float32 and not uf.flags.writeable and not uf.flags.owndata
    # Two views share the model's memory: no copy is made.
    assert np.shares_memory(uf, m.user_factors)
    with pytest.raises(ValueError):
        uf[0, 0] = 1.0
    want = uf.copy()
    path = tmp_path / "m.safetensors"
    m.save(path)
    del m
    gc.collect()
    # The model is gone from Python, the view still holds it.
    np.testing.assert_array_equal(uf, want)
    junk = [np.ones(1000) for _ in range(1000)]
    del junk
    np.testing.assert_array_equal(uf, want)
    # A loaded model's views read the mapped file.
    loaded = recsys.load(path)
    view = loaded.item_factors
    del loaded
    gc.collect()
    np.testing.assert_array_equal(view, itf)
    # The view matches what a user vector dot item vector scores.
    m2 = recsys.load(path)
    u = list(m2.user_ids).index(196)
    scores = m2.item_factors @ m2.user_factors[u]
    top, score = m2.recommend(196, n=1)[0]
    assert score == pytest.approx(scores[list(m2.item_ids).index(top)], abs=1e-5)


def test_save_load_round_trip_and_info(model, tmp_path):
    path = tmp_path / "m.safetensors"
    model.save(path)
    back = recsys.load(path)
    assert back.info()["params"] == model.info()["params"]
    assert back.recommend(1, n=10) == model.recommend(1, n=10)
    info = model.info()
    assert info["algorithm"] == "als-implicit" and info["factors"] == 16
    assert info["answers"]["lists"] == "als-implicit"
    assert info["data"]["defaults"], "implicit defaults say what followed the data"
    assert model.user_ids.dtype == np.int64 and len(model.item_ids) == model.n_items


def test_split_is_seeded_and_disjoint(data):
    tr, te = data.split("user", 0.2, seed=1)
    tr2, te2 = data.split("user", 0.2, seed=1)
    assert len(tr) + len(te) == len(data) and len(te) == len(te2)
    pairs = lambda x: set(zip(*[a.tolist() for a in x.to_arrays()[:2]]))
    assert not pairs(tr) & pairs(te)
    assert pairs(te) == pairs(te2)


def test_sgd_with_a_list_head_and_validation(ml100k):
    x = recsys.Interactions.from_csv(ml100k / "u1.base")
    m = recsys.SGD(factors=8, epochs=3, threads=2, patience=1, list_head=True).fit(
        x, validation=0.1, show_progress=False)
    info = m.info()
    assert info["answers"] == {"ratings": "sgd", "lists": "als-implicit"}
    e = m.evaluate(ml100k / "u1.test", k=[5, 10], positive_threshold=4)
    assert {"rmse", "mae", "precision@5", "ndcg@10"} <= e.keys()
    assert 0.8 < e["rmse"] < 1.2


def test_help_shows_the_params_table_with_the_library_defaults():
    for cls, algo in ((recsys.SGD, "sgd"), (recsys.ALS, "als"), (recsys.BPR, "bpr")):
        doc = cls.__doc__
        assert "| Name | Default | Purpose | Range |" in doc
        import json

        for name, value in json.loads(recsys._recsys.default_params(algo)).items():
            shown = "all cores" if value is None and name == "threads" else repr(value)
            assert f"| {name} | {shown} |" in doc, (cls, name)
    assert recsys.ALS().params == __import__("json").loads(recsys._recsys.default_params("als"))


def test_ctrl_c_stops_a_long_fit(ml100k):
    code = textwrap.dedent(f"""
        import sys, recsys
        x = recsys.Interactions.from_csv({str(ml100k / 'u1.base')!r}, implicit=True)
        try:
            recsys.ALS(factors=32, epochs=10000, threads=2).fit(x, show_progress=True)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            sys.exit(0)
        print("finished", flush=True)
    """)
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        # Wait for the first epoch, so the fit is running.
        deadline = time.monotonic() + 120
        while "epoch" not in (p.stderr.readline() or ""):
            assert time.monotonic() < deadline and p.poll() is None, "no epoch line"
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0 and out.strip() == "interrupted"


def test_tune_returns_parameters_a_trainer_takes(ml100k):
    r = recsys.tune(ml100k / "u1.base", budget=30, implicit=True, trials=2, parallel=2)
    assert r["best"]["algorithm"] in ("als", "als-implicit") and len(r["leaderboard"]) == 2
    t = recsys.trainer_from(r, threads=2)
    assert isinstance(t, recsys.ALS) and t.params["factors"] == r["best"]["params"]["factors"]


def test_fit_releases_the_gil(data):
    import threading

    state = {"started": False, "done": False, "ran_during_fit": False}

    def train():
        state["started"] = True
        recsys.ALS(factors=16, epochs=300, threads=1).fit(data, show_progress=False)
        state["done"] = True

    t = threading.Thread(target=train)
    t.start()
    while not state["started"]:
        time.sleep(0.001)
    # Python code runs on this thread while the fit is under way.
    sum(range(10_000))
    state["ran_during_fit"] = not state["done"]
    t.join(timeout=600)
    assert state["done"] and state["ran_during_fit"]
