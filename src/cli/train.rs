//! `train`, `eval`, `info`, `inspect`, `synth`, `export` and `import`.

use anyhow::{bail, Context, Result};

use super::args::{
    EvalArgs, ExportArgs, ImportArgs, InfoArgs, InspectArgs, OutFormat, SynthArgs, TrainArgs,
};
use super::config;
use super::output::{
    epoch_line, load_data, load_model, print_load_event, progress_bar, ranking_line,
};
use crate::data;
use crate::engine::pipeline::{self, Event};
use crate::eval;

pub(super) fn train(a: TrainArgs) -> Result<()> {
    // Everything that can be checked without data is checked first.
    let cfg = config::train_config(&a)?;
    let quiet = a.quiet;
    let mut bar = None;
    let run = pipeline::run(&cfg, &mut |e| match e {
        Event::Fitting { epochs } => bar = progress_bar(epochs as u64, quiet),
        Event::FittingListHead { epochs } => {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
            if !quiet {
                eprintln!("list head: implicit ALS on the same ratings, for the top-N lists");
            }
            bar = progress_bar(epochs as u64, quiet);
        }
        Event::Epoch(r) => {
            let line = epoch_line(r);
            if let Some(b) = &bar {
                b.set_position(r.epoch as u64);
                b.println(line);
            } else if !quiet {
                eprintln!("{line}");
            }
        }
        e => print_load_event(&e),
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let model = &run.model;
    let mut summary = serde_json::json!({
        "model": a.out.display().to_string(),
        "algorithm": model.meta().algorithm,
        "users": model.n_users(),
        "items": model.n_items(),
        "train_rows": run.train_rows,
        "train_seconds": run.train_seconds,
        "seconds_per_epoch": run.seconds_per_epoch(),
        "epochs": model.meta().history.len(),
        "best_epoch": model.meta().best_epoch,
    });
    if let Some(v) = model.meta().history.last().and_then(|h| h.train_rmse) {
        summary["train_rmse"] = v.into();
    }
    if let Some(h) = model.list_head() {
        summary["list_head"] = h.meta().algorithm.clone().into();
        summary["list_head_seconds"] = model
            .meta()
            .metrics
            .get("list_head_seconds")
            .copied()
            .into();
    }
    if let Some(e) = &run.test {
        let mut test = serde_json::Map::new();
        if let Some(m) = &e.rating {
            if let serde_json::Value::Object(o) = serde_json::to_value(m)? {
                test.extend(o);
            }
        }
        if let Some(r) = &e.ranking {
            test.insert("ranking_users".into(), r.users.into());
            for (k, v) in &r.values {
                test.insert(k.clone(), (*v).into());
            }
        }
        summary["test"] = serde_json::Value::Object(test);
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(());
    }
    let algorithm = match model.list_head() {
        Some(h) => format!(
            "{} (ratings) + {} list head (k = {})",
            model.meta().algorithm,
            h.meta().algorithm,
            h.factors()
        ),
        None => model.meta().algorithm.clone(),
    };
    println!(
        "trained {} ({} users × {} items, {} rows) in {:.2}s → {}",
        algorithm,
        model.n_users(),
        model.n_items(),
        run.train_rows,
        run.train_seconds,
        a.out.display()
    );
    if let Some(t) = summary.get("test") {
        if let Some(rmse) = t.get("rmse").and_then(|v| v.as_f64()) {
            println!(
                "test: RMSE {rmse:.4}  MAE {:.4}  n {}  (unknown users {}, unknown items {})",
                t["mae"].as_f64().unwrap_or(f64::NAN),
                t["n"],
                t["unknown_users"],
                t["unknown_items"]
            );
        }
        if t.get("ranking_users").is_some() {
            println!("{}", ranking_line(t, &a.eval_k));
        }
    }
    Ok(())
}

pub(super) fn import(a: ImportArgs) -> Result<()> {
    let m = crate::spark::import(&a.export, &a.spark_out)
        .with_context(|| format!("importing {}", a.spark_out.display()))?;
    m.save(&a.out)
        .with_context(|| format!("writing model {}", a.out.display()))?;
    println!(
        "imported {} users × {} items → {}",
        m.n_users(),
        m.n_items(),
        a.out.display()
    );
    Ok(())
}

pub(super) fn eval_cmd(a: EvalArgs) -> Result<()> {
    if a.k.is_empty() || a.k.contains(&0) {
        bail!("--k: cut-offs must be ≥ 1 (e.g. --k 10,20)");
    }
    let model = load_model(&a.model)?;
    let (test, _) = load_data(&a.test, &a.load.options(), model.meta().implicit, "test")?;
    let out = eval::report(&model, &test, &a.k, a.positive_threshold);
    let v = serde_json::Value::Object(out);
    match a.format {
        OutFormat::Json => println!("{}", serde_json::to_string(&v)?),
        _ => {
            if let Some(rmse) = v.get("rmse").and_then(|x| x.as_f64()) {
                println!(
                    "RMSE {rmse:.4}  MAE {:.4}  n {}  (unknown users {}, unknown items {}, scored with the fallback)",
                    v["mae"].as_f64().unwrap_or(f64::NAN),
                    v["n"],
                    v["unknown_users"],
                    v["unknown_items"]
                );
            }
            println!("{}", ranking_line(&v, &a.k));
        }
    }
    Ok(())
}

pub(super) fn info(a: InfoArgs) -> Result<()> {
    let model = load_model(&a.model)?;
    let m = model.meta();
    if a.json {
        println!("{}", serde_json::to_string_pretty(&model.info_json())?);
        return Ok(());
    }
    println!("model        {}", a.model.display());
    println!(
        "format       {} v{} (recsys {})",
        m.format, m.format_version, m.recsys_version
    );
    println!(
        "algorithm    {}{}",
        m.algorithm,
        if m.implicit {
            " (implicit feedback)"
        } else {
            ""
        }
    );
    if m.params["engine"] == "spark" {
        let s = &m.params["spark"];
        println!(
            "engine       spark {} ({})",
            s["version"].as_str().unwrap_or("?"),
            s["master"].as_str().unwrap_or("?")
        );
    }
    println!("created      {}", m.created);
    println!(
        "size         {} users × {} items, k = {}",
        m.n_users, m.n_items, m.factors
    );
    println!(
        "data         {} rows, fingerprint {}, from {}",
        m.data.rows,
        m.data.fingerprint,
        m.data.sources.join(", ")
    );
    if let Some(d) = &m.data.defaults {
        println!("defaults     {d}");
    }
    println!("params       {}", m.params);
    println!(
        "epochs       {} run, best {}",
        m.history.len(),
        m.best_epoch
    );
    for (k, v) in &m.metrics {
        println!("metric       {k} = {v:.6}");
    }
    match model.list_head() {
        Some(h) => {
            let hm = h.meta();
            println!(
                "answers      ratings (predict, RMSE): {}; lists (recommend, similar, index, ranking metrics): the list head",
                m.algorithm
            );
            println!(
                "list head    {}, k = {}, {} epochs, params {}",
                hm.algorithm,
                hm.factors,
                hm.history.len(),
                hm.params
            );
        }
        None if m.implicit => println!("answers      lists: {}", m.algorithm),
        None => println!("answers      ratings and lists: {}", m.algorithm),
    }
    Ok(())
}

pub(super) fn synth(a: SynthArgs) -> Result<()> {
    let p = data::synth::SynthParams {
        users: a.users,
        items: a.items,
        ratings: a.ratings,
        rank: a.rank,
        popularity_exponent: a.popularity_exponent,
        noise: a.noise,
        string_ids: a.string_ids,
        seed: a.seed,
    };
    p.check()?;
    let t0 = std::time::Instant::now();
    let s = data::synth::generate(&p)?;
    let n = data::synth::write(s, a.string_ids, &a.out)?;
    println!(
        "wrote {n} ratings to {} in {:.2}s",
        a.out.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

pub(super) fn inspect(a: InspectArgs) -> Result<()> {
    let mut opts = a.load.options();
    opts.min_user_count = a.min_user_count;
    opts.min_item_count = a.min_item_count;
    // As training would load it: implicit values add up and non-positive
    // sums go, ratings keep their last row.
    if a.implicit {
        opts.aggregate.get_or_insert(data::Aggregate::Sum);
        opts.drop_non_positive = true;
    }
    let t0 = std::time::Instant::now();
    let (x, rep) = data::load(&a.data, &opts)
        .with_context(|| format!("loading data {}", a.data.join(", ")))?;
    let secs = t0.elapsed().as_secs_f64();
    let mut v = serde_json::to_value(&rep)?;
    v["load_seconds"] = secs.into();
    v["has_timestamps"] = x.times.is_some().into();
    v["fingerprint"] = x.fingerprint().into();
    v["value_mean"] = x.mean_value().into();
    let fb = data::feedback::detect(&x.values);
    v["values"] = serde_json::to_value(&fb.stats)?;
    v["feedback"] = fb.kind.name().into();
    v["feedback_reason"] = fb.reason.into();
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

pub(super) fn export(a: ExportArgs) -> Result<()> {
    let t0 = std::time::Instant::now();
    let m = data::export::export(&a.data, &a.load.options(), &a.out, a.partitions)
        .with_context(|| format!("exporting {} to {}", a.data.join(", "), a.out.display()))?;
    let mut v = serde_json::to_value(&m)?;
    v["seconds"] = t0.elapsed().as_secs_f64().into();
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}
