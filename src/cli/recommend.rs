//! `recommend` (one user, a new user given by items, or all users),
//! `similar` and `index`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::args::{FallbackArg, FilterArgs, IndexArgs, RecommendArgs, SimilarArgs};
use super::output::{load_data, load_model, print_list, read_titles};
use crate::model::Model;
use crate::score::{self, Filters};

pub(super) fn recommend(a: RecommendArgs) -> Result<()> {
    if a.n == 0 {
        bail!("-n must be ≥ 1");
    }
    // `--items` is a list of ids; a file goes to --items-file (or, for
    // titles, --titles). Said before the model is loaded.
    let given = match (&a.items, &a.items_file) {
        (Some(it), _) if Path::new(it).is_file() => bail!(
            "--items takes item ids (ID or ID:VALUE, comma-separated); {it} is a file: \
             use --items-file {it} for a file of items, or --titles {it} for item titles"
        ),
        (Some(it), _) => Some(score::foldin::parse_items(it)?),
        (None, Some(p)) => {
            // The format of the other id lists (--exclude), each entry ID or ID:VALUE.
            let read = || -> Result<_> {
                let list = score::read_id_list(p)?.join(",");
                Ok(score::foldin::parse_items(&list)?)
            };
            Some(read().with_context(|| format!("reading --items-file {}", p.display()))?)
        }
        (None, None) => None,
    };
    let model = load_model(&a.model)?;
    let mut filters = Filters {
        exclude_seen: !a.include_seen,
        blocked: None,
    };
    apply_filters(&a.filters, &model, &mut filters)?;
    if a.all {
        return recommend_all(&model, &a, &filters);
    }
    if !a.exclude_seen.is_empty() {
        let (x, _) = load_data(&a.exclude_seen, &a.load.options(), false, "seen items")?;
        if let Some(u) = a.user.as_deref().and_then(|u| x.user_ids.get(u)) {
            let ids: Vec<String> = (0..x.len())
                .filter(|&n| x.users[n] == u)
                .map(|n| x.item_ids.key(x.items[n]).to_string())
                .collect();
            filters.exclude_items(&model, ids.iter().map(String::as_str));
        }
    }
    let titles = read_titles(&a.titles)?;
    let opts = score::RecommendOptions {
        n: a.n,
        filters,
        strict: a.strict,
        min_history: a.min_history,
        fallback: match a.fallback {
            FallbackArg::Recent => score::Fallback::Recent,
            FallbackArg::Overall => score::Fallback::Overall,
        },
        explain: if a.explain { 3 } else { 0 },
    };
    let recs = match (&a.user, given) {
        (Some(u), _) if a.index.is_some() => {
            let file = crate::model::resolve_model_path(&a.model)?;
            let idx = score::load_ivf(&file, &model)?;
            score::recommend_ivf(&model, &idx, u, &opts, a.probe)?
        }
        (Some(u), _) => score::recommend(&model, u, &opts)?,
        (None, Some(given)) => score::foldin::recommend_items(&model, &given, &opts)?,
        (None, None) => bail!("give --user ID, --items LIST, --items-file PATH or --all"),
    };
    print_list(
        &recs.user,
        recs.source,
        &recs.items,
        titles.as_ref(),
        a.format,
    )
}

fn recommend_all(model: &Model, a: &RecommendArgs, filters: &Filters) -> Result<()> {
    let t0 = std::time::Instant::now();
    let users = match &a.out {
        Some(path) => {
            score::batch::write_all(model, a.n, filters, score::batch::AllSink::File(path))
                .with_context(|| format!("writing {}", path.display()))?
        }
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            score::batch::write_all(model, a.n, filters, score::batch::AllSink::Csv(&mut out))?
        }
    };
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "{users} users in {secs:.3}s ({:.0} users/s)",
        users as f64 / secs.max(1e-9)
    );
    Ok(())
}

/// Applies the item filters of `recommend` and `similar`.
fn apply_filters(a: &FilterArgs, model: &Model, f: &mut Filters) -> Result<()> {
    let read = |p: &PathBuf| {
        score::read_id_list(p).with_context(|| format!("reading item list {}", p.display()))
    };
    for p in &a.exclude {
        let ids = read(p)?;
        f.exclude_items(model, ids.iter().map(String::as_str));
    }
    for p in a.only.iter().chain(&a.available) {
        let ids = read(p)?;
        let l = score::ItemList::resolve(model, ids.iter().map(String::as_str));
        if l.unknown > 0 {
            eprintln!(
                "{}: {} item id(s) unknown to the model, ignored",
                p.display(),
                l.unknown
            );
        }
        f.only(model, &l.items);
    }
    Ok(())
}

pub(super) fn similar(a: SimilarArgs) -> Result<()> {
    if a.n == 0 {
        bail!("-n must be ≥ 1");
    }
    let model = load_model(&a.model)?;
    let mut filters = Filters::default();
    apply_filters(&a.filters, &model, &mut filters)?;
    let titles = read_titles(&a.titles)?;
    let picks = score::similar::similar_items(&model, &a.item, a.n, &filters)?;
    let items = score::to_scored(&model, &picks, &[], 0);
    print_list(
        &a.item,
        score::Source::Model,
        &items,
        titles.as_ref(),
        a.format,
    )
}

pub(super) fn index(a: IndexArgs) -> Result<()> {
    let file = crate::model::resolve_model_path(&a.model)?;
    let model = load_model(&file)?;
    let c = a
        .clusters
        .unwrap_or_else(|| score::ivf::default_clusters(model.n_items()));
    let t0 = std::time::Instant::now();
    let lists = model.lists();
    let idx =
        score::ivf::IvfIndex::build(lists.scoring_item_factors(), lists.factors(), c, a.seed)?;
    let out = score::ivf_path(&file);
    idx.save(&out, &model.meta().data.fingerprint)?;
    println!(
        "{} lists over {} items in {:.2}s → {}",
        idx.n_clusters(),
        model.n_items(),
        t0.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}
