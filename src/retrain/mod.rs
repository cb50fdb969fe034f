//! Retraining on a schedule: read the data source again, train a candidate
//! warm-started from the current model, evaluate candidate and current on
//! the same holdout, and promote the candidate only if the quality gate
//! passes. Main types: [`RetrainParams`], [`Outcome`], [`registry::Registry`],
//! [`gate::Gate`], [`schedule::Schedule`].
//!
//! A run is skipped when neither the data files (path, size, mtime) nor the
//! loaded data's fingerprint changed since the last completed run. Every run
//! — promoted, rejected, skipped or failed — is one line of the registry's
//! history. The retrain lock keeps two runs from overlapping.

pub mod gate;
pub mod registry;
pub mod schedule;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use serde_json::json;

use crate::data::{self, LoadOptions};
use crate::engine::pipeline;
use crate::engine::Trainer;
use crate::error::{Error, Result};
use crate::interactions::Interactions;
use crate::model::Model;
use crate::util::fault_point;
use gate::Gate;
use registry::{Record, Registry};

/// Where the holdout comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Holdout {
    /// Files of held-out interactions (the same for every run).
    Files(Vec<String>),
    /// A seeded random `fraction` of all entries, drawn from the newest
    /// 2·`fraction` (by timestamp, else by position: later files and later
    /// rows are newer), kept out of training.
    Newest(f64),
}

/// Everything a retrain run needs; built and checked by the caller.
#[derive(Clone, Debug)]
pub struct RetrainParams {
    pub sources: Vec<String>,
    pub load: LoadOptions,
    pub holdout: Holdout,
    /// The gate; `None` picks the default for the model kind:
    /// `rmse <= 1.005 * current` (ratings), `ndcg@10 >= 0.995 * current`
    /// (implicit feedback).
    pub gate: Option<Gate>,
    /// Trains the first model when the registry has none (and every model
    /// with `cold`).
    pub bootstrap: Trainer,
    /// Adapt `bootstrap`'s implicit ALS α and λ to the data, except those
    /// the user set (`None`: adapt nothing).
    pub bootstrap_adapt: Option<crate::engine::pipeline::SetByUser>,
    /// The list head of a bootstrapped (or `cold`) rating model. A warm run
    /// keeps what the current model has: its list head, warm, or none.
    pub bootstrap_list_head: Option<Trainer>,
    /// Epochs of this run (default: a warm schedule, see [`warm_trainer`]).
    pub epochs: Option<usize>,
    /// Train from scratch with `bootstrap` instead of warm-starting.
    pub cold: bool,
    /// Run even if the data did not change.
    pub force: bool,
    /// Model files to keep (the current one and its rollback target always stay).
    pub keep: usize,
    /// Entries with value ≥ this are the positives of implicit models.
    pub positive_threshold: Option<f32>,
    pub seed: u64,
    pub threads: Option<usize>,
    /// Train every candidate on Spark (`--engine spark`). Without it a
    /// candidate trains on Spark only when the current model was trained
    /// there (and `cold` is not set). Spark candidates train from scratch.
    pub spark_engine: bool,
    /// How to reach Spark when a candidate trains there.
    pub spark: crate::spark::SparkOptions,
}

/// What one run decided.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    Promoted,
    Rejected,
    Skipped,
}

impl Decision {
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::Promoted => "promoted",
            Decision::Rejected => "rejected",
            Decision::Skipped => "skipped",
        }
    }
}

/// The result of a run; `record` is what went into the history.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub decision: Decision,
    pub record: Record,
    /// Lines for the log: lock takeover, gate conditions, deleted files.
    pub notes: Vec<String>,
}

/// The default gate for a model kind. A rating model's lists are checked
/// too, so a retrain cannot promote a model whose top-N got worse.
pub fn default_gate(implicit: bool) -> Gate {
    let s = if implicit {
        "ndcg@10 >= 0.995 * current"
    } else {
        "rmse <= 1.005 * current and ndcg@10 >= 0.995 * current"
    };
    s.parse().expect("the default gates parse")
}

/// The trainer of a warm-started run from the current model's trainer: a
/// quarter of the epochs (at least 2) for SGD and BPR, SGD's learning-rate
/// decay compressed to match, so known factors are refined rather than
/// shaken; a fifth of the sweeps (at least 2) for ALS, whose
/// first sweep already solves every row given the kept factors (on ml-1m one
/// warm sweep matches the cold model's final validation RMSE).
pub fn warm_trainer(base: &Trainer, epochs: Option<usize>) -> Result<Trainer> {
    let n = base.epochs();
    match base {
        Trainer::Sgd(p) => {
            let p = p.params();
            let e = epochs.unwrap_or(n.div_ceil(4).max(2));
            // A quarter of the epochs, so the decay runs four times as fast,
            // from where the cold schedule stands after a quarter of its
            // epochs (ml-1m: 0.8450 after 5 warm epochs against 0.8467
            // with decay from halfway). L2 stays as it was: easing it (2/3)
            // reached the cold RMSE by epoch 3, but each warm run then
            // starts from less regularized factors, and five chained runs
            // ended at 0.8524 against 0.8448 with full L2.
            let lr = p.learning_rate * p.lr_decay.powi((n / 4) as i32);
            let decay = p.lr_decay.powi(4);
            base.with_params(|o| {
                o.insert("epochs".into(), e.into());
                o.insert("learning_rate".into(), json!(lr));
                o.insert("lr_decay".into(), json!(decay));
            })
        }
        Trainer::Bpr(_) => {
            let e = epochs.unwrap_or(n.div_ceil(4).max(2));
            base.with_params(|o| {
                o.insert("epochs".into(), e.into());
            })
        }
        Trainer::Als(_) => {
            let e = epochs.unwrap_or(n.div_ceil(5).max(2));
            base.with_params(|o| {
                o.insert("epochs".into(), e.into());
            })
        }
        // Spark trains from scratch (see [`Trainer::warm_starts`]): the
        // full schedule.
        Trainer::Spark(..) => base.with_params(|o| {
            o.insert("epochs".into(), epochs.unwrap_or(n).into());
        }),
    }
}

/// xxh3 of the files' paths, sizes and modification times: a change of
/// any file shows without reading it.
pub fn files_signature(files: &[PathBuf]) -> Result<String> {
    use std::hash::Hasher;
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for f in files {
        let m = std::fs::metadata(f).map_err(|e| Error::io(f, e))?;
        let mtime = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        h.write(f.to_string_lossy().as_bytes());
        h.write(&[0]);
        h.write_u64(m.len());
        h.write_u128(mtime);
    }
    Ok(format!("{:016x}", h.finish()))
}

/// Splits off the newest-slice holdout (see [`Holdout::Newest`]).
pub fn newest_holdout(x: &Interactions, fraction: f64, seed: u64) -> (Interactions, Interactions) {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let n = x.len();
    let mut order: Vec<usize> = (0..n).collect();
    if let Some(t) = &x.times {
        order.sort_by_key(|&i| (t[i], i));
    }
    let n_test = ((fraction * n as f64).round() as usize).min(n);
    let pool = (2 * n_test).min(n);
    let mut newest = order[n - pool..].to_vec();
    newest.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed ^ 0x401d));
    let mut is_test = vec![false; n];
    for &i in &newest[..n_test] {
        is_test[i] = true;
    }
    let train: Vec<usize> = (0..n).filter(|&i| !is_test[i]).collect();
    let test: Vec<usize> = (0..n).filter(|&i| is_test[i]).collect();
    (x.subset(&train), x.subset(&test))
}

/// Holdout metrics of a model: RMSE/MAE for rating models, and the ranking
/// metrics at `ks` for implicit ones (and for rating models when a positive
/// threshold defines positives).
pub fn holdout_metrics(
    m: &Model,
    holdout: &Interactions,
    ks: &[usize],
    threshold: Option<f32>,
) -> BTreeMap<String, f64> {
    pipeline::evaluate(m, holdout, ks, threshold).flat()
}

/// The last run that trained and decided (promoted or rejected).
fn last_completed(reg: &Registry) -> Result<Option<Record>> {
    Ok(reg.history()?.into_iter().rev().find(|r| {
        r.event == "retrain" && matches!(r.decision.as_deref(), Some("promoted" | "rejected"))
    }))
}

/// One retrain run under the registry's lock. Errors are recorded in the
/// history as a `failed` run before they are returned.
pub fn run_once(reg: &Registry, p: &RetrainParams) -> Result<Outcome> {
    let lock = reg.lock()?;
    let mut notes = Vec::new();
    if let Some(s) = &lock.stale {
        notes.push(format!("took over the lock of a run that is gone ({s})"));
    }
    for f in reg.clean_temp_files() {
        notes.push(format!("removed {} (left by a killed write)", f.display()));
    }
    let started = Instant::now();
    match run_locked(reg, p, &mut notes, started) {
        Ok(mut o) => {
            o.notes.splice(0..0, notes);
            Ok(o)
        }
        Err(e) => {
            let mut r = Record::new("retrain");
            r.decision = Some("failed".into());
            r.reason = e.to_string();
            r.previous = reg.current_id().ok().flatten();
            r.details = json!({ "seconds": started.elapsed().as_secs_f64() });
            // The run's own error matters more than a failed history write.
            let _ = reg.append(&r);
            Err(e)
        }
    }
}

fn run_locked(
    reg: &Registry,
    p: &RetrainParams,
    notes: &mut Vec<String>,
    started: Instant,
) -> Result<Outcome> {
    let files = data::expand_sources(&p.sources)?;
    let signature = files_signature(&files)?;
    let last = last_completed(reg)?;
    let current_id = reg.current_id()?;
    let skip = |reason: String, details: serde_json::Value| -> Result<Outcome> {
        let mut r = Record::new("retrain");
        r.decision = Some("skipped".into());
        r.previous = current_id.clone();
        r.reason = reason;
        r.details = details;
        reg.append(&r)?;
        Ok(Outcome {
            decision: Decision::Skipped,
            record: r,
            notes: Vec::new(),
        })
    };
    let last_detail = |key: &str| -> Option<String> {
        last.as_ref()
            .and_then(|r| r.details["data"][key].as_str().map(String::from))
    };
    if !p.force && current_id.is_some() && last_detail("signature").as_deref() == Some(&signature) {
        return skip(
            "the data files did not change since the last run".into(),
            json!({ "data": { "signature": signature, "files": files.len() } }),
        );
    }

    fault_point("loading");
    let t_load = Instant::now();
    let current = match &current_id {
        Some(id) => match Model::load(&reg.model_path(id)?) {
            Ok(m) => Some(m),
            Err(e) => {
                notes.push(format!(
                    "the current model {id} does not load ({e}); training from scratch"
                ));
                None
            }
        },
        None => None,
    };
    let implicit = match &current {
        Some(m) if !p.cold => m.meta().implicit,
        _ => p.bootstrap.implicit(),
    };
    let (all, rep) = pipeline::load(
        &p.sources,
        &p.load,
        implicit,
        p.positive_threshold,
        "data",
        &mut |_| {},
    )?;
    let fingerprint = all.fingerprint();
    let data_details = json!({
        "sources": p.sources,
        "files": files.len(),
        "signature": signature,
        "fingerprint": fingerprint,
        "rows": all.len(),
        "users": all.n_users(),
        "items": all.n_items(),
        "duplicates_dropped": rep.duplicates_dropped,
        "bad_rows_skipped": rep.bad_rows_skipped,
    });
    if !p.force && current.is_some() && last_detail("fingerprint").as_deref() == Some(&fingerprint)
    {
        return skip(
            "the data did not change since the last run (same fingerprint)".into(),
            json!({ "data": data_details }),
        );
    }
    let (train, holdout, holdout_kind) = match &p.holdout {
        Holdout::Files(f) => {
            let (h, _) = pipeline::load(
                f,
                &p.load,
                implicit,
                p.positive_threshold,
                "holdout",
                &mut |_| {},
            )?;
            (all, h, format!("files {}", f.join(", ")))
        }
        Holdout::Newest(frac) => {
            let (tr, te) = newest_holdout(&all, *frac, p.seed);
            (
                tr.compact(),
                te,
                format!(
                    "seeded {frac} of the entries, from the newest {}",
                    2.0 * frac
                ),
            )
        }
    };
    if holdout.is_empty() {
        return Err(Error::Other(
            "the holdout is empty: nothing to evaluate the candidate on".into(),
        ));
    }
    let load_secs = t_load.elapsed().as_secs_f64();

    // The trainer: warm from the current model's own parameters, or cold.
    // A model trained on Spark retrains there, as does every model with
    // --engine spark; Spark cannot warm-start, so those train cold with the
    // current model's parameters and the full schedule.
    let warm_from = current.as_ref().filter(|_| !p.cold);
    let to_engine = |t: Trainer| -> Result<Trainer> {
        if p.spark_engine || matches!(t, Trainer::Spark(..)) {
            t.on_spark(p.spark.clone())
        } else {
            Ok(t)
        }
    };
    let trainer = match warm_from {
        Some(m) => warm_trainer(&to_engine(Trainer::from_meta(&base_meta(m))?)?, p.epochs)?,
        None => {
            let t = match (p.epochs, &current) {
                (Some(e), _) => p.bootstrap.with_params(|o| {
                    o.insert("epochs".into(), e.into());
                })?,
                _ => p.bootstrap.clone(),
            };
            let t = if p.spark_engine {
                t.on_spark(p.spark.clone())?
            } else {
                t
            };
            match p.bootstrap_adapt {
                Some(set) => t.adapt_to_data(&train, set)?.0,
                None => t,
            }
        }
    };
    // The list head follows the model: warm from the current model's head,
    // or the bootstrap's for a cold run (none for a current model without).
    let list_head = match warm_from {
        Some(m) => match m.list_head() {
            Some(h) => Some(warm_trainer(&Trainer::from_meta(&base_meta(h))?, p.epochs)?),
            None => None,
        },
        None if !implicit => p.bootstrap_list_head.clone(),
        None => None,
    };
    let list_head = match (list_head, p.threads) {
        (Some(h), Some(n)) => Some(h.with_params(|o| {
            o.insert("threads".into(), n.into());
        })?),
        (h, _) => h,
    };
    let cold_start = match warm_from {
        Some(_) if !trainer.warm_starts() => Some(crate::spark::NO_WARM_START),
        _ => None,
    };
    if let Some(why) = cold_start {
        notes.push(format!("cold start: {why}"));
    }
    let trainer = match (&trainer, p.threads) {
        (_, None) => trainer,
        (_, Some(n)) => trainer.with_params(|o| {
            o.insert("threads".into(), n.into());
        })?,
    };

    fault_point("training");
    // The holdout doubles as per-epoch validation (no early stopping), so
    // the history shows the learning curve of every run.
    let valid = crate::train::Validation::from_heldout(&train, &holdout);
    let fits = pipeline::Fit {
        trainer: &trainer,
        list_head: list_head.as_ref(),
        adapt_head: warm_from.is_none() && p.bootstrap_adapt.is_some(),
    };
    let (mut model, train_secs) = pipeline::fit(
        fits,
        &train,
        Some(&valid),
        warm_from,
        None,
        &p.sources,
        &mut |_| {},
    )?;
    if let Some(m) = warm_from.filter(|_| cold_start.is_none()) {
        // The cold parameters travel on, so the next warm run starts from
        // them and not from this run's shortened schedule.
        let base = base_meta(m);
        model.meta_mut().params_base = Some(json!({
            "algorithm": base.algorithm,
            "params": base.params,
        }));
        if let (Some(h), Some(prev)) = (model.list_head_mut(), m.list_head()) {
            let base = base_meta(prev);
            h.meta_mut().params_base = Some(json!({
                "algorithm": base.algorithm,
                "params": base.params,
            }));
        }
    }

    let gate = p.gate.clone().unwrap_or_else(|| default_gate(implicit));
    let mut ks = gate.ranking_ks();
    if ks.is_empty() {
        ks.push(10);
    }
    let t_eval = Instant::now();
    let cand_metrics = holdout_metrics(&model, &holdout, &ks, p.positive_threshold);
    let cur_metrics = current
        .as_ref()
        .filter(|m| m.meta().implicit == implicit)
        .map(|m| holdout_metrics(m, &holdout, &ks, p.positive_threshold));
    let eval_secs = t_eval.elapsed().as_secs_f64();
    let verdict = gate.check(&cand_metrics, cur_metrics.as_ref());
    notes.extend(verdict.lines.iter().map(|l| format!("gate: {l}")));

    for (k, v) in &cand_metrics {
        model.meta_mut().metrics.insert(format!("holdout_{k}"), *v);
    }
    let id = reg.add(&model)?;

    let mut r = Record::new("retrain");
    r.model = Some(id.clone());
    r.previous = current_id.clone();
    let decision = if verdict.pass {
        reg.set_current(&id)?;
        r.reason = format!("gate passed: {gate}");
        Decision::Promoted
    } else {
        r.reason = format!("gate failed: {gate}");
        Decision::Rejected
    };
    r.decision = Some(decision.as_str().into());
    r.details = json!({
        "data": data_details,
        "holdout": { "kind": holdout_kind, "rows": holdout.len() },
        "train_rows": train.len(),
        "algorithm": model.meta().algorithm,
        "params": trainer.params_json(),
        "warm_start": model.meta().warm_start,
        "cold_start": cold_start,
        // Spark reports no per-epoch history; its maxIter iterations all run.
        "epochs": match model.meta().history.len() {
            0 => trainer.epochs(),
            n => n,
        },
        "history": model.meta().history,
        "metrics": { "candidate": cand_metrics, "current": cur_metrics },
        "gate": { "expr": gate.to_string(), "lines": verdict.lines },
        "seconds": {
            "load": load_secs,
            "train": train_secs,
            "eval": eval_secs,
            "total": started.elapsed().as_secs_f64(),
        },
    });
    reg.append(&r)?;
    if decision == Decision::Promoted {
        for d in reg.retain(p.keep)? {
            notes.push(format!("retention: deleted model {d}"));
        }
    }
    Ok(Outcome {
        decision,
        record: r,
        notes: Vec::new(),
    })
}

/// A model's metadata with the cold parameters it was warm-started from
/// (when it was), so warm runs do not compound their shortened schedules.
fn base_meta(m: &Model) -> crate::model::ModelMeta {
    let mut meta = m.meta().clone();
    if let Some(b) = &meta.params_base {
        if let (Some(a), Some(p)) = (b["algorithm"].as_str(), b.get("params")) {
            meta.algorithm = a.to_string();
            meta.params = p.clone();
        }
    }
    meta
}

/// Runs [`run_once`] on a schedule until `stop` says so, handing every
/// outcome (or error) to `report`. Errors do not end the loop: the next
/// tick tries again.
pub fn run_scheduled(
    reg: &Registry,
    p: &RetrainParams,
    schedule: &schedule::Schedule,
    run_now: bool,
    report: &mut dyn FnMut(Result<Outcome>),
    stop: &dyn Fn(std::time::Duration) -> bool,
) {
    let mut next = if run_now {
        std::time::SystemTime::now()
    } else {
        schedule.next_after(std::time::SystemTime::now())
    };
    loop {
        let wait = next
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        if stop(wait) {
            return;
        }
        let ran_at = std::time::SystemTime::now();
        report(run_once(reg, p));
        // The next tick after this run's start; ticks missed while it ran
        // are dropped, not queued.
        next = schedule.next_after(ran_at);
        let now = std::time::SystemTime::now();
        while next <= now {
            next = schedule.next_after(next);
        }
    }
}
