"""recsys: matrix-factorization recommenders on a Rust core.

Load interactions, fit SGD, ALS or BPR, evaluate, recommend, and save one
model file that ``recsys serve`` answers from unchanged::

    import recsys
    data = recsys.Interactions.from_csv("ratings.csv", implicit=True)
    train, test = data.split("user", 0.2, seed=42)
    model = recsys.ALS(factors=64).fit(train)
    model.evaluate(test, k=10)["precision@10"]
    model.recommend("u1", n=10)
    model.save("model.safetensors")

Everything is done by the same library the command line uses: the same
loading, parameters, defaults, checks, training, scoring and metrics. Ids are
the external ids of the data throughout (``int`` for integer ids, else
``str``). Errors: ``FileNotFoundError`` for a missing file, ``KeyError`` for an
unknown id where one is required, ``ValueError`` naming the bad argument,
parameter, file line or field.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _recsys

__all__ = [
    "Interactions",
    "SGD",
    "ALS",
    "BPR",
    "Model",
    "load",
    "tune",
    "trainer_from",
]

__version__ = _recsys._version()

Id = Union[int, str]
PathLike = Union[str, "os.PathLike[str]"]


def _paths(path: Union[PathLike, Sequence[PathLike]]) -> List[str]:
    if isinstance(path, (str, os.PathLike)):
        return [os.fspath(path)]
    return [os.fspath(p) for p in path]


def _ids(name: str, values: Any) -> Any:
    """An id column as the extension takes it: int64 array or list of str."""
    a = np.asarray(values)
    if a.ndim != 1:
        raise ValueError(f"`{name}`: ids must be one-dimensional, got shape {a.shape}")
    if a.dtype.kind in "iu":
        if a.dtype.kind == "u" and a.size and a.max() > np.iinfo(np.int64).max:
            raise ValueError(f"`{name}`: ids above 2^63 - 1 do not fit int64")
        return np.ascontiguousarray(a, dtype=np.int64)
    if a.dtype.kind == "b":
        raise ValueError(f"`{name}`: ids are integers or strings, not booleans")
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            raise ValueError(f"`{name}`: float ids must be whole numbers without NaN")
        return a.astype(np.int64)
    out = []
    for row, v in enumerate(a.tolist()):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            raise ValueError(f"`{name}`: row {row} has no id")
        out.append(str(v))
    return out


def _values(name: str, values: Any, n: int) -> Optional[np.ndarray]:
    if values is None:
        return None
    a = np.ascontiguousarray(np.asarray(values, dtype=np.float64)).astype(np.float32)
    if a.ndim != 1 or a.shape[0] != n:
        raise ValueError(f"`{name}`: expected {n} values, got shape {a.shape}")
    return a


def _times(name: str, values: Any, n: int) -> Optional[np.ndarray]:
    if values is None:
        return None
    a = np.asarray(values)
    if a.dtype.kind == "M":
        a = a.astype("datetime64[s]").astype(np.int64)
    elif a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            raise ValueError(f"`{name}`: times must be finite")
        a = a.astype(np.int64)
    elif a.dtype.kind not in "iu":
        raise ValueError(f"`{name}`: times are integers (seconds) or datetime64")
    a = np.ascontiguousarray(a, dtype=np.int64)
    if a.ndim != 1 or a.shape[0] != n:
        raise ValueError(f"`{name}`: expected {n} times, got shape {a.shape}")
    return a


class Interactions:
    """User–item interactions, loaded and checked by the library.

    Build one with :meth:`from_csv` (any file ``recsys train --data`` reads),
    :meth:`from_polars`, :meth:`from_pandas`, :meth:`from_arrays` or
    :meth:`from_scipy`. Repeated (user, item) rows combine as the command line
    combines them: the last wins for ratings; with ``implicit=True`` they add up
    and non-positive sums are dropped, as ``recsys train --implicit`` loads.
    """

    __slots__ = ("_x",)

    def __init__(self, native: "_recsys._Interactions") -> None:
        self._x = native

    # -- constructors -------------------------------------------------------

    @classmethod
    def from_csv(
        cls,
        path: Union[PathLike, Sequence[PathLike]],
        *,
        implicit: bool = False,
        positive_threshold: Optional[float] = None,
        **load_options: Any,
    ) -> "Interactions":
        """Read files, folders or globs (CSV/TSV, MovieLens, Parquet, adjacency lists).

        ``load_options`` are those of ``recsys train``: ``format``, ``user_col``,
        ``item_col``, ``rating_col``, ``time_col``, ``skip_bad_rows``,
        ``min_user_count``, ``min_item_count``, ``encoding``, ``aggregate``
        (``last``/``sum``/``count``/``max``), ``time_format``.
        ``positive_threshold``: keep the entries with value ≥ it, as positives of
        value 1 (implicit feedback, as ``recsys train --positive-threshold``).

        Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming
        the file, line and field of a malformed row.
        """
        allowed = {
            "format", "user_col", "item_col", "rating_col", "time_col", "skip_bad_rows",
            "min_user_count", "min_item_count", "encoding", "aggregate", "time_format",
        }
        bad = sorted(set(load_options) - allowed)
        if bad:
            raise TypeError(f"from_csv() got unknown load option(s): {', '.join(bad)}")
        # A threshold makes positives, so the data is implicit feedback (as
        # `recsys train --positive-threshold` takes it).
        implicit = bool(implicit) or positive_threshold is not None
        return cls(
            _recsys._Interactions.from_files(
                _paths(path), implicit, positive_threshold, **load_options
            )
        )

    @classmethod
    def from_arrays(
        cls,
        users: Any,
        items: Any,
        values: Any = None,
        times: Any = None,
        *,
        implicit: bool = False,
        positive_threshold: Optional[float] = None,
        aggregate: Optional[str] = None,
        min_user_count: int = 0,
        min_item_count: int = 0,
        source: str = "arrays",
    ) -> "Interactions":
        """One entry per row of equal-length arrays: user ids, item ids (ints or
        strings), optional values (default 1) and times (seconds or datetime64)."""
        u = _ids("user", users)
        n = len(u)
        implicit = bool(implicit) or positive_threshold is not None
        return cls(
            _recsys._Interactions.from_columns(
                u,
                _ids("item", items),
                _values("value", values, n),
                _times("time", times, n),
                source,
                implicit,
                positive_threshold,
                aggregate,
                min_user_count,
                min_item_count,
            )
        )

    @classmethod
    def from_polars(
        cls,
        df: Any,
        user: str = "user",
        item: str = "item",
        value: Optional[str] = None,
        time: Optional[str] = None,
        **options: Any,
    ) -> "Interactions":
        """From a polars DataFrame's columns (``value``/``time`` optional)."""
        cols = [c for c in (user, item, value, time) if c is not None]
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(f"column(s) {missing} not in the DataFrame (it has {df.columns})")
        for c in cols:
            if df[c].null_count():
                raise ValueError(f"column `{c}` has {df[c].null_count()} null(s)")
        return cls.from_arrays(
            df[user].to_numpy(),
            df[item].to_numpy(),
            None if value is None else df[value].to_numpy(),
            None if time is None else df[time].to_numpy(),
            source=options.pop("source", "polars DataFrame"),
            **options,
        )

    @classmethod
    def from_pandas(
        cls,
        df: Any,
        user: str = "user",
        item: str = "item",
        value: Optional[str] = None,
        time: Optional[str] = None,
        **options: Any,
    ) -> "Interactions":
        """From a pandas DataFrame's columns (``value``/``time`` optional)."""
        cols = [c for c in (user, item, value, time) if c is not None]
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(
                f"column(s) {missing} not in the DataFrame (it has {list(df.columns)})"
            )
        for c in cols:
            nulls = int(df[c].isna().sum())
            if nulls:
                raise ValueError(f"column `{c}` has {nulls} null(s)")
        return cls.from_arrays(
            df[user].to_numpy(),
            df[item].to_numpy(),
            None if value is None else df[value].to_numpy(),
            None if time is None else df[time].to_numpy(),
            source=options.pop("source", "pandas DataFrame"),
            **options,
        )

    @classmethod
    def from_scipy(
        cls,
        matrix: Any,
        user_ids: Optional[Sequence[Id]] = None,
        item_ids: Optional[Sequence[Id]] = None,
        **options: Any,
    ) -> "Interactions":
        """From a sparse users × items matrix (any scipy sparse format); stored
        zeros are dropped. Rows and columns are ids 0..n-1 unless ``user_ids`` /
        ``item_ids`` name them."""
        import scipy.sparse as sp

        if not sp.issparse(matrix):
            raise ValueError("`matrix`: expected a scipy.sparse matrix or array")
        coo = sp.coo_matrix(matrix)
        coo.eliminate_zeros()
        n_rows, n_cols = coo.shape
        for name, ids, n in (("user_ids", user_ids, n_rows), ("item_ids", item_ids, n_cols)):
            if ids is not None and len(ids) != n:
                raise ValueError(f"`{name}`: {len(ids)} ids for {n} rows/columns of the matrix")
        rows, cols = coo.row.astype(np.int64), coo.col.astype(np.int64)
        # Row-major order, as a file of the same entries would list them.
        order = np.lexsort((cols, rows))
        rows, cols, vals = rows[order], cols[order], coo.data[order]
        users = rows if user_ids is None else np.asarray(user_ids, dtype=object)[rows]
        items = cols if item_ids is None else np.asarray(item_ids, dtype=object)[cols]
        return cls.from_arrays(
            users if user_ids is None else _as_ids(users),
            items if item_ids is None else _as_ids(items),
            vals,
            source=options.pop("source", "scipy sparse matrix"),
            **options,
        )

    # -- use ----------------------------------------------------------------

    def split(
        self, kind: str = "user", fraction: float = 0.2, seed: int = 42
    ) -> Tuple["Interactions", "Interactions"]:
        """(train, test): ``random`` (a fraction of all entries), ``user`` (of each
        user's entries, at least one kept in train) or ``time`` (the newest),
        seeded as ``recsys train --split kind:fraction`` cuts it."""
        tr, te = self._x.split(kind, float(fraction), int(seed))
        return Interactions(tr), Interactions(te)

    def __len__(self) -> int:
        return len(self._x)

    @property
    def n_users(self) -> int:
        return self._x.n_users

    @property
    def n_items(self) -> int:
        return self._x.n_items

    def to_arrays(self) -> Tuple[Any, Any, np.ndarray]:
        """The entries as (user ids, item ids, values)."""
        return self._x.columns()

    def __repr__(self) -> str:
        return (
            f"Interactions({len(self)} entries, {self.n_users} users × {self.n_items} items, "
            f"from {', '.join(self._x.sources)})"
        )


def _as_ids(a: np.ndarray) -> Any:
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in a.tolist()):
        return np.asarray(a.tolist(), dtype=np.int64)
    return [str(v) for v in a.tolist()]


# -- trainers ---------------------------------------------------------------

_UNSET = object()


def _table(rows: List[Tuple[str, type, str, str]], defaults: Dict[str, Any]) -> str:
    def fmt(v: Any) -> str:
        if v is None:
            return "None"
        return repr(v)

    lines = [
        "| Name | Default | Purpose | Range |",
        "|---|---|---|---|",
    ]
    for name, _, purpose, rng in rows:
        d = "all cores" if name == "threads" and defaults.get(name) is None else fmt(defaults.get(name))
        lines.append(f"| {name} | {d} | {purpose} | {rng} |")
    return "\n".join(lines)


class _Trainer:
    """Common part of :class:`SGD`, :class:`ALS` and :class:`BPR`."""

    _algo = ""
    # (name, type, purpose, range): the help table and the coercion both
    # read it, so a parameter is declared once.
    _ROWS: List[Tuple[str, type, str, str]] = []
    _CHOICES: Dict[str, Tuple[str, ...]] = {
        "confidence": ("linear", "log"),
        "solver": ("cg", "cholesky"),
        "init": ("random", "svd"),
    }

    def __init__(self, **params: Any) -> None:
        self._list_head = bool(params.pop("list_head", False))
        defaults = self._defaults(params)
        given = {k: v for k, v in params.items() if v is not _UNSET}
        p = dict(defaults)
        for name, v in given.items():
            p[name] = self._coerce(name, v)
        self._set = sorted(given)
        self._params = p
        # The library checks every value and names the first bad one.
        _recsys.check_params(self._algo, json.dumps(p))

    def _defaults(self, params: Dict[str, Any]) -> Dict[str, Any]:
        return json.loads(_recsys.default_params(self._algo))

    def _coerce(self, name: str, v: Any) -> Any:
        t = next(r[1] for r in self._ROWS if r[0] == name)
        if v is None:
            if name in ("threads", "patience"):
                return None
            raise ValueError(f"`{name}` cannot be None")
        if t is bool:
            if not isinstance(v, (bool, np.bool_)):
                raise ValueError(f"`{name}` must be True or False, got {v!r}")
            return bool(v)
        if t is int:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ValueError(f"`{name}` must be an integer, got {v!r}")
            if int(v) < 0:
                raise ValueError(f"invalid parameter `{name}` = {v}: must be ≥ 0")
            return int(v)
        if t is float:
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                raise ValueError(f"`{name}` must be a number, got {v!r}")
            if not np.isfinite(v):
                raise ValueError(f"invalid parameter `{name}` = {v}: must be a finite number")
            return float(v)
        if t is str:
            choices = self._CHOICES.get(name, ())
            if not isinstance(v, str) or (choices and v not in choices):
                raise ValueError(f"`{name}` must be one of {', '.join(choices)}; got {v!r}")
            return v
        return v

    @property
    def params(self) -> Dict[str, Any]:
        """Every parameter as the library stores it in the model's metadata."""
        return dict(self._params)

    def fit(
        self,
        train: Interactions,
        validation: Optional[float] = None,
        show_progress: bool = True,
    ) -> "Model":
        """Train on ``train`` and return the :class:`Model`.

        ``validation``: a fraction of ``train`` held out for per-epoch validation
        (per user for implicit feedback, at random for ratings), needed by
        ``patience``. The GIL is released during the fit; Ctrl-C stops it at the
        end of the current epoch and raises ``KeyboardInterrupt``.
        """
        if not isinstance(train, Interactions):
            raise ValueError(f"`train`: expected recsys.Interactions, got {type(train).__name__}")
        if validation is not None:
            if isinstance(validation, bool) or not isinstance(validation, (int, float)):
                raise ValueError(f"`validation`: a fraction in (0, 1), got {validation!r}")
            validation = float(validation)
        native = _recsys.fit(
            train._x,
            self._algo,
            json.dumps(self._params),
            self._set,
            self._list_head,
            validation,
            bool(show_progress),
        )
        return Model(native)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={self._params[k]!r}" for k in self._set)
        return f"{type(self).__name__}({shown})"


class SGD(_Trainer):
    """Biased matrix factorization of ratings by stratified SGD.

    PARAMS

    ``list_head=True`` adds an implicit ALS model trained on the same ratings
    that answers the top-N lists (as ``recsys train`` does without ``--algo``).
    """

    _algo = "sgd"
    _ROWS = [
        ("factors", int, "latent dimensions k", "1..=4096"),
        ("epochs", int, "passes over the data", "1..=10000"),
        ("learning_rate", float, "step size of the first epoch", "(0, 1]"),
        ("lr_decay", float, "step size multiplier per epoch", "(0, 1]"),
        ("reg_factors", float, "L2 penalty on p_u and q_i", "≥ 0"),
        ("reg_bias", float, "L2 penalty on b_u and b_i", "≥ 0"),
        ("init_std", float, "std-dev of the normal initial factors", "≥ 0"),
        ("seed", int, "RNG seed (shuffles and initial factors)", "any"),
        ("threads", int, "worker threads", "≥ 1"),
        ("patience", int, "early stopping on validation RMSE (needs `validation`)", "≥ 1"),
        ("biases", bool, "learn μ, b_u and b_i; without them r̂ = p_u·q_i on the raw values", ""),
        ("adagrad", bool, "per-row AdaGrad steps (`learning_rate` is then AdaGrad's η)", ""),
        ("lead_factors", int, "the first epoch trains only the first this many factors (0: all)", "0..=factors"),
    ]

    def __init__(
        self,
        factors: Any = _UNSET,
        epochs: Any = _UNSET,
        learning_rate: Any = _UNSET,
        lr_decay: Any = _UNSET,
        reg_factors: Any = _UNSET,
        reg_bias: Any = _UNSET,
        init_std: Any = _UNSET,
        seed: Any = _UNSET,
        threads: Any = _UNSET,
        patience: Any = _UNSET,
        biases: Any = _UNSET,
        adagrad: Any = _UNSET,
        lead_factors: Any = _UNSET,
        list_head: bool = False,
    ) -> None:
        super().__init__(
            factors=factors, epochs=epochs, learning_rate=learning_rate, lr_decay=lr_decay,
            reg_factors=reg_factors, reg_bias=reg_bias, init_std=init_std, seed=seed,
            threads=threads, patience=patience, biases=biases, adagrad=adagrad,
            lead_factors=lead_factors, list_head=list_head,
        )


class ALS(_Trainer):
    """Alternating least squares: implicit feedback (confidence-weighted, Hu,
    Koren & Volinsky) by default, or ratings with ``implicit=False``.

    PARAMS

    For implicit feedback, ``alpha``, ``reg`` and (for counts and weights)
    ``confidence``/``eps`` follow the data unless given, as in ``recsys train``
    (the decision is in ``model.info()["data"]["defaults"]``). With
    ``implicit=False`` the rating defaults apply: factors 16, epochs 10,
    reg 0.11, solver cholesky, init_std 0.1.
    """

    _algo = "als"
    _ROWS = [
        ("factors", int, "latent dimensions k", "1..=1024"),
        ("epochs", int, "sweeps (users then items)", "1..=10000"),
        ("implicit", bool, "implicit feedback (confidence-weighted) or ratings", ""),
        ("reg", float, "L2 penalty λ (per entry of the row with scale_reg); implicit: follows the data unless set", "≥ 0"),
        ("scale_reg", bool, "λ_u = reg · n_u (Spark's weighted-λ)", ""),
        ("alpha", float, "confidence scale; implicit: follows the data unless set", "> 0"),
        ("confidence", str, "`linear` 1 + αr or `log` 1 + α ln(1 + r/ε)", ""),
        ("eps", float, "ε of the log confidence", "> 0"),
        ("solver", str, "`cg` (implicit only) or `cholesky` (exact)", ""),
        ("cg_steps", int, "conjugate-gradient steps per row and sweep", "1..=64"),
        ("init_std", float, "std-dev of the initial factors", "≥ 0"),
        ("seed", int, "RNG seed", "any"),
        ("threads", int, "worker threads", "≥ 1"),
        ("patience", int, "early stopping on the validation metric (needs `validation`)", "≥ 1"),
        ("reg_exponent", float, "ν of the frequency-scaled λ = reg · (n + α₀·N)^ν", "0..=2"),
        ("reg_unobserved", float, "α₀ of that λ", "≥ 0"),
        ("unobserved_exponent", float, "ω: unobserved entries weigh w_i ∝ f_i^ω, mean 1", "-1..=2"),
        ("item_degree_beta", float, "β: lists rank by (p·q_i)·d_i^β, stored in the model", "-2..=2"),
        ("init", str, "`random` or `svd` (first item factors from a randomised SVD; implicit)", ""),
    ]

    def __init__(
        self,
        implicit: bool = True,
        factors: Any = _UNSET,
        epochs: Any = _UNSET,
        reg: Any = _UNSET,
        scale_reg: Any = _UNSET,
        alpha: Any = _UNSET,
        confidence: Any = _UNSET,
        eps: Any = _UNSET,
        solver: Any = _UNSET,
        cg_steps: Any = _UNSET,
        init_std: Any = _UNSET,
        seed: Any = _UNSET,
        threads: Any = _UNSET,
        patience: Any = _UNSET,
        reg_exponent: Any = _UNSET,
        reg_unobserved: Any = _UNSET,
        unobserved_exponent: Any = _UNSET,
        item_degree_beta: Any = _UNSET,
        init: Any = _UNSET,
        list_head: bool = False,
    ) -> None:
        if not isinstance(implicit, (bool, np.bool_)):
            raise ValueError(f"`implicit` must be True or False, got {implicit!r}")
        self._implicit = bool(implicit)
        super().__init__(
            factors=factors, epochs=epochs, reg=reg, scale_reg=scale_reg, alpha=alpha,
            confidence=confidence, eps=eps, solver=solver, cg_steps=cg_steps,
            init_std=init_std, seed=seed, threads=threads, patience=patience,
            reg_exponent=reg_exponent, reg_unobserved=reg_unobserved,
            unobserved_exponent=unobserved_exponent, item_degree_beta=item_degree_beta,
            init=init, list_head=list_head,
        )
        if self._list_head and self._implicit:
            raise ValueError(
                "`list_head`: applies to models trained on ratings (implicit=False); "
                "an implicit model ranks by itself"
            )

    def _defaults(self, params: Dict[str, Any]) -> Dict[str, Any]:
        return json.loads(_recsys.default_params("als", self._implicit))


class BPR(_Trainer):
    """Bayesian personalized ranking (implicit feedback) by parallel SGD.

    PARAMS
    """

    _algo = "bpr"
    _ROWS = [
        ("factors", int, "latent dimensions k", "1..=4096"),
        ("epochs", int, "passes over the positives", "1..=10000"),
        ("learning_rate", float, "SGD step size", "(0, 1]"),
        ("reg", float, "L2 penalty on factors and item biases", "≥ 0"),
        ("init_std", float, "std-dev of the initial factors", "≥ 0"),
        ("seed", int, "RNG seed", "any"),
        ("threads", int, "worker threads", "≥ 1"),
        ("patience", int, "early stopping on validation nDCG@10 (needs `validation`)", "≥ 1"),
    ]

    def __init__(
        self,
        factors: Any = _UNSET,
        epochs: Any = _UNSET,
        learning_rate: Any = _UNSET,
        reg: Any = _UNSET,
        init_std: Any = _UNSET,
        seed: Any = _UNSET,
        threads: Any = _UNSET,
        patience: Any = _UNSET,
    ) -> None:
        super().__init__(
            factors=factors, epochs=epochs, learning_rate=learning_rate, reg=reg,
            init_std=init_std, seed=seed, threads=threads, patience=patience,
        )


def _document(cls: type, defaults: Dict[str, Any]) -> None:
    """Fill the PARAMS placeholder with the table, defaults from the library."""
    cls.__doc__ = (cls.__doc__ or "").replace("PARAMS", _table(cls._ROWS, defaults).replace("\n", "\n    "))


_document(SGD, json.loads(_recsys.default_params("sgd")))
_document(ALS, json.loads(_recsys.default_params("als", True)))
_document(BPR, json.loads(_recsys.default_params("bpr")))


# -- models -----------------------------------------------------------------


def _frame(columns: Tuple[Any, Any, Any, Any], format: str) -> Any:
    users, ranks, items, scores = columns
    data = {"user": users, "rank": ranks, "item": items, "score": scores}
    if format == "polars":
        import polars as pl

        return pl.DataFrame(data)
    if format == "pyarrow":
        import pyarrow as pa

        return pa.table(data)
    if format == "pandas":
        import pandas as pd

        return pd.DataFrame(data)
    if format == "numpy":
        return {k: np.asarray(v) for k, v in data.items()}
    raise ValueError(f"`format`: {format!r} is not one of polars, pyarrow, pandas, numpy")


class Model:
    """A trained or loaded model. Lists are ranked as ``recsys recommend`` and
    ``recsys serve`` rank them, with the user's training items left out."""

    __slots__ = ("_m",)

    def __init__(self, native: "_recsys._Model") -> None:
        self._m = native

    def recommend(
        self,
        user: Id,
        n: int = 10,
        exclude_seen: bool = True,
        exclude: Optional[Iterable[Id]] = None,
        only: Optional[Iterable[Id]] = None,
        strict: bool = False,
    ) -> List[Tuple[Id, float]]:
        """Top-``n`` ``(item_id, score)`` for ``user``, best first.

        ``exclude``: items never to return; ``only``: return items from this list
        only. An unknown user gets the most popular items, or ``KeyError`` with
        ``strict=True``.
        """
        return self._m.recommend(user, _count("n", n), bool(exclude_seen), exclude, only, bool(strict))

    def recommend_many(
        self,
        users: Iterable[Id],
        n: int = 10,
        exclude_seen: bool = True,
        strict: bool = False,
        format: str = "polars",
    ) -> Any:
        """Top-``n`` for each user, as a DataFrame with columns user, rank, item,
        score (``format``: polars, pyarrow, pandas or numpy). Batch-scored with
        the GIL released."""
        users = list(users.tolist() if isinstance(users, np.ndarray) else users)
        return _frame(self._m.recommend_many(users, _count("n", n), bool(exclude_seen), bool(strict)), format)

    def recommend_all(self, n: int = 10, exclude_seen: bool = True, format: str = "polars") -> Any:
        """Top-``n`` for every user of the model (as ``recsys recommend --all``),
        as :meth:`recommend_many` returns them."""
        return _frame(self._m.recommend_all(_count("n", n), bool(exclude_seen)), format)

    def similar_items(self, item: Id, n: int = 10) -> List[Tuple[Id, float]]:
        """The ``n`` items most similar to ``item`` (cosine of the item factors).
        ``KeyError`` for an unknown item."""
        return self._m.similar_items(item, _count("n", n))

    def recommend_for_items(
        self, items: Iterable[Union[Id, Tuple[Id, float]]], n: int = 10, exclude_seen: bool = True
    ) -> List[Tuple[Id, float]]:
        """Top-``n`` for a new user given by items (``id`` or ``(id, value)``),
        folded into the model without retraining; the given items are left out."""
        return self._m.recommend_for_items(list(items), _count("n", n), bool(exclude_seen))

    def evaluate(
        self,
        test: Union[Interactions, PathLike],
        k: Union[int, Sequence[int]] = 10,
        positive_threshold: Optional[float] = None,
    ) -> Dict[str, float]:
        """The metrics of ``recsys eval --format json`` on ``test`` (an
        :class:`Interactions` or a path), matched to the model by external id:
        ``rmse``/``mae``/``n`` for rating models, then ``precision@k``,
        ``recall@k``, ``ndcg@k``, ``map@k``, ``auc``, ``coverage@k`` and the
        ranking counts, training items excluded. ``positive_threshold``: the
        relevant test items are those rated ≥ it."""
        ks = [k] if isinstance(k, (int, np.integer)) else list(k)
        ks = [_count("k", x) for x in ks]
        if isinstance(test, Interactions):
            t = test._x
        elif isinstance(test, (str, os.PathLike)):
            t = self._m.load_test(_paths(test))
        else:
            raise ValueError(f"`test`: expected recsys.Interactions or a path, got {type(test).__name__}")
        return json.loads(self._m.evaluate(t, ks, positive_threshold))

    @property
    def user_factors(self) -> np.ndarray:
        """Users × k float32, a read-only view of the model's memory (no copy);
        it keeps the model alive."""
        return self._m.user_factors

    @property
    def item_factors(self) -> np.ndarray:
        """Items × k float32, a read-only view of the model's memory (no copy)."""
        return self._m.item_factors

    @property
    def user_ids(self) -> Any:
        """External user ids in factor-row order (int64 array or list of str)."""
        return self._m.user_ids

    @property
    def item_ids(self) -> Any:
        """External item ids in factor-row order (int64 array or list of str)."""
        return self._m.item_ids

    @property
    def n_users(self) -> int:
        return self._m.n_users

    @property
    def n_items(self) -> int:
        return self._m.n_items

    @property
    def factors(self) -> int:
        return self._m.factors

    @property
    def algorithm(self) -> str:
        return self._m.algorithm

    def save(self, path: PathLike) -> None:
        """Write the model file (safetensors; temp file, fsync, rename), which
        every recsys command and ``recsys serve`` read."""
        self._m.save(os.fspath(path))

    def info(self) -> Dict[str, Any]:
        """The metadata, as ``recsys info --json`` prints it."""
        return json.loads(self._m.info_json())

    def __repr__(self) -> str:
        return f"Model({self.algorithm}, {self.n_users} users × {self.n_items} items, k = {self.factors})"


def _count(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
        raise ValueError(f"`{name}` must be a non-negative integer, got {v!r}")
    return int(v)


def load(path: PathLike) -> Model:
    """Read a model file (or a registry pointer such as ``models/current``),
    memory-mapped: factor views read the file's pages directly."""
    return Model(_recsys._Model.load(os.fspath(path)))


def tune(
    data: Union[PathLike, Sequence[PathLike]],
    budget: float = 60.0,
    *,
    implicit: bool = False,
    positive_threshold: Optional[float] = None,
    algo: Optional[Sequence[str]] = None,
    metric: Optional[str] = None,
    trials: Optional[int] = None,
    validation_fraction: float = 0.1,
    seed: int = 42,
    parallel: Optional[int] = None,
) -> Dict[str, Any]:
    """Hyperparameter search as ``recsys tune``: successive halving on a
    validation carve of the training data, within ``budget`` seconds.

    Returns ``{"best": …, "leaderboard": […], …}``; ``best`` is what ``recsys
    tune`` writes to ``best.json`` (``recsys train --params`` reads it), and
    ``trainer_from(result)`` turns it into a trainer.
    """
    if isinstance(algo, str):
        algo = [a.strip() for a in algo.split(",")]
    out = _recsys.tune_files(
        _paths(data), float(budget), implicit, positive_threshold,
        None if algo is None else list(algo), metric, trials, float(validation_fraction),
        int(seed), parallel,
    )
    return json.loads(out)


def trainer_from(result: Dict[str, Any], threads: Optional[int] = None) -> _Trainer:
    """The trainer of :func:`tune`'s best parameters (its ``best`` entry or the
    whole result), with ``threads`` instead of the trials' one thread."""
    best = result.get("best", result)
    params = dict(best["params"])
    params.pop("engine", None)
    params["threads"] = threads
    algo = best["algorithm"]
    if algo == "sgd":
        return SGD(**params)
    if algo in ("als", "als-implicit"):
        return ALS(**params)
    if algo == "bpr":
        return BPR(**params)
    raise ValueError(f"`result`: unknown algorithm {algo!r}")
