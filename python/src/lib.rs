//! `recsys._recsys`: the native half of the Python package. It turns
//! Python values into the library's checked types and calls `engine`,
//! `score`, `eval` and `model`; it holds no training, loading or scoring of
//! its own. The Python half (`python/recsys/__init__.py`) adds the
//! conversions from polars, pandas, numpy and scipy and the docstrings.
//!
//! Main types: [`PyInteractions`] (`recsys.Interactions` wraps it) and
//! [`PyModel`] (`recsys.Model`). The GIL is released during loading,
//! fitting and batch scoring; a fit runs on a worker thread while the
//! calling thread watches for Ctrl-C.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use numpy::ndarray::ArrayView2;
use numpy::{PyArray1, PyArray2, PyReadonlyArray1};
use pyo3::exceptions::{PyFileNotFoundError, PyKeyError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyList;

use recsys::data::{self, split::SplitSpec, IdColumn, LoadOptions};
use recsys::engine::pipeline::{self, Event, SetByUser, TestSide, TrainConfig};
use recsys::engine::tune::{self, Family, Metric, TuneConfig, ValidationSide};
use recsys::engine::Trainer;
use recsys::interactions::{IdKey, IdMap, Interactions};
use recsys::model::{EpochReport, Model};
use recsys::score::{self, batch, foldin, similar, Filters, ItemList, RecommendOptions};
use recsys::train::{als::AlsParams, bpr::BprParams, sgd::SgdParams};
use recsys::Error;

/// The library's error as the Python exception the package documents:
/// missing files → `FileNotFoundError`, unknown ids → `KeyError`, other I/O
/// → `OSError`, everything else (bad parameters, rows, models) →
/// `ValueError`. The message is the whole chain, as the CLI prints it.
fn py_err(e: Error) -> PyErr {
    let msg = e.to_string();
    match e.root() {
        Error::NotFound { .. } | Error::NoFiles { .. } => PyFileNotFoundError::new_err(msg),
        Error::UnknownUser(_) | Error::UnknownItem(_) => PyKeyError::new_err(msg),
        Error::Io { .. } => PyOSError::new_err(msg),
        _ => PyValueError::new_err(msg),
    }
}

fn value_err(msg: impl Into<String>) -> PyErr {
    PyValueError::new_err(msg.into())
}

/// Ids given from Python: an int64 numpy array or a sequence of strings.
fn id_column(name: &str, v: &Bound<'_, PyAny>) -> PyResult<IdColumn> {
    if let Ok(a) = v.extract::<PyReadonlyArray1<'_, i64>>() {
        return Ok(IdColumn::Int(a.as_array().to_vec()));
    }
    v.extract::<Vec<String>>()
        .map(IdColumn::Str)
        .map_err(|_| value_err(format!("`{name}`: ids must be integers (int64) or strings")))
}

/// An external id as Python sees it: `int` for integer ids, else `str`.
fn id_text(v: &Bound<'_, PyAny>) -> PyResult<String> {
    if v.is_instance_of::<pyo3::types::PyBool>() {
        return Err(value_err("an id is an int or a str, not a bool"));
    }
    if let Ok(i) = v.extract::<i64>() {
        return Ok(i.to_string());
    }
    v.extract::<String>()
        .map_err(|_| value_err(format!("an id is an int or a str, not {}", v.get_type())))
}

/// The ids of a map as a Python object: an int64 array or a list of str.
fn ids_object<'py>(py: Python<'py>, m: &IdMap, idx: &[u32]) -> PyResult<Bound<'py, PyAny>> {
    Ok(match m {
        IdMap::Int { ids, .. } => {
            PyArray1::from_vec(py, idx.iter().map(|&i| ids[i as usize]).collect()).into_any()
        }
        IdMap::Str { ids, .. } => {
            PyList::new(py, idx.iter().map(|&i| ids[i as usize].as_str()))?.into_any()
        }
    })
}

/// One external id (given as text by the scorer) as an int or a str.
fn id_object<'py>(py: Python<'py>, m: &IdMap, text: &str) -> PyResult<Bound<'py, PyAny>> {
    Ok(match (m, text.parse::<i64>()) {
        (IdMap::Int { .. }, Ok(v)) => v.into_pyobject(py)?.into_any(),
        _ => text.into_pyobject(py)?.into_any(),
    })
}

fn no_events(_: Event) {}

/// Interactions loaded by the library: dense ids, de-duplicated, checked.
#[pyclass(frozen, name = "_Interactions", module = "recsys._recsys")]
pub struct PyInteractions {
    inner: Arc<Interactions>,
    /// Where the data came from, as the model's metadata records it.
    sources: Vec<String>,
}

impl PyInteractions {
    fn new(x: Interactions, sources: Vec<String>) -> Self {
        PyInteractions {
            inner: Arc::new(x),
            sources,
        }
    }
}

/// Load options from keyword arguments, each checked and named on error.
#[allow(clippy::too_many_arguments)]
fn load_options(
    format: Option<String>,
    user_col: Option<String>,
    item_col: Option<String>,
    rating_col: Option<String>,
    time_col: Option<String>,
    skip_bad_rows: bool,
    min_user_count: u32,
    min_item_count: u32,
    encoding: Option<String>,
    aggregate: Option<String>,
    time_format: Option<String>,
) -> PyResult<LoadOptions> {
    let parse = |name: &str, v: Option<String>| -> PyResult<Option<String>> {
        match v {
            Some(s) if s.trim().is_empty() => Err(value_err(format!("`{name}` is empty"))),
            v => Ok(v),
        }
    };
    Ok(LoadOptions {
        format: parse("format", format)?
            .map(|s| s.parse())
            .transpose()
            .map_err(|e: String| value_err(format!("`format`: {e}")))?,
        user_col: parse("user_col", user_col)?,
        item_col: parse("item_col", item_col)?,
        rating_col: parse("rating_col", rating_col)?,
        time_col: parse("time_col", time_col)?,
        skip_bad_rows,
        min_user_count,
        min_item_count,
        encoding: match encoding {
            Some(e) => e
                .parse()
                .map_err(|e: String| value_err(format!("`encoding`: {e}")))?,
            None => Default::default(),
        },
        aggregate: aggregate
            .map(|s| s.parse())
            .transpose()
            .map_err(|e: String| value_err(format!("`aggregate`: {e}")))?,
        drop_non_positive: false,
        time_format: time_format
            .map(|s| data::time::TimeFormat::from_user(&s))
            .transpose()
            .map_err(|e: String| value_err(format!("`time_format`: {e}")))?,
    })
}

#[pymethods]
impl PyInteractions {
    /// Reads files (CSV/TSV/MovieLens/Parquet, folders, globs) as `recsys
    /// train` does. `implicit`: repeated rows add up and non-positive sums
    /// go; `positive_threshold`: keep the entries ≥ it as positives.
    #[staticmethod]
    #[pyo3(signature = (sources, implicit=false, positive_threshold=None, format=None,
        user_col=None, item_col=None, rating_col=None, time_col=None, skip_bad_rows=false,
        min_user_count=0, min_item_count=0, encoding=None, aggregate=None, time_format=None))]
    #[allow(clippy::too_many_arguments)]
    fn from_files(
        py: Python<'_>,
        sources: Vec<String>,
        implicit: bool,
        positive_threshold: Option<f32>,
        format: Option<String>,
        user_col: Option<String>,
        item_col: Option<String>,
        rating_col: Option<String>,
        time_col: Option<String>,
        skip_bad_rows: bool,
        min_user_count: u32,
        min_item_count: u32,
        encoding: Option<String>,
        aggregate: Option<String>,
        time_format: Option<String>,
    ) -> PyResult<Self> {
        if sources.is_empty() {
            return Err(value_err("`path`: no data sources given"));
        }
        let opts = load_options(
            format,
            user_col,
            item_col,
            rating_col,
            time_col,
            skip_bad_rows,
            min_user_count,
            min_item_count,
            encoding,
            aggregate,
            time_format,
        )?;
        let x = py
            .detach(|| {
                pipeline::load(
                    &sources,
                    &opts,
                    implicit,
                    positive_threshold,
                    "data",
                    &mut no_events,
                )
            })
            .map_err(py_err)?
            .0;
        Ok(PyInteractions::new(x, sources))
    }

    /// Interactions from columns in memory: `users`/`items` as int64 arrays
    /// or lists of str, `values` float32 (or None: every value 1), `times`
    /// int64 (or None). `source` names the data in errors and metadata.
    #[staticmethod]
    #[pyo3(signature = (users, items, values, times, source, implicit=false,
        positive_threshold=None, aggregate=None, min_user_count=0, min_item_count=0))]
    #[allow(clippy::too_many_arguments)]
    fn from_columns(
        py: Python<'_>,
        users: &Bound<'_, PyAny>,
        items: &Bound<'_, PyAny>,
        values: Option<PyReadonlyArray1<'_, f32>>,
        times: Option<PyReadonlyArray1<'_, i64>>,
        source: String,
        implicit: bool,
        positive_threshold: Option<f32>,
        aggregate: Option<String>,
        min_user_count: u32,
        min_item_count: u32,
    ) -> PyResult<Self> {
        let cols = data::Columns {
            users: id_column("user", users)?,
            items: id_column("item", items)?,
            values: values.map(|v| v.as_array().to_vec()),
            times: times.map(|t| t.as_array().to_vec()),
        };
        let opts = LoadOptions {
            aggregate: aggregate
                .map(|s| s.parse())
                .transpose()
                .map_err(|e: String| value_err(format!("`aggregate`: {e}")))?,
            min_user_count,
            min_item_count,
            ..Default::default()
        };
        let x = py
            .detach(|| {
                pipeline::load_columns(
                    cols,
                    &source,
                    &opts,
                    implicit,
                    positive_threshold,
                    &mut no_events,
                )
            })
            .map_err(py_err)?
            .0;
        Ok(PyInteractions::new(x, vec![source]))
    }

    /// (train, test) by `kind` (`random`, `user`, `time`) and `fraction`,
    /// seeded; the training side is renumbered as `recsys train --split` does.
    #[pyo3(signature = (kind="user", fraction=0.2, seed=42))]
    fn split(
        &self,
        py: Python<'_>,
        kind: &str,
        fraction: f64,
        seed: u64,
    ) -> PyResult<(Self, Self)> {
        let spec: SplitSpec = format!("{kind}:{fraction}")
            .parse()
            .map_err(|e: String| value_err(format!("split: {e}")))?;
        let x = Arc::clone(&self.inner);
        let (tr, te) = py
            .detach(|| data::split::split(&x, spec, seed).map(|(tr, te)| (tr.compact(), te)))
            .map_err(py_err)?;
        Ok((
            PyInteractions::new(tr, self.sources.clone()),
            PyInteractions::new(te, self.sources.clone()),
        ))
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    #[getter]
    fn n_users(&self) -> usize {
        self.inner.n_users()
    }

    #[getter]
    fn n_items(&self) -> usize {
        self.inner.n_items()
    }

    #[getter]
    fn sources(&self) -> Vec<String> {
        self.sources.clone()
    }

    /// The entries as (user ids, item ids, values): ids as int64 arrays or
    /// lists of str.
    fn columns<'py>(&self, py: Python<'py>) -> PyResult<Columns<'py>> {
        let x = &self.inner;
        Ok((
            ids_object(py, &x.user_ids, &x.users)?,
            ids_object(py, &x.item_ids, &x.items)?,
            PyArray1::from_slice(py, &x.values),
        ))
    }
}

/// A trainer's parameters from their JSON (every field), checked by the
/// library: a bad value is a `ValueError` naming it.
fn trainer_of(algo: &str, params: &str) -> PyResult<Trainer> {
    fn de<T: serde::de::DeserializeOwned>(s: &str) -> PyResult<T> {
        serde_json::from_str(s).map_err(|e| value_err(format!("parameters: {e}")))
    }
    Ok(match algo {
        "sgd" => Trainer::Sgd(de::<SgdParams>(params)?.check().map_err(py_err)?),
        "als" => Trainer::Als(de::<AlsParams>(params)?.check().map_err(py_err)?),
        "bpr" => Trainer::Bpr(de::<BprParams>(params)?.check().map_err(py_err)?),
        other => return Err(value_err(format!("unknown algorithm `{other}`"))),
    })
}

/// The library's default parameters of an algorithm as JSON (`als` with
/// `implicit` picks the implicit or the rating defaults).
#[pyfunction]
#[pyo3(signature = (algo, implicit=true))]
fn default_params(algo: &str, implicit: bool) -> PyResult<String> {
    let v = match algo {
        "sgd" => serde_json::to_string(&SgdParams::default()),
        "als" => serde_json::to_string(&AlsParams::for_feedback(implicit)),
        "bpr" => serde_json::to_string(&BprParams::default()),
        // The list head's own parameters, for the docs of `list_head`.
        "list_head" => serde_json::to_string(&recsys::engine::heads::list_head_params(42, None)),
        other => return Ok(format!("unknown algorithm `{other}`")),
    };
    v.map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

/// Checks parameters as the library does; raises `ValueError` naming the
/// first bad one.
#[pyfunction]
fn check_params(algo: &str, params: &str) -> PyResult<()> {
    trainer_of(algo, params).map(|_| ())
}

/// The payload of the unwind that stops a fit on Ctrl-C (see [`fit`]).
struct Interrupted;

/// One line per epoch, as the CLI's progress shows it.
fn epoch_line(r: &EpochReport) -> String {
    let mut s = format!("epoch {:>3}  {:.3}s", r.epoch, r.seconds);
    for (name, v) in [
        ("train_rmse", r.train_rmse),
        ("train_loss", r.train_loss),
        ("train_auc", r.train_auc),
        ("valid_rmse", r.valid_rmse),
        ("valid_p@10", r.valid_precision),
        ("valid_ndcg@10", r.valid_ndcg),
    ] {
        if let Some(v) = v {
            s.push_str(&format!("  {name} {v:.4}"));
        }
    }
    s
}

/// Fits `train` with the pipeline's [`pipeline::train_on`] (the same steps
/// as `recsys train`): `algo`/`params` the trainer, `set` the implicit ALS
/// parameters the caller chose (the others follow the data), `list_head`
/// a list head for a rating model, `validation` a fraction held out for
/// per-epoch validation.
///
/// The GIL is released; the fit runs on a worker thread while this thread
/// checks for signals every 50 ms. On Ctrl-C the next epoch's callback
/// unwinds with [`Interrupted`] (the trainers' epoch callback cannot return
/// an error), the worker catches it, and `KeyboardInterrupt` is raised: the
/// fit stops at an epoch boundary and nothing is kept.
#[pyfunction]
#[pyo3(signature = (train, algo, params, set, list_head=false, validation=None, show_progress=false))]
#[allow(clippy::too_many_arguments)]
fn fit(
    py: Python<'_>,
    train: &PyInteractions,
    algo: &str,
    params: &str,
    set: Vec<String>,
    list_head: bool,
    validation: Option<f64>,
    show_progress: bool,
) -> PyResult<PyModel> {
    let trainer = trainer_of(algo, params)?;
    let is = |name: &str| set.iter().any(|s| s == name);
    let (seed, threads) = match &trainer {
        Trainer::Sgd(p) => (p.params().seed, p.params().threads),
        Trainer::Als(p) | Trainer::Spark(p, ..) => (p.params().seed, p.params().threads),
        Trainer::Bpr(p) => (p.params().seed, p.params().threads),
    };
    let head = if list_head {
        if trainer.implicit() {
            return Err(value_err(
                "`list_head`: applies to models trained on ratings; an implicit model ranks by itself",
            ));
        }
        Some(recsys::engine::heads::list_head_trainer(seed, threads).map_err(py_err)?)
    } else {
        None
    };
    let cfg = TrainConfig {
        sources: train.sources.clone(),
        load: LoadOptions::default(),
        test: TestSide::None,
        validation,
        list_head: head,
        trainer,
        adapt: Some(SetByUser {
            alpha: is("alpha"),
            reg: is("reg"),
            confidence: is("confidence"),
            eps: is("eps"),
        }),
        positive_threshold: None,
        relevant_min: None,
        eval_k: vec![10],
        seed,
        out: None,
    };
    cfg.check().map_err(py_err)?;
    let x = Arc::clone(&train.inner);
    let stop = AtomicBool::new(false);
    let work = || {
        std::panic::catch_unwind(AssertUnwindSafe(|| {
            let mut events = |e: Event| {
                if stop.load(Ordering::Relaxed) {
                    std::panic::resume_unwind(Box::new(Interrupted));
                }
                if let (Event::Epoch(r), true) = (&e, show_progress) {
                    let line = epoch_line(r);
                    Python::attach(|py| {
                        if let Ok(err) = py.import("sys").and_then(|s| s.getattr("stderr")) {
                            let _ = err.call_method1("write", (line + "\n",));
                        }
                    });
                }
            };
            pipeline::train_on(&cfg, (*x).clone(), None, &mut events)
        }))
    };
    let (result, signal) = py.detach(|| {
        std::thread::scope(|s| {
            let h = s.spawn(work);
            let mut signal = None;
            while !h.is_finished() {
                std::thread::sleep(Duration::from_millis(50));
                if signal.is_none() {
                    if let Err(e) = Python::attach(|py| py.check_signals()) {
                        stop.store(true, Ordering::Relaxed);
                        signal = Some(e);
                    }
                }
            }
            (h.join(), signal)
        })
    });
    match result {
        Ok(Ok(Ok((model, ..)))) => match signal {
            // Interrupted after the last epoch: the fit is whole, but the
            // interrupt is still the caller's.
            Some(e) => Err(e),
            None => Ok(PyModel::new(model)),
        },
        Ok(Ok(Err(e))) => Err(signal.unwrap_or_else(|| py_err(e))),
        Ok(Err(payload)) | Err(payload) => {
            if payload.is::<Interrupted>() {
                Err(signal.unwrap_or_else(|| PyRuntimeError::new_err("fit interrupted")))
            } else {
                std::panic::resume_unwind(payload)
            }
        }
    }
}

/// A trained or loaded model.
#[pyclass(frozen, name = "_Model", module = "recsys._recsys")]
pub struct PyModel {
    inner: Arc<Model>,
}

impl PyModel {
    fn new(m: Model) -> Self {
        PyModel { inner: Arc::new(m) }
    }
}

/// Filters from the Python arguments: unknown ids in `exclude` and `only`
/// are ignored (they could never be returned).
fn filters(
    model: &Model,
    exclude_seen: bool,
    exclude: Option<Vec<String>>,
    only: Option<Vec<String>>,
) -> Filters {
    let model = model.lists();
    let mut f = Filters {
        exclude_seen,
        blocked: None,
    };
    if let Some(ex) = &exclude {
        f.exclude_items(model, ex.iter().map(String::as_str));
    }
    if let Some(only) = &only {
        let l = ItemList::resolve(model, only.iter().map(String::as_str));
        f.only(model, &l.items);
    }
    f
}

fn id_texts(v: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Vec<String>>> {
    match v {
        None => Ok(None),
        Some(v) if v.is_none() => Ok(None),
        Some(v) => v
            .try_iter()?
            .map(|x| id_text(&x?))
            .collect::<PyResult<Vec<_>>>()
            .map(Some),
    }
}

/// An interaction table's columns: user ids, item ids, values.
type Columns<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyAny>,
    Bound<'py, PyArray1<f32>>,
);

/// Columns of a batch of lists: user ids, ranks (1-based), item ids, scores.
type Batch<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyArray1<u32>>,
    Bound<'py, PyAny>,
    Bound<'py, PyArray1<f32>>,
);

#[pymethods]
impl PyModel {
    /// Reads a model file (or a registry pointer), memory-mapped.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let m = py
            .detach(|| {
                let p = recsys::model::resolve_model_path(&path)?;
                Model::load(&p).map_err(|e| e.context(format!("loading model {}", p.display())))
            })
            .map_err(py_err)?;
        Ok(PyModel::new(m))
    }

    /// Writes the model file (temp file, fsync, rename).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let m = Arc::clone(&self.inner);
        py.detach(|| {
            m.save(&path)
                .map_err(|e| e.context(format!("writing model {}", path.display())))
        })
        .map_err(py_err)
    }

    /// The metadata as `recsys info --json` prints it, as JSON text.
    fn info_json(&self) -> String {
        self.inner.info_json().to_string()
    }

    #[pyo3(signature = (user, n=10, exclude_seen=true, exclude=None, only=None, strict=false))]
    #[allow(clippy::too_many_arguments)]
    fn recommend<'py>(
        &self,
        py: Python<'py>,
        user: &Bound<'py, PyAny>,
        n: usize,
        exclude_seen: bool,
        exclude: Option<&Bound<'py, PyAny>>,
        only: Option<&Bound<'py, PyAny>>,
        strict: bool,
    ) -> PyResult<Vec<(Bound<'py, PyAny>, f32)>> {
        let user = id_text(user)?;
        let m = &self.inner;
        let o = RecommendOptions {
            n,
            filters: filters(m, exclude_seen, id_texts(exclude)?, id_texts(only)?),
            strict,
            ..Default::default()
        };
        let r = score::recommend(m, &user, &o).map_err(py_err)?;
        let ids = m.lists().item_ids();
        r.items
            .iter()
            .map(|s| Ok((id_object(py, ids, &s.item)?, s.score)))
            .collect()
    }

    /// Top-`n` for each of `users`, as columns. Unknown users get the
    /// popularity fallback (or raise `KeyError` with `strict`).
    #[pyo3(signature = (users, n=10, exclude_seen=true, strict=false))]
    fn recommend_many<'py>(
        &self,
        py: Python<'py>,
        users: &Bound<'py, PyAny>,
        n: usize,
        exclude_seen: bool,
        strict: bool,
    ) -> PyResult<Batch<'py>> {
        let users = id_texts(Some(users))?.unwrap_or_default();
        let m = Arc::clone(&self.inner);
        let rows = py
            .detach(|| -> recsys::Result<Vec<batch::UserRecs>> {
                let lists = m.lists();
                let f = filters(&m, exclude_seen, None, None);
                let mut dense = Vec::with_capacity(users.len());
                let mut cold = Vec::new();
                for (row, u) in users.iter().enumerate() {
                    match lists.user_ids().get(u) {
                        Some(d) => dense.push(d),
                        None if strict => return Err(Error::UnknownUser(u.clone())),
                        None => cold.push(row),
                    }
                }
                let mut known = Vec::with_capacity(dense.len());
                batch::recommend_all(&m, &dense, n, &f, &mut |b| {
                    known.extend_from_slice(b);
                    Ok(())
                })?;
                // Back to the caller's order; cold users get the fallback.
                let mut out = Vec::with_capacity(users.len());
                let mut known = known.into_iter();
                let mut cold = cold.into_iter().peekable();
                for row in 0..users.len() {
                    if cold.peek() == Some(&row) {
                        cold.next();
                        let (_, picks) = score::popular(lists, n, &f, score::Fallback::Recent, &[]);
                        out.push((u32::MAX, picks));
                    } else if let Some(r) = known.next() {
                        out.push(r);
                    }
                }
                Ok(out)
            })
            .map_err(py_err)?;
        batch_columns(py, &self.inner, &rows, Some(&users))
    }

    /// Top-`n` for every user of the model, as columns.
    #[pyo3(signature = (n=10, exclude_seen=true))]
    fn recommend_all<'py>(
        &self,
        py: Python<'py>,
        n: usize,
        exclude_seen: bool,
    ) -> PyResult<Batch<'py>> {
        let m = Arc::clone(&self.inner);
        let rows = py
            .detach(|| -> recsys::Result<Vec<batch::UserRecs>> {
                let users: Vec<u32> = (0..m.lists().n_users() as u32).collect();
                let f = filters(&m, exclude_seen, None, None);
                let mut out = Vec::with_capacity(users.len());
                batch::recommend_all(&m, &users, n, &f, &mut |b| {
                    out.extend_from_slice(b);
                    Ok(())
                })?;
                Ok(out)
            })
            .map_err(py_err)?;
        batch_columns(py, &self.inner, &rows, None)
    }

    /// The `n` items most similar to `item` (cosine of the item factors).
    #[pyo3(signature = (item, n=10))]
    fn similar_items<'py>(
        &self,
        py: Python<'py>,
        item: &Bound<'py, PyAny>,
        n: usize,
    ) -> PyResult<Vec<(Bound<'py, PyAny>, f32)>> {
        let item = id_text(item)?;
        let m = &self.inner;
        let picks = similar::similar_items(m, &item, n, &Filters::default()).map_err(py_err)?;
        picks_list(py, m, &picks)
    }

    /// Top-`n` for a new user given by items (`id` or `(id, value)`),
    /// folded in without retraining.
    #[pyo3(signature = (items, n=10, exclude_seen=true))]
    fn recommend_for_items<'py>(
        &self,
        py: Python<'py>,
        items: &Bound<'py, PyAny>,
        n: usize,
        exclude_seen: bool,
    ) -> PyResult<Vec<(Bound<'py, PyAny>, f32)>> {
        let mut given = Vec::new();
        for x in items.try_iter()? {
            let x = x?;
            if let Ok((id, v)) = x.extract::<(Bound<'py, PyAny>, f32)>() {
                if !v.is_finite() {
                    return Err(value_err(format!(
                        "`items`: the value of {id} is not finite"
                    )));
                }
                given.push((id_text(&id)?, Some(v)));
            } else {
                given.push((id_text(&x)?, None));
            }
        }
        let m = &self.inner;
        let o = RecommendOptions {
            n,
            filters: Filters {
                exclude_seen,
                blocked: None,
            },
            ..Default::default()
        };
        let r = foldin::recommend_items(m, &given, &o).map_err(py_err)?;
        let ids = m.lists().item_ids();
        r.items
            .iter()
            .map(|s| Ok((id_object(py, ids, &s.item)?, s.score)))
            .collect()
    }

    /// The figures of `recsys eval --format json` on `test` (matched to the
    /// model by external id), as JSON text.
    #[pyo3(signature = (test, k, positive_threshold=None))]
    fn evaluate(
        &self,
        py: Python<'_>,
        test: &PyInteractions,
        k: Vec<usize>,
        positive_threshold: Option<f32>,
    ) -> PyResult<String> {
        if k.is_empty() || k.contains(&0) {
            return Err(value_err("`k`: cut-offs must be ≥ 1"));
        }
        let m = Arc::clone(&self.inner);
        let t = Arc::clone(&test.inner);
        let v = py.detach(|| recsys::eval::report(&m, &t, &k, positive_threshold));
        Ok(serde_json::Value::Object(v).to_string())
    }

    /// A test file loaded as `recsys eval --test` loads it for this model.
    fn load_test(&self, py: Python<'_>, sources: Vec<String>) -> PyResult<PyInteractions> {
        let implicit = self.inner.meta().implicit;
        let x = py
            .detach(|| {
                pipeline::load(
                    &sources,
                    &LoadOptions::default(),
                    implicit,
                    None,
                    "test",
                    &mut no_events,
                )
            })
            .map_err(py_err)?
            .0;
        Ok(PyInteractions::new(x, sources))
    }

    /// The user factors (users × k) as a read-only numpy view of the
    /// model's memory (owned or mapped); the view keeps the model alive.
    #[getter]
    fn user_factors<'py>(slf: Bound<'py, Self>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let m = Arc::clone(&slf.get().inner);
        factors_view(slf.into_any(), m.user_factors(), m.n_users(), m.factors())
    }

    /// The item factors (items × k), as [`Self::user_factors`].
    #[getter]
    fn item_factors<'py>(slf: Bound<'py, Self>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let m = Arc::clone(&slf.get().inner);
        factors_view(slf.into_any(), m.item_factors(), m.n_items(), m.factors())
    }

    #[getter]
    fn user_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let m = &self.inner;
        let idx: Vec<u32> = (0..m.n_users() as u32).collect();
        ids_object(py, m.user_ids(), &idx)
    }

    #[getter]
    fn item_ids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let m = &self.inner;
        let idx: Vec<u32> = (0..m.n_items() as u32).collect();
        ids_object(py, m.item_ids(), &idx)
    }

    #[getter]
    fn n_users(&self) -> usize {
        self.inner.n_users()
    }

    #[getter]
    fn n_items(&self) -> usize {
        self.inner.n_items()
    }

    #[getter]
    fn factors(&self) -> usize {
        self.inner.factors()
    }

    #[getter]
    fn algorithm(&self) -> String {
        self.inner.meta().algorithm.clone()
    }

    #[getter]
    fn implicit(&self) -> bool {
        self.inner.meta().implicit
    }
}

/// A read-only numpy view of `data` as `rows × k`, based on `owner`.
fn factors_view<'py>(
    owner: Bound<'py, PyAny>,
    data: &[f32],
    rows: usize,
    k: usize,
) -> PyResult<Bound<'py, PyArray2<f32>>> {
    let view = ArrayView2::from_shape((rows, k), data)
        .map_err(|e| PyRuntimeError::new_err(format!("factor shape: {e}")))?;
    // SAFETY: `data` is a slice of a `Model` held by `owner` (a frozen
    // `_Model`, whose `Arc<Model>` is never replaced or mutated), so the
    // memory neither moves nor changes while `owner` lives; numpy keeps
    // `owner` alive as the array's base object. The array is made
    // read-only below because mapped model files are read-only memory.
    let a = unsafe { PyArray2::borrow_from_array(&view, owner) };
    a.getattr("flags")?.setattr("writeable", false)?;
    Ok(a)
}

fn picks_list<'py>(
    py: Python<'py>,
    m: &Model,
    picks: &[(u32, f32)],
) -> PyResult<Vec<(Bound<'py, PyAny>, f32)>> {
    picks
        .iter()
        .map(|&(i, s)| {
            let id = match score::item_key(m, i) {
                IdKey::Int(v) => v.into_pyobject(py)?.into_any(),
                IdKey::Str(v) => v.into_pyobject(py)?.into_any(),
            };
            Ok((id, s))
        })
        .collect()
}

/// Lists as columns. With `names` (the ids the caller asked for, one per
/// row of `rows`; a cold user's index is `u32::MAX`), the user column holds
/// those ids; else the model's ids of the users.
fn batch_columns<'py>(
    py: Python<'py>,
    m: &Model,
    rows: &[batch::UserRecs],
    names: Option<&[String]>,
) -> PyResult<Batch<'py>> {
    let m = m.lists();
    let total: usize = rows.iter().map(|r| r.1.len()).sum();
    let (mut users, mut row_names) = (Vec::with_capacity(total), Vec::new());
    let mut ranks = Vec::with_capacity(total);
    let mut items = Vec::with_capacity(total);
    let mut scores = Vec::with_capacity(total);
    for (row, (u, picks)) in rows.iter().enumerate() {
        for (r, &(i, s)) in picks.iter().enumerate() {
            users.push(*u);
            if let Some(n) = names {
                row_names.push(n[row].as_str());
            }
            ranks.push(r as u32 + 1);
            items.push(i);
            scores.push(s);
        }
    }
    let user_col = match (names, m.user_ids()) {
        // Ids as the caller gave them (cold users too).
        (Some(_), IdMap::Int { .. }) => PyArray1::from_vec(
            py,
            row_names
                .iter()
                .map(|s| s.parse::<i64>().unwrap_or_default())
                .collect(),
        )
        .into_any(),
        (Some(_), IdMap::Str { .. }) => PyList::new(py, row_names)?.into_any(),
        (None, map) => ids_object(py, map, &users)?,
    };
    Ok((
        user_col,
        PyArray1::from_vec(py, ranks),
        ids_object(py, m.item_ids(), &items)?,
        PyArray1::from_vec(py, scores),
    ))
}

/// `recsys tune` from Python: returns the best parameters (as `recsys
/// train --params` reads them) and the leaderboard, as JSON text.
#[pyfunction]
#[pyo3(signature = (sources, budget_seconds, implicit=false, positive_threshold=None,
    algo=None, metric=None, trials=None, validation_fraction=0.1, seed=42, parallel=None))]
#[allow(clippy::too_many_arguments)]
fn tune_files(
    py: Python<'_>,
    sources: Vec<String>,
    budget_seconds: f64,
    implicit: bool,
    positive_threshold: Option<f32>,
    algo: Option<Vec<String>>,
    metric: Option<String>,
    trials: Option<usize>,
    validation_fraction: f64,
    seed: u64,
    parallel: Option<usize>,
) -> PyResult<String> {
    let implicit = implicit || positive_threshold.is_some();
    let families = match algo {
        None if implicit => vec![Family::Als],
        None => vec![Family::Sgd],
        Some(list) => list
            .iter()
            .map(|a| match a.as_str() {
                "sgd" => Ok(Family::Sgd),
                "als" => Ok(Family::Als),
                "bpr" => Ok(Family::Bpr),
                other => Err(value_err(format!(
                    "`algo`: {other:?} is not one of sgd, als, bpr"
                ))),
            })
            .collect::<PyResult<_>>()?,
    };
    let metric: Metric = metric
        .as_deref()
        .unwrap_or(if implicit { "ndcg@10" } else { "rmse" })
        .parse()
        .map_err(|e: String| value_err(format!("`metric`: {e}")))?;
    if !(budget_seconds.is_finite() && budget_seconds > 0.0) {
        return Err(value_err(format!(
            "`budget`: {budget_seconds} must be a positive number of seconds"
        )));
    }
    let cfg = TuneConfig {
        sources,
        load: LoadOptions::default(),
        implicit,
        positive_threshold,
        families,
        metric,
        budget: Duration::from_secs_f64(budget_seconds),
        max_trials: trials,
        validation: ValidationSide::Carve(validation_fraction),
        seed,
        parallel: parallel
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        start: None,
    };
    cfg.check().map_err(py_err)?;
    let run = py.detach(|| tune::run(&cfg, &mut |_| {})).map_err(py_err)?;
    let board: Vec<_> = run.leaderboard(&cfg.metric).into_iter().cloned().collect();
    let v = serde_json::json!({
        "best": run.best_params,
        "leaderboard": board,
        "seconds": run.seconds,
        "stopped": run.stopped,
        "train_rows": run.train_rows,
        "validation_rows": run.validation_rows,
    });
    Ok(v.to_string())
}

/// The version of the recsys library this extension was built with.
#[pyfunction]
fn _version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[pymodule]
fn _recsys(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyInteractions>()?;
    m.add_class::<PyModel>()?;
    m.add_function(wrap_pyfunction!(fit, m)?)?;
    m.add_function(wrap_pyfunction!(default_params, m)?)?;
    m.add_function(wrap_pyfunction!(check_params, m)?)?;
    m.add_function(wrap_pyfunction!(tune_files, m)?)?;
    m.add_function(wrap_pyfunction!(_version, m)?)?;
    Ok(())
}
