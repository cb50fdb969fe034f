//! `retrain` (once or on a schedule) and `models` (the registry).

use std::io::Write;

use anyhow::{bail, Context, Result};

use super::args::{EngineArg, ModelsArgs, ModelsCommand, RetrainArgs};
use super::{config, GateRejected};
use crate::engine::pipeline::SetByUser;
use crate::engine::Trainer;

pub(super) fn retrain(a: RetrainArgs) -> Result<()> {
    use crate::retrain::{self, registry::Registry, schedule::Schedule, Decision, Holdout};
    // Flags first: a bad one fails before any data is read.
    let gate = a
        .gate
        .as_deref()
        .map(|g| g.parse::<retrain::gate::Gate>())
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let schedule = match (&a.every, &a.cron) {
        (Some(e), _) => Some(Schedule::every(e).map_err(anyhow::Error::msg)?),
        (_, Some(c)) => Some(Schedule::cron(c).map_err(anyhow::Error::msg)?),
        _ => None,
    };
    if a.run_now && a.cron.is_none() {
        bail!("--run-now goes with --cron (--every runs at start anyway)");
    }
    if !(a.holdout_fraction > 0.0 && a.holdout_fraction <= 0.5) {
        bail!(
            "--holdout-fraction {}: must be in (0, 0.5]",
            a.holdout_fraction
        );
    }
    if a.keep == 0 {
        bail!("--keep 0: at least the current model is kept; give 1 or more");
    }
    // With --engine spark this also finds spark-submit and Java up front.
    let bootstrap = match &a.params {
        Some(f) => config::params_trainer(f, &a.algo, None, None, a.positive_threshold, &a.engine)?,
        None => config::trainer(&a.algo, None, None, a.positive_threshold, &a.engine, 10)?,
    };
    let spark_engine = a.engine.engine == EngineArg::Spark;
    let spark = match &bootstrap {
        Trainer::Spark(_, o, _) => o.clone(),
        _ => a.engine.spark_options(),
    };
    let params = retrain::RetrainParams {
        sources: a.data.clone(),
        load: a.load.options(),
        holdout: if a.holdout.is_empty() {
            Holdout::Newest(a.holdout_fraction)
        } else {
            Holdout::Files(a.holdout.clone())
        },
        gate,
        bootstrap_adapt: a.params.is_none().then_some(SetByUser {
            alpha: a.algo.alpha.is_some(),
            reg: a.algo.reg.is_some(),
            confidence: a.algo.confidence.is_some(),
            eps: a.algo.eps.is_some(),
        }),
        bootstrap_list_head: config::list_head(&a.algo, &bootstrap, &a.engine)?,
        bootstrap,
        epochs: a.epochs,
        cold: a.cold,
        force: a.force,
        keep: a.keep,
        positive_threshold: a.positive_threshold,
        seed: a.algo.seed,
        threads: a.algo.threads,
        spark,
        spark_engine,
    };
    let reg = Registry::open(&a.models)
        .with_context(|| format!("opening the registry {}", a.models.display()))?;
    let show = |o: &retrain::Outcome| -> Result<()> {
        if a.json {
            println!("{}", serde_json::to_string(&o.record)?);
        } else {
            println!("{}", outcome_line(o));
            if !a.quiet {
                for n in &o.notes {
                    println!("  {n}");
                }
            }
        }
        std::io::stdout().flush()?;
        Ok(())
    };
    let Some(schedule) = schedule else {
        let o = retrain::run_once(&reg, &params).context("retrain")?;
        show(&o)?;
        if o.decision == Decision::Rejected {
            return Err(GateRejected.into());
        }
        return Ok(());
    };
    // SIGTERM / Ctrl-C end the wait between runs; a run in progress
    // finishes first (a kill instead is safe too: every write is atomic).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let stop = |wait: std::time::Duration| -> bool {
        rt.block_on(async {
            #[cfg(unix)]
            let term = async {
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(mut s) => {
                        s.recv().await;
                    }
                    Err(_) => std::future::pending::<()>().await,
                }
            };
            #[cfg(not(unix))]
            let term = std::future::pending::<()>();
            tokio::select! {
                _ = tokio::time::sleep(wait) => false,
                _ = tokio::signal::ctrl_c() => true,
                _ = term => true,
            }
        })
    };
    eprintln!(
        "retraining {} into {} {}",
        a.data.join(", "),
        a.models.display(),
        match (&a.every, &a.cron) {
            (Some(e), _) => format!("every {e}"),
            (_, Some(c)) => format!("at cron {c:?} (UTC)"),
            _ => String::new(),
        }
    );
    let mut failed_show = None;
    retrain::run_scheduled(
        &reg,
        &params,
        &schedule,
        a.every.is_some() || a.run_now,
        &mut |r| match r {
            Ok(o) => {
                if let Err(e) = show(&o) {
                    failed_show.get_or_insert(e);
                }
            }
            Err(e) => eprintln!("retrain failed: {e:#}"),
        },
        &stop,
    );
    eprintln!("retrain schedule stopped");
    match failed_show {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// One line per retrain outcome: decision, model, metrics beside the current.
fn outcome_line(o: &crate::retrain::Outcome) -> String {
    let r = &o.record;
    let d = &r.details;
    let mut s = format!(
        "{}: {}",
        r.decision.as_deref().unwrap_or("?"),
        r.model.as_deref().unwrap_or("-")
    );
    if r.decision.as_deref() == Some("skipped") {
        return format!("{s} ({})", r.reason);
    }
    if let Some(w) = d.get("warm_start").filter(|w| !w.is_null()) {
        s += &format!(
            "  warm start ({} users and {} items kept, {} and {} new)",
            w["users_kept"], w["items_kept"], w["users_new"], w["items_new"]
        );
    } else if d["params"]["engine"] == "spark" {
        s += "  cold start on Spark";
    } else {
        s += "  cold start";
    }
    s += &format!(
        "  {} epochs, train {:.2}s, total {:.2}s",
        d["epochs"],
        d["seconds"]["train"].as_f64().unwrap_or(f64::NAN),
        d["seconds"]["total"].as_f64().unwrap_or(f64::NAN)
    );
    if let Some(c) = d["metrics"]["candidate"].as_object() {
        let cur = d["metrics"]["current"].as_object();
        let parts: Vec<String> = c
            .iter()
            .filter(|(k, _)| k.as_str() != "ranking_users")
            .map(|(k, v)| {
                let v = v.as_f64().unwrap_or(f64::NAN);
                match cur.and_then(|m| m.get(k)).and_then(|x| x.as_f64()) {
                    Some(x) => format!("{k} {v:.4} (current {x:.4})"),
                    None => format!("{k} {v:.4}"),
                }
            })
            .collect();
        s += &format!("\n  holdout: {}", parts.join(", "));
    }
    s
}

pub(super) fn models(a: ModelsArgs) -> Result<()> {
    use crate::retrain::registry::Registry;
    let reg = Registry::open(&a.models)
        .with_context(|| format!("opening the registry {}", a.models.display()))?;
    let mut out = std::io::stdout().lock();
    match a.command {
        ModelsCommand::List { json } => {
            let list = reg.list()?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
                return Ok(());
            }
            if list.is_empty() {
                writeln!(out, "no models in {}", a.models.display())?;
                return Ok(());
            }
            writeln!(
                out,
                "  {:<34} {:<21} {:<13} {:>10} {:>7} {:>7}  metrics",
                "id", "created", "algorithm", "rows", "users", "items"
            )?;
            for e in list {
                let metrics: Vec<String> = e
                    .metrics
                    .iter()
                    .filter(|(k, _)| k.starts_with("holdout_") || k.starts_with("test_"))
                    .filter(|(k, _)| !k.ends_with("ranking_users") && !k.ends_with("_n"))
                    .map(|(k, v)| format!("{k}={v:.4}"))
                    .collect();
                writeln!(
                    out,
                    "{} {:<34} {:<21} {:<13} {:>10} {:>7} {:>7}  {}{}",
                    if e.current { "*" } else { " " },
                    e.id,
                    e.created,
                    e.algorithm,
                    e.rows,
                    e.users,
                    e.items,
                    if e.warm_started { "warm " } else { "" },
                    metrics.join(" ")
                )?;
            }
        }
        ModelsCommand::Promote { id } => {
            let r = reg
                .promote(&id, "manual promotion")
                .with_context(|| format!("promoting {id}"))?;
            writeln!(
                out,
                "current: {} (was {})",
                r.model.unwrap_or_default(),
                r.previous.as_deref().unwrap_or("none")
            )?;
        }
        ModelsCommand::Rollback => {
            let r = reg.rollback().context("rolling back")?;
            writeln!(
                out,
                "current: {} (rolled back from {})",
                r.model.unwrap_or_default(),
                r.previous.as_deref().unwrap_or("none")
            )?;
        }
        ModelsCommand::History { n, json } => {
            let h = reg.history()?;
            for r in &h[h.len().saturating_sub(n)..] {
                if json {
                    writeln!(out, "{}", serde_json::to_string(r)?)?;
                } else {
                    writeln!(
                        out,
                        "{}  {:<8} {:<9} {:<34} {}",
                        r.time,
                        r.event,
                        r.decision.as_deref().unwrap_or(""),
                        r.model.as_deref().unwrap_or("-"),
                        r.reason
                    )?;
                }
            }
        }
        ModelsCommand::Gc { keep } => {
            if keep == 0 {
                bail!("--keep 0: at least the current model is kept; give 1 or more");
            }
            for id in reg.retain(keep)? {
                writeln!(out, "deleted {id}")?;
            }
        }
    }
    Ok(())
}
