//! The raw command line: clap definitions only. [`super::config`] turns
//! these into the library's checked types before any file is opened.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use anyhow::Result;

use super::{config, DEFAULT_MODEL};
use crate::data::split::SplitSpec;
use crate::data::time::TimeFormat;
use crate::data::{Aggregate, Format, LoadOptions, TextEncoding};

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The export the job trained on (`recsys export`).
    #[arg(long)]
    pub export: PathBuf,
    /// The job's output folder (user_factors/, item_factors/, job.json).
    #[arg(long)]
    pub spark_out: PathBuf,
    /// Model file to write.
    #[arg(long, short = 'o', default_value = DEFAULT_MODEL)]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Interaction files, folders or globs (repeatable).
    #[arg(long, short = 'd', required = true)]
    pub data: Vec<String>,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Output folder (replaced whole when it exists).
    #[arg(long, short = 'o')]
    pub out: PathBuf,
    /// Parquet partitions (rows go to partition user % N).
    #[arg(long, default_value_t = 8)]
    pub partitions: usize,
}

#[derive(Clone, Copy, Debug, Default, ValueEnum, PartialEq)]
pub enum EngineArg {
    /// recsys's own trainers.
    #[default]
    Native,
    /// Apache Spark's ALS through spark-submit, imported into the model file.
    Spark,
}

/// Where `train` and `retrain` run.
#[derive(Args, Debug, Clone)]
pub struct EngineArgs {
    /// native, or spark (ALS on Apache Spark; needs spark-submit and Java).
    #[arg(long, value_enum, default_value = "native")]
    pub engine: EngineArg,
    /// spark-submit --master: local[N], spark://host:port, yarn, …
    #[arg(long, default_value = "local[2]")]
    pub spark_master: String,
    /// The spark-submit program (default: $SPARK_HOME/bin, PATH, or pyspark's).
    #[arg(long)]
    pub spark_submit: Option<PathBuf>,
    /// Keep the export, the job and Spark's output in this folder.
    #[arg(long)]
    pub spark_dir: Option<PathBuf>,
    /// Extra spark-submit argument, e.g. --spark-arg=--driver-memory=8g (repeatable).
    #[arg(long, allow_hyphen_values = true)]
    pub spark_arg: Vec<String>,
}

impl EngineArgs {
    pub fn spark_options(&self) -> crate::spark::SparkOptions {
        crate::spark::SparkOptions {
            master: self.spark_master.clone(),
            spark_submit: self.spark_submit.clone(),
            work_dir: self.spark_dir.clone(),
            partitions: None,
            submit_args: self.spark_arg.clone(),
        }
    }

    /// [`Self::spark_options`] with spark-submit found and Java checked, so
    /// a machine without Spark fails before any data is read.
    pub fn spark_options_checked(&self) -> Result<crate::spark::SparkOptions> {
        let mut o = self.spark_options();
        o.spark_submit = Some(crate::spark::find_spark_submit(o.spark_submit.as_deref())?);
        crate::spark::check_java()?;
        Ok(o)
    }
}

impl Default for EngineArgs {
    fn default() -> Self {
        EngineArgs {
            engine: EngineArg::Native,
            spark_master: "local[2]".into(),
            spark_submit: None,
            spark_dir: None,
            spark_arg: Vec::new(),
        }
    }
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The model file (or a registry pointer such as models/current).
    pub model: PathBuf,
    /// Held-out interactions: metrics next to the popularity baseline.
    #[arg(long)]
    pub test: Vec<String>,
    /// Item titles: MovieLens u.item, movies.dat or movies.csv.
    #[arg(long)]
    pub titles: Option<PathBuf>,
    /// The HTML file to write.
    #[arg(long, short = 'o', default_value = "report.html")]
    pub out: PathBuf,
    /// Length of the recommendation lists shown and counted for coverage.
    #[arg(short = 'n', long = "n", default_value_t = 10)]
    pub n: usize,
    /// Cut-offs for the ranking metrics.
    #[arg(long, value_delimiter = ',', default_value = "10")]
    pub k: Vec<usize>,
    /// Explicit models: held-out rows with value ≥ T are the positives.
    #[arg(long)]
    pub positive_threshold: Option<f32>,
    /// How many users to show (a seeded sample).
    #[arg(long, default_value_t = 6)]
    pub sample_users: usize,
    /// Show these users instead of a sample (repeatable).
    #[arg(long)]
    pub user: Vec<String>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(Args, Debug)]
pub struct RetrainArgs {
    /// Interaction files, folders or globs (repeatable); new files that
    /// appear beside the old ones are read by the next run.
    #[arg(long, short = 'd', required = true)]
    pub data: Vec<String>,
    /// The first model of an empty registry (and `--cold` runs) trains with
    /// the parameters `recsys tune` wrote instead of the algorithm flags.
    #[arg(long)]
    pub params: Option<PathBuf>,
    /// The registry folder.
    #[arg(long, default_value = "models")]
    pub models: PathBuf,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Held-out files both models are evaluated on (repeatable). Default: a
    /// seeded slice of the newest data, kept out of training.
    #[arg(long)]
    pub holdout: Vec<String>,
    /// Without --holdout: the share of entries held out, drawn from the
    /// newest twice as many (by timestamp, else file and row order).
    #[arg(long, default_value_t = 0.05)]
    pub holdout_fraction: f64,
    /// Promotion condition, e.g. "rmse <= 1.005 * current" (ratings, the
    /// default) or "ndcg@10 >= 0.995 * current" (implicit, the default);
    /// conditions join with `and`.
    #[arg(long)]
    pub gate: Option<String>,
    /// Epochs of this run (default: warm runs take a quarter of SGD/BPR's
    /// epochs and a fifth of ALS's sweeps; cold runs the full schedule).
    #[arg(long, short = 'e')]
    pub epochs: Option<usize>,
    /// Train from scratch instead of warm-starting from the current model.
    #[arg(long)]
    pub cold: bool,
    /// Retrain even if the data did not change.
    #[arg(long)]
    pub force: bool,
    /// Model files kept in the registry (the current one and its rollback
    /// target are never deleted).
    #[arg(long, default_value_t = 10)]
    pub keep: usize,
    /// Run once and exit (the default; for cron, systemd timers, Kubernetes CronJobs).
    #[arg(long, conflicts_with_all = ["every", "cron"])]
    pub once: bool,
    /// Keep running and retrain at this interval (90s, 30m, 6h, 1d).
    #[arg(long, conflicts_with = "cron")]
    pub every: Option<String>,
    /// Keep running and retrain at the times of this 5-field cron
    /// expression (UTC), e.g. "0 3 * * *".
    #[arg(long)]
    pub cron: Option<String>,
    /// With --cron: also run at start instead of waiting for the first tick.
    #[arg(long)]
    pub run_now: bool,
    /// Keep only entries with value ≥ T, as positives (implicit models).
    #[arg(long)]
    pub positive_threshold: Option<f32>,
    /// The algorithm of the first model (an empty registry), or of every
    /// model with --cold; later runs reuse the current model's algorithm and
    /// parameters.
    #[command(flatten)]
    pub algo: AlgoArgs,
    /// Print each run's history record as JSON.
    #[arg(long)]
    pub json: bool,
    /// Only the decision line per run.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// --engine spark trains every candidate on Spark (ALS, from scratch);
    /// a current model trained on Spark retrains there without it.
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Args, Debug)]
pub struct ModelsArgs {
    /// The registry folder.
    #[arg(long, global = true, default_value = "models")]
    pub models: PathBuf,
    #[command(subcommand)]
    pub command: ModelsCommand,
}

#[derive(Subcommand, Debug)]
pub enum ModelsCommand {
    /// The models in the registry, oldest first; `*` marks the current one.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Make a model current (it is loaded and checked first).
    Promote { id: String },
    /// Make the model current again that was current before the current one.
    Rollback,
    /// The last runs and promotions from history.jsonl.
    History {
        /// How many records, newest last.
        #[arg(long, short = 'n', default_value_t = 20)]
        n: usize,
        #[arg(long)]
        json: bool,
    },
    /// Delete model files beyond the newest N (never the current one or its
    /// rollback target).
    Gc {
        #[arg(long, default_value_t = 10)]
        keep: usize,
    },
}

/// A retrain whose candidate the gate refused: `main` exits with 3, so a
/// cron job or CI step can tell it from success (0) and errors (2).

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// A model file, or a registry pointer such as models/current (watched).
    #[arg(long, short = 'm', default_value = "models/current")]
    pub model: PathBuf,
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// Bearer token for the admin routes (PUT /v1/availability), at least
    /// 16 characters; without it they are off. A flag's value shows in the
    /// process list: prefer the variable or --admin-token-file.
    #[arg(long, env = "RECSYS_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Read the admin token from this file (its first line).
    #[arg(long, conflicts_with = "admin_token")]
    pub admin_token_file: Option<PathBuf>,
    /// Print the service's OpenAPI 3 document (JSON) and exit.
    #[arg(long)]
    pub print_openapi: bool,
    /// Requests in flight at most; beyond, 503 with Retry-After.
    #[arg(long, default_value_t = 4096)]
    pub max_concurrency: usize,
    /// Per-request timeout in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub timeout_ms: u64,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub body_limit: usize,
    /// How often to check the model path for a new model, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub watch_ms: u64,
    /// Unknown users get 404 instead of popular items.
    #[arg(long)]
    pub strict: bool,
    /// Worker threads (default: all cores).
    #[arg(long, short = 't')]
    pub threads: Option<usize>,
    /// Item titles (MovieLens u.item, movies.dat or movies.csv): answers
    /// then carry a `title` per item, and the console at / shows them.
    #[arg(long)]
    pub titles: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct LoadtestArgs {
    /// The service (loopback only).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: std::net::SocketAddr,
    /// Draw user ids from this model's users.
    #[arg(long, short = 'm', default_value = "models/current")]
    pub model: PathBuf,
    /// Concurrent connections.
    #[arg(long, short = 'c', default_value_t = 100)]
    pub connections: usize,
    /// Seconds to run.
    #[arg(long, short = 'd', default_value_t = 10.0)]
    pub duration: f64,
    /// Open loop at this many requests/s (default: closed loop, as fast as it can).
    #[arg(long)]
    pub rate: Option<f64>,
    #[arg(long, default_value_t = 10_000_000)]
    pub max_requests: u64,
    /// Recommendations per request.
    #[arg(short = 'n', long = "n", default_value_t = 10)]
    pub n: usize,
    /// Rewrite this pointer file (same content) every --reload-every seconds.
    #[arg(long, requires = "reload_every")]
    pub reload_path: Option<PathBuf>,
    #[arg(long, requires = "reload_path")]
    pub reload_every: Option<f64>,
    /// Generator threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Interaction files, folders or globs (repeatable).
    #[arg(long, short = 'd', required = true)]
    pub data: Vec<String>,
    #[command(flatten)]
    pub load: LoadArgs,
    #[arg(long, default_value_t = 0)]
    pub min_user_count: u32,
    #[arg(long, default_value_t = 0)]
    pub min_item_count: u32,
    /// Load as `train --implicit` would: repeated rows add up (unless
    /// --aggregate says otherwise) and non-positive sums are dropped.
    #[arg(long)]
    pub implicit: bool,
}

#[derive(Args, Debug, Clone, Default)]
pub struct LoadArgs {
    /// Input format of the data files, instead of detecting it per file
    /// (ml100k, ml1m, csv, tsv, parquet).
    #[arg(long = "input-format", value_parser = parse_format)]
    pub input_format: Option<Format>,
    /// Column holding the user id (files with a header, Parquet).
    #[arg(long)]
    pub user_col: Option<String>,
    #[arg(long)]
    pub item_col: Option<String>,
    /// Column holding the value: a rating, or a count, quantity or weight
    /// for implicit feedback (alias --value-col).
    #[arg(long, visible_alias = "value-col")]
    pub rating_col: Option<String>,
    /// Column holding the time: integers (unix s or ms) or date-times.
    #[arg(long)]
    pub time_col: Option<String>,
    /// How the time column's date-times read: a strftime pattern such as
    /// "%m/%d/%Y %H:%M", `integer` or `rfc3339`. Default: detected.
    #[arg(long, value_parser = parse_time_format)]
    pub time_format: Option<TimeFormat>,
    /// Text encoding of delimited files: auto (UTF-8, or windows-1252 for a
    /// file that is not UTF-8), or a label such as utf-8, latin-1,
    /// windows-1252, iso-8859-15 (ASCII-compatible encodings).
    #[arg(long, default_value = "auto", value_parser = parse_encoding)]
    pub encoding: TextEncoding,
    /// How repeated (user, item) rows combine: sum, count, max or last.
    /// [default: last for ratings, sum for implicit values]
    #[arg(long, value_parser = parse_aggregate)]
    pub aggregate: Option<Aggregate>,
    /// Skip malformed rows (and say how many) instead of stopping at the first.
    #[arg(long)]
    pub skip_bad_rows: bool,
}

fn parse_time_format(s: &str) -> Result<TimeFormat, String> {
    TimeFormat::from_user(s)
}

fn parse_encoding(s: &str) -> Result<TextEncoding, String> {
    s.parse()
}

fn parse_aggregate(s: &str) -> Result<Aggregate, String> {
    s.parse()
}

pub(super) fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

impl LoadArgs {
    pub fn options(&self) -> LoadOptions {
        LoadOptions {
            format: self.input_format,
            user_col: self.user_col.clone(),
            item_col: self.item_col.clone(),
            rating_col: self.rating_col.clone(),
            time_col: self.time_col.clone(),
            skip_bad_rows: self.skip_bad_rows,
            min_user_count: 0,
            min_item_count: 0,
            encoding: self.encoding,
            aggregate: self.aggregate,
            drop_non_positive: false,
            time_format: self.time_format.clone(),
        }
    }
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Interaction files, folders or globs (repeatable). Default: the bundled data.
    #[arg(long, short = 'd')]
    pub data: Vec<String>,
    /// Train with the parameters `recsys tune` wrote (its best.json) instead
    /// of the algorithm flags; -t sets the threads.
    #[arg(long)]
    pub params: Option<PathBuf>,
    /// Input format, instead of detecting it per file (ml100k, ml1m, csv, tsv, parquet).
    #[arg(long, value_parser = parse_format, conflicts_with = "input_format")]
    pub format: Option<Format>,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Model file to write.
    #[arg(long, short = 'o', default_value = DEFAULT_MODEL)]
    pub out: PathBuf,
    /// A test file scored at the end (e.g. u1.test).
    #[arg(long, conflicts_with = "split")]
    pub test: Vec<String>,
    /// Hold out a test side: random:F, user:F (per user) or time:F (newest).
    #[arg(long)]
    pub split: Option<SplitSpec>,
    /// Fraction of the training side kept aside for per-epoch validation.
    #[arg(long)]
    pub validation: Option<f64>,
    /// Stop after this many epochs without a better validation metric
    /// (RMSE for ratings, nDCG@10 for implicit feedback).
    #[arg(long)]
    pub patience: Option<usize>,
    /// Keep only entries with value ≥ T, as positives of value 1 (train and
    /// test sides); implies --implicit unless --algo sgd.
    #[arg(long)]
    pub positive_threshold: Option<f32>,
    /// Ratings: the test side's relevant items for the ranking metrics are
    /// those rated ≥ T (default: every held-out item).
    #[arg(long)]
    pub relevant_min: Option<f32>,
    /// Cut-offs for the ranking metrics printed at the end.
    #[arg(long, value_delimiter = ',', default_value = "10")]
    pub eval_k: Vec<usize>,
    #[arg(long, default_value_t = 0)]
    pub min_user_count: u32,
    #[arg(long, default_value_t = 0)]
    pub min_item_count: u32,
    #[arg(long, short = 'e', help = config::default_help("epochs"))]
    pub epochs: Option<usize>,
    #[command(flatten)]
    pub algo: AlgoArgs,
    /// No progress bar or per-epoch lines.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Print the final summary as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// The algorithm and its parameters, shared by `train` and `retrain`. A flag
/// left out keeps the library's default (printed in the help); a flag of
/// another algorithm than the one chosen is an error.
#[derive(Args, Debug, Clone)]
pub struct AlgoArgs {
    /// sgd (biased MF), als (implicit ALS with --implicit, else weighted-λ
    /// ALS on ratings) or bpr: one pure algorithm for predictions and lists.
    /// Default: on ratings, sgd for predictions plus an implicit-ALS list
    /// head for top-N lists (see --list-head); als with --implicit.
    #[arg(long, value_enum)]
    pub algo: Option<Algo>,
    /// On ratings: `als` adds a list head, implicit ALS on the same ratings
    /// as confidences, which answers every top-N list while the rating model
    /// answers predictions; `none` leaves one model for both. [default: als
    /// on ratings without --algo, else none]
    #[arg(long, value_enum)]
    pub list_head: Option<ListHeadArg>,
    /// Treat values as implicit feedback (counts, plays, clicks).
    #[arg(long)]
    pub implicit: bool,
    #[arg(long, short = 'k', help = config::default_help("factors"))]
    pub factors: Option<usize>,
    #[arg(long, help = config::default_help("learning_rate"))]
    pub learning_rate: Option<f32>,
    #[arg(long, help = config::default_help("lr_decay"))]
    pub lr_decay: Option<f32>,
    #[arg(long, help = config::default_help("reg"))]
    pub reg: Option<f32>,
    #[arg(long, help = config::default_help("reg_bias"))]
    pub reg_bias: Option<f32>,
    #[arg(long, help = config::default_help("init_std"))]
    pub init_std: Option<f32>,
    #[arg(long, help = config::default_help("alpha"))]
    pub alpha: Option<f32>,
    #[arg(long, value_enum, help = config::default_help("confidence"))]
    pub confidence: Option<ConfidenceArg>,
    #[arg(long, help = config::default_help("eps"))]
    pub eps: Option<f32>,
    #[arg(long, value_enum, help = config::default_help("solver"))]
    pub solver: Option<SolverArg>,
    #[arg(long, help = config::default_help("cg_steps"))]
    pub cg_steps: Option<usize>,
    /// ALS: do not scale λ by each row's entry count.
    #[arg(long)]
    pub no_scale_reg: bool,
    /// SGD: no μ, b_u, b_i; the factors model the raw values.
    #[arg(long)]
    pub no_biases: bool,
    /// SGD: per-row AdaGrad steps (--learning-rate is then AdaGrad's η).
    #[arg(long)]
    pub adagrad: bool,
    #[arg(long, help = config::default_help("lead_factors"))]
    pub lead_factors: Option<usize>,
    /// RNG seed (initial factors, shuffles, splits).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long, short = 't')]
    pub threads: Option<usize>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
pub enum Algo {
    Sgd,
    Als,
    Bpr,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
pub enum ListHeadArg {
    Als,
    None,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
pub enum ConfidenceArg {
    Linear,
    Log,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
pub enum SolverArg {
    Cg,
    Cholesky,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
pub enum OutFormat {
    Table,
    Json,
    Csv,
}

#[derive(Args, Debug)]
pub struct RecommendArgs {
    #[arg(long, short = 'm', default_value = DEFAULT_MODEL)]
    pub model: PathBuf,
    /// External user id.
    #[arg(long, short = 'u', required_unless_present_any = ["items", "items_file", "all"], conflicts_with = "all")]
    pub user: Option<String>,
    /// A new user given by items (fold-in), `50,172:4.5,133` (ID or ID:VALUE).
    #[arg(long, conflicts_with_all = ["user", "all", "items_file"])]
    pub items: Option<String>,
    /// A new user given by a file of items: ID or ID:VALUE, one per line or
    /// comma-separated.
    #[arg(long, conflicts_with_all = ["user", "all"])]
    pub items_file: Option<PathBuf>,
    /// Every user of the model (recommend-all), written to --out.
    #[arg(long)]
    pub all: bool,
    /// With --all: output file, .csv or .parquet (default: CSV on stdout).
    #[arg(long, short = 'o', requires = "all")]
    pub out: Option<PathBuf>,
    #[arg(short = 'n', long = "n", default_value_t = 10)]
    pub n: usize,
    #[command(flatten)]
    pub filters: FilterArgs,
    /// Also exclude the items this user has in these interaction files.
    #[arg(long)]
    pub exclude_seen: Vec<String>,
    /// Do not exclude the user's training items (excluded by default).
    #[arg(long)]
    pub include_seen: bool,
    /// Users with fewer training items than this get the popularity fallback.
    #[arg(long, default_value_t = 0)]
    pub min_history: usize,
    /// Cold-start list: recent (newest 10% of the training data, when it had
    /// timestamps) or overall popularity.
    #[arg(long, value_enum, default_value_t = FallbackArg::Recent)]
    pub fallback: FallbackArg,
    /// List, for each recommended item, the user's items most like it.
    #[arg(long)]
    pub explain: bool,
    /// `ivf`: use the approximate index beside the model (`recsys index`).
    #[arg(long, value_enum)]
    pub index: Option<IndexKind>,
    /// With --index ivf: clusters to score.
    #[arg(long, default_value_t = 8)]
    pub probe: usize,
    /// Item titles: MovieLens u.item, movies.dat or movies.csv.
    #[arg(long)]
    pub titles: Option<PathBuf>,
    /// An unknown user is an error instead of getting popular items.
    #[arg(long)]
    pub strict: bool,
    #[arg(long, value_enum, default_value_t = OutFormat::Table)]
    pub format: OutFormat,
    #[command(flatten)]
    pub load: LoadArgs,
}

/// Item filters shared by `recommend` and `similar`.
#[derive(Args, Debug, Clone)]
pub struct FilterArgs {
    /// Never return the item ids in this file (one per line or comma-separated).
    #[arg(long)]
    pub exclude: Vec<PathBuf>,
    /// Return only item ids from this file (an allow list).
    #[arg(long)]
    pub only: Vec<PathBuf>,
    /// The items in stock: others are never returned.
    #[arg(long)]
    pub available: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
pub enum IndexKind {
    Ivf,
}

#[derive(Args, Debug)]
pub struct IndexArgs {
    #[arg(long, short = 'm', default_value = DEFAULT_MODEL)]
    pub model: PathBuf,
    /// Lists (k-means clusters); default about 4·√items.
    #[arg(long)]
    pub clusters: Option<usize>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq)]
pub enum FallbackArg {
    Recent,
    Overall,
}

#[derive(Args, Debug)]
pub struct SimilarArgs {
    #[arg(long, short = 'm', default_value = DEFAULT_MODEL)]
    pub model: PathBuf,
    /// External item id.
    #[arg(long, short = 'i')]
    pub item: String,
    #[arg(short = 'n', long = "n", default_value_t = 10)]
    pub n: usize,
    #[command(flatten)]
    pub filters: FilterArgs,
    /// Item titles: MovieLens u.item, movies.dat or movies.csv.
    #[arg(long)]
    pub titles: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = OutFormat::Table)]
    pub format: OutFormat,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[arg(long, short = 'm', default_value = DEFAULT_MODEL)]
    pub model: PathBuf,
    /// Held-out interaction files (repeatable).
    #[arg(long, required = true)]
    pub test: Vec<String>,
    /// Output: table or json.
    #[arg(long, value_enum, default_value_t = OutFormat::Table)]
    pub format: OutFormat,
    /// Cut-offs for the ranking metrics.
    #[arg(long, value_delimiter = ',', default_value = "10")]
    pub k: Vec<usize>,
    /// Only held-out rows with value ≥ T are relevant for the ranking
    /// metrics (default: every held-out item).
    #[arg(long = "relevant-min", visible_alias = "positive-threshold")]
    pub positive_threshold: Option<f32>,
    #[command(flatten)]
    pub load: LoadArgs,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    pub model: PathBuf,
    /// Print the full metadata as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct SynthArgs {
    #[arg(long, default_value_t = 1000)]
    pub users: usize,
    #[arg(long, default_value_t = 800)]
    pub items: usize,
    #[arg(long, default_value_t = 50_000)]
    pub ratings: usize,
    #[arg(long, default_value_t = 8)]
    pub rank: usize,
    #[arg(long, default_value_t = 0.9)]
    pub popularity_exponent: f64,
    #[arg(long, default_value_t = 0.6)]
    pub noise: f64,
    /// Ids like u12 / i34 instead of integers.
    #[arg(long)]
    pub string_ids: bool,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output file: .csv or .parquet.
    #[arg(long, short = 'o')]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct TuneArgs {
    /// Interaction files, folders or globs (repeatable). Default: the bundled data.
    #[arg(long, short = 'd')]
    pub data: Vec<String>,
    #[command(flatten)]
    pub load: LoadArgs,
    #[arg(long, default_value_t = 0)]
    pub min_user_count: u32,
    #[arg(long, default_value_t = 0)]
    pub min_item_count: u32,
    /// Treat values as implicit feedback (counts, plays, clicks).
    #[arg(long)]
    pub implicit: bool,
    /// Keep only entries with value ≥ T, as positives (implies --implicit).
    #[arg(long)]
    pub positive_threshold: Option<f32>,
    /// What to search: auto (implicit ALS for implicit feedback, sgd for
    /// ratings), sgd, als, bpr, or a list such as als,bpr.
    #[arg(long, default_value = "auto")]
    pub algo: String,
    /// The validation metric: rmse, mae, or precision|recall|ndcg|map@k.
    /// [default: rmse for ratings, ndcg@10 for implicit feedback]
    #[arg(long, value_parser = parse_metric)]
    pub metric: Option<crate::engine::tune::Metric>,
    /// Wall-clock budget, loading included (60s, 5m, 1h).
    #[arg(long, default_value = "60s", value_parser = parse_budget)]
    pub budget: std::time::Duration,
    /// Stop after this many trials, even with time left.
    #[arg(long)]
    pub trials: Option<usize>,
    /// Fraction of the training data carved out for validation (per user
    /// for implicit feedback, at random for ratings).
    #[arg(long, default_value_t = 0.2)]
    pub validation_fraction: f64,
    /// Validation files instead of a carve-out (repeatable).
    #[arg(long)]
    pub validation: Vec<String>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Trials at a time, one thread each [default: the cores].
    #[arg(long)]
    pub parallel: Option<usize>,
    /// A parameters file to run as the first trial instead of the defaults.
    #[arg(long)]
    pub start: Option<PathBuf>,
    /// Where the best parameters go (for `train --params`, `retrain --params`).
    #[arg(long, short = 'o', default_value = "best.json")]
    pub out: PathBuf,
    /// Also train the best parameters on all the data and write the model.
    #[arg(long)]
    pub model_out: Option<PathBuf>,
    /// The leaderboard as a table, JSON or CSV.
    #[arg(long, value_enum, default_value = "table")]
    pub format: OutFormat,
    /// Rows of the table.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

fn parse_metric(s: &str) -> Result<crate::engine::tune::Metric, String> {
    s.parse()
}

fn parse_budget(s: &str) -> Result<std::time::Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("`{s}`: {e} (e.g. 60s, 5m)"))?;
    if d.is_zero() {
        return Err("the budget must be positive".into());
    }
    Ok(d)
}
