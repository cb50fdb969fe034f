//! `recsys tune`: the search of [`crate::engine::tune`] from the command
//! line, with a progress bar, a leaderboard and the best parameters file.

use std::io::IsTerminal;

use anyhow::{bail, Context, Result};

use super::args::{OutFormat, TuneArgs};
use super::DEFAULT_DATA;
use crate::engine::pipeline::{self, TestSide, TrainConfig};
use crate::engine::tune::{self, BestParams, Family, Metric, TuneConfig, ValidationSide};

/// The search the flags describe, checked before any file is opened.
pub(super) fn tune_config(a: &TuneArgs) -> Result<TuneConfig> {
    let implicit = a.implicit || a.positive_threshold.is_some();
    let families: Vec<Family> = match a.algo.as_str() {
        "auto" if implicit => vec![Family::Als],
        "auto" => vec![Family::Sgd],
        list => list
            .split(',')
            .map(|s| match s.trim() {
                "sgd" => Ok(Family::Sgd),
                "als" => Ok(Family::Als),
                "bpr" => Ok(Family::Bpr),
                other => {
                    bail!("--algo {other}: give auto, sgd, als, bpr or a list such as als,bpr")
                }
            })
            .collect::<Result<_>>()?,
    };
    let metric: Metric = match &a.metric {
        Some(m) => m.clone(),
        None if implicit => "ndcg@10".parse().map_err(anyhow::Error::msg)?,
        None => "rmse".parse().map_err(anyhow::Error::msg)?,
    };
    let start = match &a.start {
        Some(f) => {
            let b = BestParams::load(f)?;
            let t = b
                .trainer(Some(1))
                .map_err(|e| anyhow::anyhow!("--start {}: {e}", f.display()))?;
            Some(t)
        }
        None => None,
    };
    let mut load = a.load.options();
    load.min_user_count = a.min_user_count;
    load.min_item_count = a.min_item_count;
    let cfg = TuneConfig {
        sources: if a.data.is_empty() {
            vec![DEFAULT_DATA.to_string()]
        } else {
            a.data.clone()
        },
        load,
        implicit,
        positive_threshold: a.positive_threshold,
        families,
        metric,
        budget: a.budget,
        max_trials: a.trials,
        validation: if a.validation.is_empty() {
            ValidationSide::Carve(a.validation_fraction)
        } else {
            ValidationSide::Files(a.validation.clone())
        },
        seed: a.seed,
        parallel: a
            .parallel
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        start,
    };
    cfg.check().map_err(|e| {
        // The library names its parameters; the command line names flags.
        let mut m = e.to_string();
        for (name, flag) in [
            ("`algo`", "--algo"),
            ("`metric`", "--metric"),
            ("`validation`", "--validation-fraction"),
            ("`parallel`", "--parallel"),
            ("`trials`", "--trials"),
        ] {
            m = m.replace(name, flag);
        }
        anyhow::anyhow!(m)
    })?;
    if let Some(t) = &cfg.start {
        if t.implicit() != implicit {
            bail!(
                "--start {}: its parameters are for {} feedback, this search is on {}",
                a.start
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                if t.implicit() { "implicit" } else { "rating" },
                if implicit {
                    "implicit feedback"
                } else {
                    "ratings"
                }
            );
        }
    }
    Ok(cfg)
}

pub(super) fn tune(a: TuneArgs) -> Result<()> {
    let cfg = tune_config(&a)?;
    let tty = std::io::stderr().is_terminal() && !a.quiet;
    let bar = tty.then(|| {
        let b = indicatif::ProgressBar::new(cfg.budget.as_secs().max(1));
        b.set_style(
            indicatif::ProgressStyle::with_template("tune [{bar:30}] {elapsed}/{msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.set_message(format!("{:.0?}", cfg.budget));
        b
    });
    let t0 = std::time::Instant::now();
    let metric = cfg.metric.clone();
    let mut best: Option<f64> = None;
    let run = tune::run(&cfg, &mut |t| {
        let better = best.is_none_or(|b| {
            if metric.lower_is_better() {
                t.value < b
            } else {
                t.value > b
            }
        });
        if better && t.value.is_finite() {
            best = Some(t.value);
        }
        let line = format!(
            "trial {:>4} {:<12} k={:<4} epochs={:<3} {} {:.4}{}  {:.2}s",
            t.id,
            t.algorithm,
            t.params["factors"],
            t.epochs,
            metric.name,
            t.value,
            if better { " *" } else { "" },
            t.seconds
        );
        // Each new best is shown; the rest is in the leaderboard.
        match &bar {
            Some(b) => {
                b.set_position(t0.elapsed().as_secs());
                if better {
                    b.println(line);
                }
            }
            None if !a.quiet && better => eprintln!("{line}"),
            None => {}
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    run.best_params
        .save(&a.out)
        .with_context(|| format!("writing {}", a.out.display()))?;
    let board = run.leaderboard(&cfg.metric);
    match a.format {
        OutFormat::Json => {
            let v = serde_json::json!({
                "metric": cfg.metric.name,
                "trials": run.trials.len(),
                "seconds": run.seconds,
                "stopped": run.stopped,
                "train_rows": run.train_rows,
                "validation_rows": run.validation_rows,
                "files": run.load.files,
                "best": run.best_params,
                "leaderboard": board,
            });
            println!("{}", serde_json::to_string(&v)?);
        }
        OutFormat::Csv => {
            println!(
                "rank,trial,algorithm,factors,epochs,{},seconds,params",
                cfg.metric.name
            );
            for (r, t) in board.iter().enumerate() {
                println!(
                    "{},{},{},{},{},{},{:.3},\"{}\"",
                    r + 1,
                    t.id,
                    t.algorithm,
                    t.params["factors"],
                    t.epochs,
                    t.value,
                    t.seconds,
                    t.params.to_string().replace('"', "\"\"")
                );
            }
        }
        OutFormat::Table => {
            println!(
                "{:>4}  {:>5}  {:<12} {:>5} {:>6}  {:>10}  {:>7}  params",
                "rank", "trial", "algorithm", "k", "epochs", cfg.metric.name, "seconds"
            );
            for (r, t) in board.iter().take(a.top).enumerate() {
                println!(
                    "{:>4}  {:>5}  {:<12} {:>5} {:>6}  {:>10.4}  {:>7.2}  {}",
                    r + 1,
                    t.id,
                    t.algorithm,
                    t.params["factors"],
                    t.epochs,
                    t.value,
                    t.seconds,
                    short_params(&t.params)
                );
            }
        }
    }
    if !a.quiet {
        eprintln!(
            "{} trials in {:.1}s (stopped by {}); best {} {:.4} ({}, trial {}) → {}",
            run.trials.len(),
            run.seconds,
            run.stopped,
            cfg.metric.name,
            run.best.value,
            run.best.algorithm,
            run.best.id,
            a.out.display()
        );
    }
    if let Some(m) = &a.model_out {
        // The best parameters on all the data (training and validation).
        let trainer = run.best_params.trainer(None)?;
        let list_head = if trainer.implicit() {
            None
        } else {
            Some(crate::engine::heads::list_head_trainer(cfg.seed, None)?)
        };
        let tc = TrainConfig {
            sources: cfg.sources.clone(),
            load: cfg.load.clone(),
            test: TestSide::None,
            validation: None,
            trainer,
            list_head,
            adapt: None,
            positive_threshold: cfg.positive_threshold,
            relevant_min: None,
            eval_k: vec![10],
            seed: cfg.seed,
            out: Some(m.clone()),
        };
        let r = pipeline::run(&tc, &mut |_| {})?;
        if !a.quiet {
            eprintln!(
                "trained the best parameters on all {} rows in {:.2}s → {}",
                r.train_rows,
                r.train_seconds,
                m.display()
            );
        }
    }
    Ok(())
}

/// The parameters a search varies, in a short form for the table.
fn short_params(p: &serde_json::Value) -> String {
    let keys = [
        "learning_rate",
        "reg",
        "reg_factors",
        "reg_bias",
        "alpha",
        "confidence",
        "eps",
        "adagrad",
        "lead_factors",
    ];
    keys.iter()
        .filter_map(|k| {
            p.get(*k)
                .and_then(|v| match (v.as_u64(), v.as_f64(), v.as_bool()) {
                    // The regime's switches only when on.
                    (_, _, Some(on)) => on.then(|| k.to_string()),
                    (Some(0), ..) => None,
                    (Some(n), ..) => Some(format!("{k}={n}")),
                    (_, Some(x), _) => Some(format!("{k}={x:.4}")),
                    _ => Some(format!("{k}={}", v.as_str().unwrap_or(""))),
                })
        })
        .collect::<Vec<_>>()
        .join(" ")
}
