//! Output formatting: tables, JSON and CSV of what the library returns,
//! progress bars, and the lines a training run prints as it goes.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::args::OutFormat;
use crate::data::{self, LoadOptions};
use crate::engine::pipeline::{self, Event};
use crate::interactions::Interactions;
use crate::model::{EpochReport, Model};
use crate::score;

pub(super) fn epoch_line(r: &EpochReport) -> String {
    let mut line = format!("epoch {:>3}", r.epoch);
    if let Some(v) = r.train_rmse {
        line += &format!("  train RMSE {v:.4}");
    }
    if let Some(v) = r.valid_rmse {
        line += &format!("  valid RMSE {v:.4}");
    }
    if let (Some(p), Some(n)) = (r.valid_precision, r.valid_ndcg) {
        line += &format!("  valid P@10 {p:.4} nDCG@10 {n:.4}");
    }
    line + &format!(
        "  {:.3}s  {:.1} M entries/s",
        r.seconds,
        r.entries_per_second / 1e6
    )
}

/// One line of ranking metrics from a JSON object with `precision@k`… keys.
pub(super) fn ranking_line(t: &serde_json::Value, ks: &[usize]) -> String {
    let f = |key: &str| t.get(key).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
    let mut parts = Vec::new();
    for k in ks {
        parts.push(format!(
            "P@{k} {:.4}  R@{k} {:.4}  nDCG@{k} {:.4}  MAP@{k} {:.4}  coverage@{k} {:.4}",
            f(&format!("precision@{k}")),
            f(&format!("recall@{k}")),
            f(&format!("ndcg@{k}")),
            f(&format!("map@{k}")),
            f(&format!("coverage@{k}"))
        ));
    }
    let users = t
        .get("ranking_users")
        .or_else(|| t.get("users"))
        .cloned()
        .unwrap_or_default();
    format!(
        "test ranking ({users} users): {}  AUC {:.4}",
        parts.join("  "),
        f("auc")
    )
}

pub(super) fn progress_bar(len: u64, quiet: bool) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let b = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} epoch {pos}/{len} {elapsed_precise} (eta {eta})",
    ) {
        b.set_style(style);
    }
    Some(b)
}

/// Loads a model file, or the one a registry pointer (`models/current`) names.
pub(super) fn load_model(path: &Path) -> Result<Model> {
    let file = crate::model::resolve_model_path(path)
        .with_context(|| format!("loading model {}", path.display()))?;
    Model::load(&file).with_context(|| format!("loading model {}", file.display()))
}

pub(super) fn read_titles(
    p: &Option<PathBuf>,
) -> Result<Option<std::collections::HashMap<String, String>>> {
    match p {
        Some(p) => {
            Ok(Some(data::titles::read_titles(p).with_context(|| {
                format!("reading item titles {}", p.display())
            })?))
        }
        None => Ok(None),
    }
}

/// Prints a list of scored items as a table, JSON or CSV.
pub(super) fn print_list(
    user: &str,
    source: score::Source,
    items: &[score::Scored],
    titles: Option<&std::collections::HashMap<String, String>>,
    format: OutFormat,
) -> Result<()> {
    let title = |id: &str| titles.and_then(|t| t.get(id)).cloned();
    let mut out = std::io::stdout().lock();
    match format {
        OutFormat::Json => {
            let list: Vec<serde_json::Value> = items
                .iter()
                .map(|s| {
                    let mut v = serde_json::to_value(s).unwrap_or_default();
                    if let Some(t) = title(&s.item) {
                        v["title"] = t.into();
                    }
                    v
                })
                .collect();
            let v = serde_json::json!({"user": user, "source": source, "items": list});
            writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        }
        OutFormat::Csv => {
            writeln!(
                out,
                "rank,item,score,source{}",
                if titles.is_some() { ",title" } else { "" }
            )?;
            for (r, s) in items.iter().enumerate() {
                let t = title(&s.item)
                    .map(|t| format!(",\"{}\"", t.replace('"', "\"\"")))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{},{},{:.4},{}{t}",
                    r + 1,
                    s.item,
                    s.score,
                    source.name()
                )?;
            }
        }
        OutFormat::Table => {
            match source {
                score::Source::Popularity | score::Source::RecentPopularity if !user.is_empty() => writeln!(
                    out,
                    "user {user} is not in the model or has too short a history: most popular items instead (source: {})",
                    source.name()
                )?,
                score::Source::Popularity | score::Source::RecentPopularity => {
                    writeln!(out, "no known items given: most popular items instead (source: {})", source.name())?
                }
                _ => {}
            }
            for (r, s) in items.iter().enumerate() {
                let t = title(&s.item).map(|t| format!("  {t}")).unwrap_or_default();
                let why = if s.because.is_empty() {
                    String::new()
                } else {
                    format!("  (because: {})", s.because.join(", "))
                };
                writeln!(out, "{:>3}  {:<12} {:>8.4}{t}{why}", r + 1, s.item, s.score)?;
            }
        }
    }
    Ok(())
}

/// Prints what a loading stage reports: malformed rows skipped, duplicates
/// dropped, and (for the training data) what was read.
pub(super) fn print_load_event(e: &Event) {
    match e {
        Event::Loaded {
            what,
            report,
            seconds,
        } => {
            if report.bad_rows_skipped > 0 {
                eprintln!(
                    "{what}: skipped {} malformed row(s)",
                    report.bad_rows_skipped
                );
            }
            if report.empty_ids_skipped > 0 {
                eprintln!(
                    "{what}: skipped {} row(s) without a user or item id",
                    report.empty_ids_skipped
                );
            }
            if report.duplicates_dropped > 0 {
                let how = match report.aggregate.as_str() {
                    "last" | "" => "the last one kept".to_string(),
                    a => format!("combined by {a}"),
                };
                eprintln!(
                    "{what}: {} duplicated (user, item) row(s) merged, {how}",
                    report.duplicates_dropped
                );
            }
            if report.non_positive_dropped > 0 {
                eprintln!(
                    "{what}: dropped {} entr(ies) whose value is ≤ 0 (returns, cancellations)",
                    report.non_positive_dropped
                );
            }
            for n in &report.notes {
                eprintln!("{what}: {n}");
            }
            if *what == "data" {
                eprintln!(
                    "loaded {} rows ({} users, {} items) from {} file(s) in {seconds:.2}s",
                    report.rows,
                    report.users,
                    report.items,
                    report.files.len(),
                );
            }
        }
        Event::Positives { threshold, count } => {
            eprintln!("{count} positives with value ≥ {threshold}")
        }
        Event::Fitting { .. } | Event::FittingListHead { .. } | Event::Epoch(_) => {}
    }
}

/// Loads interaction files outside a training run (test sides, seen items),
/// saying what was skipped; `implicit` combines repeated rows as the
/// training of an implicit model does.
pub(super) fn load_data(
    sources: &[String],
    opts: &LoadOptions,
    implicit: bool,
    what: &str,
) -> Result<(Interactions, data::LoadReport)> {
    Ok(pipeline::load(
        sources,
        opts,
        implicit,
        None,
        what,
        &mut |e| print_load_event(&e),
    )?)
}
