"""Bad inputs raise the documented exceptions, naming what is wrong."""

import numpy as np
import pytest

import recsys


@pytest.fixture(scope="module")
def model(ml100k):
    x = recsys.Interactions.from_csv(ml100k / "u1.base", implicit=True)
    return recsys.ALS(factors=8, epochs=2, threads=2).fit(x, show_progress=False)


def test_a_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        recsys.Interactions.from_csv(tmp_path / "nope.csv")
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        recsys.load(tmp_path / "nope.safetensors")


def test_a_malformed_row_names_its_file_line_and_field(tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text("user,item,rating\n1,2,5\n1,3,five\n")
    with pytest.raises(ValueError, match=r"bad.csv:3.*rating"):
        recsys.Interactions.from_csv(f)


def test_a_file_that_is_not_a_model_is_refused(tmp_path):
    f = tmp_path / "junk.safetensors"
    f.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="not a valid recsys model"):
        recsys.load(f)


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: recsys.ALS(factors=0), "factors"),
        (lambda: recsys.ALS(alpha=-1.0), "alpha"),
        (lambda: recsys.ALS(implicit=False, solver="cg"), "solver"),
        (lambda: recsys.ALS(confidence="cubic"), "confidence"),
        (lambda: recsys.SGD(learning_rate=2.0), "learning_rate"),
        (lambda: recsys.SGD(factors="many"), "factors"),
        (lambda: recsys.SGD(threads=0), "threads"),
        (lambda: recsys.BPR(epochs=0), "epochs"),
        (lambda: recsys.BPR(reg=float("nan")), "reg"),
        (lambda: recsys.ALS(list_head=True), "list_head"),
    ],
)
def test_a_bad_parameter_is_a_value_error_naming_it(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_an_unknown_parameter_is_a_type_error():
    with pytest.raises(TypeError):
        recsys.SGD(alpha=1.0)


def test_patience_without_validation_is_refused(ml100k):
    x = recsys.Interactions.from_csv(ml100k / "u1.base", implicit=True)
    with pytest.raises(ValueError, match="patience"):
        recsys.ALS(factors=4, patience=2).fit(x, show_progress=False)
    with pytest.raises(ValueError, match="validation"):
        recsys.ALS(factors=4).fit(x, validation=1.5, show_progress=False)


def test_unknown_ids(model):
    with pytest.raises(KeyError, match="unknown user"):
        model.recommend(10**9, strict=True)
    # Without strict an unknown user gets the popular items.
    assert len(model.recommend(10**9, n=5)) == 5
    with pytest.raises(KeyError, match="unknown item"):
        model.similar_items(10**9)
    with pytest.raises(KeyError):
        model.recommend_many([1, 10**9], strict=True, format="numpy")


def test_bad_arguments_name_themselves(model, ml100k):
    with pytest.raises(ValueError, match="`n`"):
        model.recommend(1, n=-1)
    with pytest.raises(ValueError, match="`k`"):
        model.evaluate(ml100k / "u1.test", k=0)
    with pytest.raises(ValueError, match="`format`"):
        model.recommend_all(format="excel")
    with pytest.raises(ValueError, match="split"):
        recsys.Interactions.from_arrays([1, 2], [3, 4]).split("user", 1.5)
    with pytest.raises(ValueError, match="split"):
        recsys.Interactions.from_arrays([1, 2], [3, 4]).split("diagonal")
    with pytest.raises(ValueError, match="`train`"):
        recsys.SGD().fit("ratings.csv")


def test_bad_columns():
    with pytest.raises(ValueError, match="value"):
        recsys.Interactions.from_arrays([1, 2], [3, 4], [1.0, float("nan")])
    with pytest.raises(ValueError, match="value"):
        recsys.Interactions.from_arrays([1, 2], [3, 4], [1.0])
    with pytest.raises(ValueError, match="user"):
        recsys.Interactions.from_arrays(np.zeros((2, 2)), [3, 4])
    with pytest.raises(ValueError, match="item"):
        recsys.Interactions.from_arrays([1, 2], ["a", None])
    with pytest.raises(ValueError, match="aggregate"):
        recsys.Interactions.from_arrays([1, 2], [3, 4], aggregate="median")


def test_bad_frames():
    pd = pytest.importorskip("pandas")
    with pytest.raises(ValueError, match="not in the DataFrame"):
        recsys.Interactions.from_pandas(pd.DataFrame({"u": [1]}), user="u", item="i")
    with pytest.raises(ValueError, match="null"):
        recsys.Interactions.from_pandas(pd.DataFrame({"user": [1, None], "item": [1, 2]}))
    pl = pytest.importorskip("polars")
    with pytest.raises(ValueError, match="null"):
        recsys.Interactions.from_polars(pl.DataFrame({"user": [1, None], "item": [1, 2]}))


def test_no_data_left_is_an_error_not_a_crash():
    x = recsys.Interactions.from_arrays([1, 2], [3, 4], [-1.0, -2.0], implicit=True)
    with pytest.raises(ValueError, match="no training data"):
        recsys.ALS(factors=4).fit(x, show_progress=False)
