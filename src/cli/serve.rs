//! `serve`, `loadtest` and `report`.

use anyhow::{bail, Context, Result};

use super::args::{LoadtestArgs, ReportArgs, ServeArgs};
use super::output::{load_data, load_model, read_titles};

fn runtime(threads: Option<usize>) -> Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(t) = threads {
        if t == 0 {
            bail!("--threads must be ≥ 1");
        }
        b.worker_threads(t);
    }
    Ok(b.enable_all().build()?)
}

/// The admin token from the flag, the variable or the file; a short one is
/// refused, since the route can be guessed at as fast as the service answers.
fn admin_token(a: &ServeArgs) -> Result<Option<String>> {
    let token = match &a.admin_token_file {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading --admin-token-file {}", p.display()))?;
            Some(text.lines().next().unwrap_or("").trim().to_string())
        }
        None => a.admin_token.clone(),
    };
    let token = token.filter(|t| !t.is_empty());
    if let Some(t) = &token {
        let min = crate::serve::MIN_TOKEN_LEN;
        if t.chars().count() < min {
            bail!(
                "--admin-token (or RECSYS_ADMIN_TOKEN, --admin-token-file) must be at least {min} characters, got {}",
                t.chars().count()
            );
        }
    }
    Ok(token)
}

pub(super) fn serve(a: ServeArgs) -> Result<()> {
    if a.print_openapi {
        println!("{}", crate::serve::openapi::json());
        return Ok(());
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
    if a.max_concurrency == 0 || a.timeout_ms == 0 || a.watch_ms == 0 {
        bail!("--max-concurrency, --timeout-ms and --watch-ms must be ≥ 1");
    }
    let opts = crate::serve::ServeOptions {
        model_path: a.model.clone(),
        admin_token: admin_token(&a)?,
        max_concurrency: a.max_concurrency,
        timeout: std::time::Duration::from_millis(a.timeout_ms),
        body_limit: a.body_limit,
        watch_interval: std::time::Duration::from_millis(a.watch_ms),
        strict: a.strict,
        titles: read_titles(&a.titles)?.map(std::sync::Arc::new),
        titles_path: a.titles.clone(),
    };
    runtime(a.threads)?
        .block_on(crate::serve::run(opts, a.addr))
        .with_context(|| format!("serving {} on {}", a.model.display(), a.addr))
}

pub(super) fn loadtest(a: LoadtestArgs) -> Result<()> {
    if !(a.duration > 0.0 && a.duration <= 3600.0) {
        bail!("--duration must be in (0, 3600] seconds");
    }
    let model = load_model(&a.model)?;
    let users: Vec<String> = (0..model.n_users() as u32)
        .map(|u| model.user_ids().key(u).to_string())
        .collect();
    drop(model);
    let o = crate::loadtest::LoadOptions {
        addr: a.addr,
        connections: a.connections,
        duration: std::time::Duration::from_secs_f64(a.duration),
        rate: a.rate,
        max_requests: a.max_requests,
        users,
        query: format!("n={}&exclude_seen=true", a.n),
        reload_every: a.reload_every.map(std::time::Duration::from_secs_f64),
        reload_path: a.reload_path,
        seed: a.seed,
    };
    let r = runtime(Some(a.threads))?.block_on(crate::loadtest::run(o))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "{} requests in {:.1}s: {:.0} req/s; {} non-2xx, {} errors; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms{}",
            r.requests,
            r.seconds,
            r.requests_per_second,
            r.non_2xx,
            r.errors,
            r.p50_ms,
            r.p90_ms,
            r.p99_ms,
            r.max_ms,
            if r.non_2xx > 0 { format!(" (2xx only: p50 {:.2} ms, p99 {:.2} ms)", r.ok_p50_ms, r.ok_p99_ms) } else { String::new() } + &if r.reloads_triggered > 0 { format!("; {} reloads triggered", r.reloads_triggered) } else { String::new() }
        );
    }
    Ok(())
}

pub(super) fn report(a: ReportArgs) -> Result<()> {
    let o = crate::report::ReportOptions {
        n: a.n,
        ks: a.k.clone(),
        positive_threshold: a.positive_threshold,
        sample_users: a.sample_users,
        users: a.user.clone(),
        seed: a.seed,
        ..Default::default()
    };
    o.check()?;
    let file = crate::model::resolve_model_path(&a.model)?;
    let model = load_model(&file)?;
    let titles = read_titles(&a.titles)?;
    let test = if a.test.is_empty() {
        None
    } else {
        Some(load_data(&a.test, &a.load.options(), model.meta().implicit, "test")?.0)
    };
    let t0 = std::time::Instant::now();
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let r = crate::report::build(&model, &name, test.as_ref(), titles.as_ref(), &o)?;
    let html = r.html()?;
    crate::report::write(&a.out, &html)
        .with_context(|| format!("writing report {}", a.out.display()))?;
    println!(
        "wrote {} ({} KiB) in {:.2}s: {} epochs, coverage@{} {:.1}% over {} users, {} sample users",
        a.out.display(),
        html.len() / 1024,
        t0.elapsed().as_secs_f64(),
        r.meta.history.len(),
        r.coverage.n,
        r.coverage.coverage * 100.0,
        r.coverage.users,
        r.users.len()
    );
    Ok(())
}
