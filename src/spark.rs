//! Training on Apache Spark's ALS, and importing its factors into a normal
//! recsys [`Model`].
//!
//! [`fit`] writes the training side in the export layout
//! ([`crate::data::export`]), runs the PySpark job kept in the repo
//! (`spark/als_job.py`, compiled into the binary and written beside the
//! export) through `spark-submit`, reads the user and item factors Spark
//! wrote, and builds the model as native training does (id maps, each user's
//! training items, popularity from the same interactions). Scoring, serving
//! and retraining then cannot tell the difference, except by the metadata:
//! `params.engine = "spark"` with Spark's version, the job's exact ALS
//! parameters and timings.
//!
//! Parameters map one to one ([`AlsParams`] → `pyspark.ml.recommendation.ALS`):
//! factors → rank, epochs → maxIter, reg → regParam (both scale λ by the
//! row's entry count), alpha → alpha, seed → seed. Spark has no biases and
//! predicts p·q. The imported explicit model says the same in recsys's
//! terms μ + b_u + b_i + p·q with global mean μ (the training mean), item
//! biases −μ and user biases 0: a known pair scores p·q exactly, a known
//! user with an unknown item gets μ, and fold-in of a new user (which solves
//! r − μ − b_i = p·q) fits Spark's uncentred factors. Centring the ratings
//! before Spark was tried and is worse (RMSE 0.958 against 0.936 on ml-100k
//! u1, rank 10). Log confidence (1 + α ln(1 + r/ε)) is passed as values
//! ln(1 + r/ε) to Spark's linear 1 + α·r.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::export;
use crate::error::{Error, Result};
use crate::interactions::Interactions;
use crate::model::{Model, ModelMeta, ModelParts};
use crate::train::als::{AlsParams, Confidence, Solver};

/// The PySpark job, carried by the binary so it needs no install path.
pub const JOB_SCRIPT: &str = include_str!("../spark/als_job.py");
/// The pyspark release the job is tested with (`.ci/run` installs it).
pub const PYSPARK_VERSION: &str = "4.3.0";
/// Why a Spark fit asked to warm-start trains from scratch instead.
pub const NO_WARM_START: &str =
    "Spark's ALS cannot start from a previous model's factors; trained from scratch";

/// How to reach Spark.
///
/// | Name | Default | Purpose |
/// |---|---|---|
/// | master | `local[2]` | `--master` of spark-submit: `local[N]`, `spark://host:7077`, `yarn`, … |
/// | spark_submit | found | the spark-submit program: given, else `$SPARK_HOME/bin`, `PATH`, or the pyspark package's |
/// | work_dir | a temporary folder, removed | where the export, the job and Spark's output go (kept when given) |
/// | partitions | 2 × blocks | Parquet partitions of the export |
/// | submit_args | none | extra spark-submit arguments (`--driver-memory 8g`, `--conf k=v`, …) |
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SparkOptions {
    pub master: String,
    pub spark_submit: Option<PathBuf>,
    pub work_dir: Option<PathBuf>,
    pub partitions: Option<usize>,
    pub submit_args: Vec<String>,
}

impl Default for SparkOptions {
    fn default() -> Self {
        SparkOptions {
            master: "local[2]".into(),
            spark_submit: None,
            work_dir: None,
            partitions: None,
            submit_args: Vec::new(),
        }
    }
}

/// What the job reports (`job.json`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct JobReport {
    pub spark_version: String,
    pub master: String,
    /// The exact arguments of `ALS(...)`.
    pub params: serde_json::Value,
    /// The mean training rating (0 for implicit feedback).
    pub mean: f64,
    pub train_rows: u64,
    pub fit_seconds: f64,
    pub total_seconds: f64,
    /// Spark's own evaluation of the test side, when there was one.
    #[serde(default)]
    pub evaluation: Option<serde_json::Value>,
}

fn spark_error(msg: impl Into<String>) -> Error {
    Error::Other(msg.into())
}

fn install_hint() -> String {
    format!(
        "install Spark with `python3 -m pip install pyspark=={PYSPARK_VERSION}` \
         (it brings spark-submit) or pass --spark-submit PATH"
    )
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// The spark-submit to run: the given one (which must exist), else
/// `$SPARK_HOME/bin/spark-submit`, `spark-submit` on `PATH`, or the one in
/// the pyspark Python package.
pub fn find_spark_submit(given: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = given {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        return Err(spark_error(format!(
            "spark-submit {}: no such file; {}",
            p.display(),
            install_hint()
        )));
    }
    if let Some(home) = std::env::var_os("SPARK_HOME") {
        let p = Path::new(&home).join("bin").join("spark-submit");
        if p.is_file() {
            return Ok(p);
        }
    }
    if let Some(p) = on_path("spark-submit") {
        return Ok(p);
    }
    let out = Command::new("python3")
        .args([
            "-c",
            "import os, pyspark; print(os.path.dirname(pyspark.__file__))",
        ])
        .stderr(Stdio::null())
        .output();
    if let Ok(o) = out {
        let dir = String::from_utf8_lossy(&o.stdout).trim().to_string();
        let p = Path::new(&dir).join("bin").join("spark-submit");
        if o.status.success() && p.is_file() {
            return Ok(p);
        }
    }
    Err(spark_error(format!(
        "spark-submit not found (no SPARK_HOME, not on PATH, no pyspark package); {}",
        install_hint()
    )))
}

/// Checks that a Java runtime is there: Spark needs one (17 or 21).
pub fn check_java() -> Result<PathBuf> {
    let hint = "Spark needs a Java runtime: install a JDK 17 \
                (Debian: `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME";
    if let Some(home) = std::env::var_os("JAVA_HOME") {
        let p = Path::new(&home).join("bin").join("java");
        return if p.is_file() {
            Ok(p)
        } else {
            Err(spark_error(format!(
                "JAVA_HOME={} has no bin/java; {hint}",
                Path::new(&home).display()
            )))
        };
    }
    on_path("java").ok_or_else(|| spark_error(format!("java not found on PATH; {hint}")))
}

/// Row blocks for Spark's ALS: one per core in local mode (what runs
/// fastest on one machine), Spark's default (10) on a cluster.
pub fn blocks_for(master: &str) -> usize {
    let local = master
        .strip_prefix("local[")
        .and_then(|r| r.strip_suffix(']'))
        .map(|n| n.split(',').next().unwrap_or(n));
    match local {
        Some("*") => std::thread::available_parallelism().map_or(2, |n| n.get()),
        Some(n) => n.parse().unwrap_or(10).max(1),
        None if master == "local" => 1,
        None => 10,
    }
}

/// A work folder, removed on drop unless the caller named it.
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Checks what Spark's ALS cannot do; call before loading data.
pub fn check_params(p: &AlsParams) -> Result<()> {
    if !p.scale_reg {
        return Err(Error::param(
            "scale_reg",
            false,
            "Spark's ALS always scales λ by the row's entry count (drop --no-scale-reg)",
        ));
    }
    if p.reg_exponent != 1.0
        || p.reg_unobserved != 0.0
        || p.unobserved_exponent != 0.0
        || p.item_degree_beta != 0.0
        || p.init != crate::train::als::Init::Random
    {
        return Err(Error::param(
            "reg_exponent",
            p.reg_exponent,
            "Spark's ALS has none of the objective options (reg_exponent, reg_unobserved, \
             unobserved_exponent, item_degree_beta, init): train natively",
        ));
    }
    if p.patience.is_some() {
        return Err(Error::param(
            "patience",
            format!("{:?}", p.patience),
            "early stopping is not available with the Spark engine",
        ));
    }
    Ok(())
}

/// Trains ALS on Spark and returns the imported model; see the module docs.
/// `test`, when given, is evaluated by the job (Spark's own figures land in
/// the metadata as `params.spark.evaluation`); `sources` are recorded.
pub fn fit(
    p: &AlsParams,
    opts: &SparkOptions,
    train: &Interactions,
    test: Option<&Interactions>,
    eval_k: usize,
) -> Result<Model> {
    check_params(p)?;
    if train.is_empty() {
        return Err(Error::Other("no training data".into()));
    }
    let submit = find_spark_submit(opts.spark_submit.as_deref())?;
    check_java()?;
    let t0 = Instant::now();
    let work = match &opts.work_dir {
        Some(d) => WorkDir {
            path: d.clone(),
            keep: true,
        },
        None => WorkDir {
            path: std::env::temp_dir().join(format!(
                "recsys-spark-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            )),
            keep: false,
        },
    };
    std::fs::create_dir_all(&work.path).map_err(|e| Error::io(&work.path, e))?;
    let blocks = blocks_for(&opts.master);
    let partitions = opts.partitions.unwrap_or(2 * blocks);

    // Log confidence becomes values for Spark's linear confidence.
    let transformed;
    let data = if p.implicit && p.confidence == Confidence::Log {
        let mut x = train.clone();
        x.values
            .iter_mut()
            .for_each(|v| *v = (1.0 + *v / p.eps).ln().max(0.0));
        transformed = x;
        &transformed
    } else {
        train
    };
    let data_dir = work.path.join("data");
    let manifest = export::write(data, &data_dir, partitions, p.implicit, &[])?;
    let test_dir = work.path.join("test");
    if let Some(t) = test {
        export::write_test(t, &train.user_ids, &train.item_ids, &test_dir)?;
    }
    let script = work.path.join("als_job.py");
    std::fs::write(&script, JOB_SCRIPT).map_err(|e| Error::io(&script, e))?;
    let out_dir = work.path.join("out");
    let log = work.path.join("spark.log");

    let mut cmd = Command::new(&submit);
    cmd.arg("--master")
        .arg(&opts.master)
        .args(["--conf", "spark.ui.enabled=false"])
        .args(["--conf", "spark.ui.showConsoleProgress=false"]);
    if opts.master.starts_with("local") {
        // One JVM does all the work in local mode; the default 1g is too small.
        if !opts.submit_args.iter().any(|a| a == "--driver-memory") {
            cmd.args(["--driver-memory", "4g"]);
        }
        // ALS's deep task closures need more than the default thread stack.
        cmd.args(["--conf", "spark.driver.extraJavaOptions=-Xss16m"]);
        if std::env::var_os("SPARK_LOCAL_IP").is_none() {
            cmd.env("SPARK_LOCAL_IP", "127.0.0.1");
        }
    }
    cmd.args(&opts.submit_args)
        .arg(&script)
        .arg("--data")
        .arg(&data_dir)
        .arg("--out")
        .arg(&out_dir)
        .args(["--rank", &p.factors.to_string()])
        .args(["--max-iter", &p.epochs.to_string()])
        .args(["--reg", &p.reg.to_string()])
        .args(["--alpha", &p.alpha.to_string()])
        .args(["--seed", &(p.seed as i64).to_string()])
        .args(["--blocks", &blocks.to_string()])
        .args(["--eval-k", &eval_k.to_string()]);
    if p.implicit {
        cmd.arg("--implicit");
    } else {
        cmd.args(["--rating-min", &manifest.rating_min.to_string()])
            .args(["--rating-max", &manifest.rating_max.to_string()]);
    }
    if test.is_some() {
        cmd.arg("--test").arg(&test_dir);
    }
    let log_file = std::fs::File::create(&log).map_err(|e| Error::io(&log, e))?;
    let log_err = log_file.try_clone().map_err(|e| Error::io(&log, e))?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        .status()
        .map_err(|e| {
            spark_error(format!(
                "running {}: {e}; {}",
                submit.display(),
                install_hint()
            ))
        })?;
    if !status.success() {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        // The cause is usually the first exception; the tail says where it stopped.
        let first: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("Error") || l.contains("Exception"))
            .take(5)
            .collect();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(spark_error(format!(
            "spark-submit ({}) failed with {status}; its first errors:\n{}\n…\nthe last lines of its output:\n{}",
            submit.display(),
            first.join("\n"),
            tail.join("\n")
        )));
    }
    let job = read_job(&out_dir)?;
    let extra = serde_json::json!({
        "wall_seconds": t0.elapsed().as_secs_f64(),
        "partitions": partitions,
    });
    let range = (manifest.rating_min, manifest.rating_max);
    build_model(p, &job, train, &out_dir, range, extra)
}

/// Reads `OUT_DIR/job.json`, the job's report.
pub fn read_job(out_dir: &Path) -> Result<JobReport> {
    let job_path = out_dir.join("job.json");
    std::fs::read_to_string(&job_path)
        .map_err(|e| Error::io(&job_path, e))
        .and_then(|t| {
            serde_json::from_str(&t).map_err(|e| Error::Format {
                path: job_path.clone(),
                message: e.to_string(),
            })
        })
}

/// Imports a job that ran elsewhere (e.g. submitted by hand on a cluster):
/// the training data and id maps from the export it read, the factors and
/// parameters from its output folder.
pub fn import(export_dir: &Path, out_dir: &Path) -> Result<Model> {
    let (train, manifest) = export::read(export_dir)?;
    let job = read_job(out_dir)?;
    let num = |key: &str| job.params.get(key).and_then(|v| v.as_f64());
    let missing = |key: &str| Error::Format {
        path: out_dir.join("job.json"),
        message: format!("params.{key} is missing"),
    };
    let implicit = job
        .params
        .get("implicitPrefs")
        .and_then(|v| v.as_bool())
        .ok_or_else(|| missing("implicitPrefs"))?;
    let p = AlsParams {
        factors: num("rank").ok_or_else(|| missing("rank"))? as usize,
        epochs: num("maxIter").ok_or_else(|| missing("maxIter"))? as usize,
        reg: num("regParam").ok_or_else(|| missing("regParam"))? as f32,
        alpha: num("alpha").unwrap_or(1.0) as f32,
        implicit,
        // Spark's explicit ALS solves exactly (normal equations per row).
        solver: if implicit {
            Solver::Cg
        } else {
            Solver::Cholesky
        },
        seed: num("seed").unwrap_or(0.0) as u64,
        ..Default::default()
    };
    let extra = serde_json::json!({
        "imported_from": out_dir.display().to_string(),
        "partitions": manifest.partitions,
    });
    let range = (manifest.rating_min, manifest.rating_max);
    build_model(&p, &job, &train, out_dir, range, extra)
}

/// The model from the job's factors and report; `extra` joins `params.spark`.
fn build_model(
    p: &AlsParams,
    job: &JobReport,
    train: &Interactions,
    out_dir: &Path,
    rating_range: (f32, f32),
    extra: serde_json::Value,
) -> Result<Model> {
    let k = p.factors;
    let (user_factors, _) = read_factors(&out_dir.join("user_factors"), train.n_users(), k)?;
    let (item_factors, _) = read_factors(&out_dir.join("item_factors"), train.n_items(), k)?;
    let mut spark = serde_json::json!({
        "version": job.spark_version,
        "master": job.master,
        "als": job.params,
        "mean": job.mean,
        "fit_seconds": job.fit_seconds,
        "job_seconds": job.total_seconds,
        "evaluation": job.evaluation,
    });
    if let (Some(s), serde_json::Value::Object(e)) = (spark.as_object_mut(), extra) {
        s.extend(e);
    }
    let mut params = serde_json::to_value(p).unwrap_or_default();
    if let serde_json::Value::Object(o) = &mut params {
        o.insert("engine".into(), "spark".into());
        o.insert("spark".into(), spark);
    }
    let algo = if p.implicit { "als-implicit" } else { "als" };
    let range = if p.implicit { (0.0, 0.0) } else { rating_range };
    let meta = ModelMeta::new(algo, p.implicit, k, params, Vec::new(), p.epochs, range);
    let mean = job.mean as f32;
    let mut model = Model::from_parts(ModelParts {
        user_factors,
        item_factors,
        user_bias: vec![0.0; train.n_users()],
        // μ + b_i = 0, so a known pair scores p·q (see the module docs).
        item_bias: vec![-mean; train.n_items()],
        global_mean: mean,
        train,
        meta,
    });
    model
        .meta_mut()
        .metrics
        .insert("spark_fit_seconds".into(), job.fit_seconds);
    Ok(model)
}

/// Reads the factors Spark wrote (a folder of Parquet files with `id`
/// (Int32) and `features` (list of Float32)) into a dense row-major
/// `n × k` array; rows Spark did not write stay zero. Returns the array and
/// the number of rows found. A corrupt file is an error, never a panic.
pub fn read_factors(dir: &Path, n: usize, k: usize) -> Result<(Vec<f32>, usize)> {
    crate::data::guard_reader(dir, || read_factors_unguarded(dir, n, k))
}

fn read_factors_unguarded(dir: &Path, n: usize, k: usize) -> Result<(Vec<f32>, usize)> {
    let pattern = dir.join("*.parquet");
    let pl = |e: PolarsError| Error::Polars {
        path: dir.to_path_buf(),
        source: e,
    };
    let df = LazyFrame::scan_parquet(
        pattern.to_string_lossy().as_ref().into(),
        ScanArgsParquet::default(),
    )
    .and_then(|lf| {
        lf.select([col("id").cast(DataType::Int64), col("features")])
            .collect()
    })
    .map_err(pl)?;
    let bad = |message: String| Error::Format {
        path: dir.to_path_buf(),
        message,
    };
    let ids: Vec<i64> = df
        .column("id")
        .and_then(|c| Ok(c.i64()?.into_no_null_iter().collect()))
        .map_err(pl)?;
    let mut values: Vec<f32> = Vec::with_capacity(ids.len() * k);
    let feats = df
        .column("features")
        .and_then(|c| c.list().cloned())
        .map_err(pl)?;
    for v in feats.series_iter() {
        let v = v.ok_or_else(|| bad("a factor vector is null".into()))?;
        let v = v.cast(&DataType::Float32).map_err(pl)?;
        if v.len() != k {
            return Err(bad(format!(
                "a factor vector has length {}, expected {k}",
                v.len()
            )));
        }
        values.extend(v.f32().map_err(pl)?.iter().map(|x| x.unwrap_or(f32::NAN)));
    }
    let mut out = vec![0f32; n * k];
    let mut seen = vec![false; n];
    for (row, &id) in ids.iter().enumerate() {
        let i = usize::try_from(id)
            .ok()
            .filter(|&i| i < n)
            .ok_or_else(|| bad(format!("id {id} outside 0..{n}")))?;
        if std::mem::replace(&mut seen[i], true) {
            return Err(bad(format!("id {id} written twice")));
        }
        let v = &values[row * k..(row + 1) * k];
        if v.iter().any(|x| !x.is_finite()) {
            return Err(bad(format!("id {id} has a non-finite factor")));
        }
        out[i * k..(i + 1) * k].copy_from_slice(v);
    }
    Ok((out, ids.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_follow_the_master() {
        assert_eq!(blocks_for("local[2]"), 2);
        assert_eq!(blocks_for("local[4,3]"), 4);
        assert_eq!(blocks_for("local"), 1);
        assert_eq!(blocks_for("yarn"), 10);
        assert_eq!(blocks_for("spark://h:7077"), 10);
        assert!(blocks_for("local[*]") >= 1);
    }

    #[test]
    fn a_missing_spark_submit_says_what_to_install() {
        let e = find_spark_submit(Some(Path::new("/nonexistent/spark-submit")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("pip install pyspark==4.3.0"), "{e}");
    }

    #[test]
    fn factors_are_read_by_id_and_checked() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("f");
        std::fs::create_dir(&dir).unwrap();
        let write = |name: &str, ids: Vec<i32>, rows: Vec<Vec<f32>>| {
            let feats: Vec<Series> = rows
                .into_iter()
                .map(|r| Series::new("".into(), r))
                .collect();
            let mut df = DataFrame::new_infer_height(vec![
                Column::new("id".into(), ids),
                Column::new("features".into(), feats),
            ])
            .unwrap();
            let f = std::fs::File::create(dir.join(name)).unwrap();
            ParquetWriter::new(f).finish(&mut df).unwrap();
        };
        write(
            "a.parquet",
            vec![2, 0],
            vec![vec![1.0, 2.0], vec![3.0, 4.0]],
        );
        let (f, n) = read_factors(&dir, 3, 2).unwrap();
        assert_eq!(n, 2);
        assert_eq!(f, vec![3.0, 4.0, 0.0, 0.0, 1.0, 2.0]);
        assert!(read_factors(&dir, 3, 3).is_err(), "wrong k");
        assert!(read_factors(&dir, 2, 2).is_err(), "id out of range");
        write("b.parquet", vec![0], vec![vec![5.0, 6.0]]);
        assert!(read_factors(&dir, 3, 2).is_err(), "id twice");
    }
}
