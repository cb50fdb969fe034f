"""numpy, polars, pandas and scipy inputs give the same data, hence the same
model, as the file they came from."""

import numpy as np
import pytest

import recsys


def fit(x):
    return recsys.ALS(factors=8, epochs=3, threads=2, seed=3).fit(x, show_progress=False)


@pytest.fixture(scope="module")
def frame(ml100k):
    rows = np.loadtxt(ml100k / "u1.base", dtype=np.int64)
    return rows[:, 0], rows[:, 1], rows[:, 2].astype(np.float32), rows[:, 3]


@pytest.fixture(scope="module")
def reference(ml100k):
    return fit(recsys.Interactions.from_csv(ml100k / "u1.base", implicit=True))


def same(a, b):
    assert list(a.user_ids) == list(b.user_ids)
    assert list(a.item_ids) == list(b.item_ids)
    np.testing.assert_array_equal(a.user_factors, b.user_factors)
    np.testing.assert_array_equal(a.item_factors, b.item_factors)


def test_numpy(frame, reference):
    u, i, v, t = frame
    same(fit(recsys.Interactions.from_arrays(u, i, v, t, implicit=True)), reference)


def test_polars(frame, reference):
    pl = pytest.importorskip("polars")
    u, i, v, t = frame
    df = pl.DataFrame({"user": u, "item": i, "rating": v, "ts": t})
    x = recsys.Interactions.from_polars(df, user="user", item="item", value="rating", time="ts",
                                        implicit=True)
    same(fit(x), reference)


def test_pandas(frame, reference):
    pd = pytest.importorskip("pandas")
    u, i, v, t = frame
    df = pd.DataFrame({"u": u, "i": i, "r": v, "t": t})
    x = recsys.Interactions.from_pandas(df, user="u", item="i", value="r", time="t", implicit=True)
    same(fit(x), reference)


def test_scipy_matrix_with_ids_holds_the_file_s_entries(frame, ml100k):
    sp = pytest.importorskip("scipy.sparse")
    u, i, v, _ = frame
    uid, urow = np.unique(u, return_inverse=True)
    iid, icol = np.unique(i, return_inverse=True)
    m = sp.csr_matrix((v, (urow, icol)), shape=(len(uid), len(iid)))
    x = recsys.Interactions.from_scipy(m, user_ids=uid.tolist(), item_ids=iid.tolist(),
                                       implicit=True)
    a = recsys.Interactions.from_csv(ml100k / "u1.base", implicit=True).to_arrays()
    b = x.to_arrays()
    entries = lambda c: sorted(zip(c[0].tolist(), c[1].tolist(), c[2].tolist()))
    assert entries(a) == entries(b)


def test_scipy_in_row_order_gives_the_same_model_as_the_same_rows_from_numpy(frame):
    sp = pytest.importorskip("scipy.sparse")
    u, i, v, _ = frame
    m = sp.coo_matrix((v, (u - 1, i - 1))).tocsr()
    coo = m.tocoo()
    order = np.lexsort((coo.col, coo.row))
    rows, cols, vals = coo.row[order], coo.col[order], coo.data[order]
    a = fit(recsys.Interactions.from_scipy(m, implicit=True))
    b = fit(recsys.Interactions.from_arrays(rows.astype(np.int64), cols.astype(np.int64),
                                            vals, implicit=True))
    same(a, b)


def test_string_ids_and_no_values(tmp_path):
    users = ["a", "b", "a", "c", "b", "c", "d"]
    items = ["x", "y", "y", "x", "z", "z", "x"]
    x = recsys.Interactions.from_arrays(users, items, implicit=True)
    assert (len(x), x.n_users, x.n_items) == (7, 4, 3)
    csv = tmp_path / "pairs.csv"
    csv.write_text("user,item\n" + "".join(f"{u},{i}\n" for u, i in zip(users, items)))
    same(fit(x), fit(recsys.Interactions.from_csv(csv, implicit=True)))
    assert fit(x).user_ids == ["a", "b", "c", "d"]


def test_duplicates_combine_as_the_loader_combines_them():
    u = np.array([1, 1, 1, 2], dtype=np.int64)
    i = np.array([5, 5, 6, 5], dtype=np.int64)
    v = np.array([1.0, 2.0, 4.0, -3.0], dtype=np.float32)
    # Implicit feedback: values add up, non-positive sums are dropped.
    x = recsys.Interactions.from_arrays(u, i, v, implicit=True)
    users, items, vals = x.to_arrays()
    assert sorted(zip(users.tolist(), items.tolist(), vals.tolist())) == [(1, 5, 3.0), (1, 6, 4.0)]
    # Ratings: the later row wins.
    users, items, vals = recsys.Interactions.from_arrays(u, i, v).to_arrays()
    assert sorted(zip(users.tolist(), items.tolist(), vals.tolist())) == [
        (1, 5, 2.0), (1, 6, 4.0), (2, 5, -3.0)]


def test_a_positive_threshold_keeps_the_positives(frame, ml100k):
    u, i, v, t = frame
    x = recsys.Interactions.from_csv(ml100k / "u1.base", positive_threshold=4)
    assert len(x) == int((v >= 4).sum())
    assert set(x.to_arrays()[2].tolist()) == {1.0}
    y = recsys.Interactions.from_arrays(u, i, v, t, positive_threshold=4)
    same(fit(x), fit(y))
