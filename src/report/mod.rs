//! `recsys report`: one self-contained HTML page about a model, to look at
//! before trusting a number.
//!
//! [`build`] gathers what the page shows ([`Report`]): learning curves from
//! the per-epoch history in the model's metadata, the final metrics next to
//! the popularity baseline on the same test set (both through [`crate::eval`]),
//! catalogue coverage and the popularity distribution of the top-N lists of
//! every user (or a seeded sample of them), and a few users with their
//! history and their recommendations. [`Report::html`] renders it: inline
//! CSS, charts as inline SVG drawn by plotters, no script and no external
//! resource, so the file opens the same offline.

//!
//! Files: this one gathers the numbers; `html.rs` renders the page,
//! `charts.rs` draws its SVG charts.

mod charts;
mod html;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::eval::{self, Scorer};
use crate::interactions::Interactions;
use crate::model::Model;
use crate::score::{self, Fallback, Filters, RecommendOptions};

/// What the report covers.
///
/// | Name | Default | Purpose | Range |
/// |---|---|---|---|
/// | `n` | 10 | length of the recommendation lists shown and counted | ≥ 1 |
/// | `ks` | \[10\] | cut-offs of the ranking metrics | each ≥ 1 |
/// | `positive_threshold` | none | test rows ≥ T are positives (explicit models) | any |
/// | `sample_users` | 6 | users shown with history and recommendations | ≥ 0 |
/// | `users` | none | show these users instead of a sample | known ids |
/// | `max_users` | 50,000 | users whose lists make the coverage figures (a seeded sample beyond) | ≥ 1 |
/// | `seed` | 42 | the samples | any |
#[derive(Clone, Debug)]
pub struct ReportOptions {
    pub n: usize,
    pub ks: Vec<usize>,
    pub positive_threshold: Option<f32>,
    pub sample_users: usize,
    pub users: Vec<String>,
    pub max_users: usize,
    pub seed: u64,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            n: 10,
            ks: vec![10],
            positive_threshold: None,
            sample_users: 6,
            users: Vec::new(),
            max_users: 50_000,
            seed: 42,
        }
    }
}

impl ReportOptions {
    /// Checks the options (the CLI calls it before loading anything).
    pub fn check(&self) -> Result<()> {
        if self.n == 0 {
            return Err(Error::param("n", 0, "must be ≥ 1"));
        }
        if self.ks.is_empty() || self.ks.contains(&0) {
            return Err(Error::param(
                "k",
                format!("{:?}", self.ks),
                "cut-offs must be ≥ 1",
            ));
        }
        if self.max_users == 0 {
            return Err(Error::param("max_users", 0, "must be ≥ 1"));
        }
        Ok(())
    }
}

/// One row of the metrics table: the model's value and the baseline's.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct MetricRow {
    pub metric: String,
    pub model: f64,
    pub baseline: Option<f64>,
}

/// How the top-N lists spread over the catalogue.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Coverage {
    /// Users whose lists were counted.
    pub users: usize,
    pub n: usize,
    /// Distinct items in all lists / catalogue size.
    pub coverage: f64,
    pub distinct_items: usize,
    /// Share of list slots per popularity decile of the catalogue (decile 0
    /// = the 10% most popular training items).
    pub recommended_by_decile: Vec<f64>,
    /// Share of training interactions per decile, for comparison.
    pub training_by_decile: Vec<f64>,
    /// Gini coefficient of how often each item is recommended (0 = evenly).
    pub gini: f64,
    /// The most recommended items: (item id, times, training popularity rank from 1).
    pub top_items: Vec<(String, usize, usize)>,
}

/// One sampled user.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SampleUser {
    pub user: String,
    pub history: Vec<String>,
    pub recommendations: Vec<(String, f32)>,
    /// The user's held-out positives (with a test set).
    pub held_out: Vec<String>,
}

/// Everything the page shows.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub model_name: String,
    pub meta: crate::model::ModelMeta,
    /// Rows of the metrics table; the metadata's stored metrics without a test set.
    pub metrics: Vec<MetricRow>,
    pub tested: bool,
    pub ranking_users: usize,
    pub coverage: Coverage,
    pub users: Vec<SampleUser>,
    #[serde(skip)]
    titles: HashMap<String, String>,
}

/// The ranking metrics of recommending the most popular unseen items, on the
/// model's own training items and the same held-out positives.
pub fn popularity_baseline(
    model: &Model,
    test: &Interactions,
    ks: &[usize],
    threshold: Option<f32>,
) -> eval::RankingMetrics {
    let (truth, uu, ui) = eval::truth_for(model.user_ids(), model.item_ids(), test, threshold);
    // A one-factor model whose user factors are 1 and whose item factors
    // are the training counts scores every item by its popularity.
    let ones = vec![1f32; model.n_users()];
    let sc = Scorer {
        k: 1,
        user_factors: &ones,
        item_factors: model.item_popularity(),
        item_bias: None,
    };
    let mut m = eval::rank_eval(&sc, &|u| model.seen(u).to_vec(), &truth, ks, true);
    m.unknown_users = uu;
    m.unknown_items = ui;
    m
}

fn ranking_rows(model: &eval::RankingMetrics, base: &eval::RankingMetrics) -> Vec<MetricRow> {
    model
        .values
        .iter()
        .map(|(k, v)| MetricRow {
            metric: k.clone(),
            model: *v,
            baseline: base.values.get(k).copied(),
        })
        .collect()
}

/// Gathers the report's numbers. `titles` maps item ids to titles.
pub fn build(
    model: &Model,
    model_name: &str,
    test: Option<&Interactions>,
    titles: Option<&HashMap<String, String>>,
    o: &ReportOptions,
) -> Result<Report> {
    o.check()?;
    let meta = model.meta().clone();
    let mut metrics = Vec::new();
    let mut ranking_users = 0;
    let mut held: HashMap<u32, BTreeSet<u32>> = HashMap::new();
    if let Some(test) = test {
        let threshold = if meta.implicit {
            None
        } else {
            o.positive_threshold
        };
        if !meta.implicit {
            let r = eval::rating_metrics(model, test);
            // Ratings have no popularity list: their baseline is the global mean.
            let mu = model.global_mean() as f64;
            let n = test.len().max(1) as f64;
            let (se, ae) = test.values.iter().fold((0f64, 0f64), |a, &v| {
                let e = v as f64 - mu;
                (a.0 + e * e, a.1 + e.abs())
            });
            metrics.push(MetricRow {
                metric: "rmse".into(),
                model: r.rmse,
                baseline: Some((se / n).sqrt()),
            });
            metrics.push(MetricRow {
                metric: "mae".into(),
                model: r.mae,
                baseline: Some(ae / n),
            });
        }
        let m = eval::ranking_metrics(model, test, &o.ks, threshold);
        let b = popularity_baseline(model, test, &o.ks, threshold);
        ranking_users = m.users;
        metrics.extend(ranking_rows(&m, &b));
        let (truth, _, _) = eval::truth_for(model.user_ids(), model.item_ids(), test, threshold);
        for t in truth {
            held.insert(t.user, t.items.into_iter().collect());
        }
    } else {
        metrics.extend(meta.metrics.iter().map(|(k, v)| MetricRow {
            metric: k.clone(),
            model: *v,
            baseline: None,
        }));
    }
    let coverage = coverage(model, o)?;
    let users = sample_users(model, &held, o)?;
    Ok(Report {
        model_name: model_name.to_string(),
        meta,
        metrics,
        tested: test.is_some(),
        ranking_users,
        coverage,
        users,
        titles: titles.cloned().unwrap_or_default(),
    })
}

/// Training popularity rank of each item (0 = most popular; ties by index).
fn popularity_ranks(model: &Model) -> Vec<usize> {
    let pop = model.item_popularity();
    let mut order: Vec<u32> = (0..model.n_items() as u32).collect();
    order.sort_by(|&a, &b| pop[b as usize].total_cmp(&pop[a as usize]).then(a.cmp(&b)));
    let mut rank = vec![0; order.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i as usize] = r;
    }
    rank
}

fn coverage(model: &Model, o: &ReportOptions) -> Result<Coverage> {
    let ni = model.n_items();
    let mut users: Vec<u32> = (0..model.n_users() as u32).collect();
    if users.len() > o.max_users {
        users.shuffle(&mut rand::rngs::StdRng::seed_from_u64(o.seed));
        users.truncate(o.max_users);
        users.sort_unstable();
    }
    let filters = Filters {
        exclude_seen: true,
        blocked: None,
    };
    let mut times = vec![0usize; ni];
    score::batch::recommend_all(model, &users, o.n, &filters, &mut |recs| {
        for (_, picks) in recs {
            for &(i, _) in picks {
                times[i as usize] += 1;
            }
        }
        Ok(())
    })?;
    let rank = popularity_ranks(model);
    let decile = |i: usize| (rank[i] * 10 / ni.max(1)).min(9);
    let slots: usize = times.iter().sum();
    let mut rec = vec![0f64; 10];
    let mut train = vec![0f64; 10];
    let pop = model.item_popularity();
    let total_pop: f64 = pop.iter().map(|&p| p as f64).sum();
    for i in 0..ni {
        rec[decile(i)] += times[i] as f64 / slots.max(1) as f64;
        train[decile(i)] += pop[i] as f64 / total_pop.max(1.0);
    }
    let distinct = times.iter().filter(|&&t| t > 0).count();
    // Gini over items sorted by count: 1 − 2·(area under the Lorenz curve).
    let mut sorted = times.clone();
    sorted.sort_unstable();
    let gini = if slots > 0 && ni > 0 {
        let weighted: f64 = sorted
            .iter()
            .enumerate()
            .map(|(r, &t)| (r as f64 + 1.0) * t as f64)
            .sum();
        (2.0 * weighted) / (ni as f64 * slots as f64) - (ni as f64 + 1.0) / ni as f64
    } else {
        0.0
    };
    let mut top: Vec<usize> = (0..ni).filter(|&i| times[i] > 0).collect();
    top.sort_by(|&a, &b| times[b].cmp(&times[a]).then(a.cmp(&b)));
    top.truncate(10);
    Ok(Coverage {
        users: users.len(),
        n: o.n,
        coverage: distinct as f64 / ni.max(1) as f64,
        distinct_items: distinct,
        recommended_by_decile: rec,
        training_by_decile: train,
        gini,
        top_items: top
            .into_iter()
            .map(|i| {
                (
                    model.item_ids().key(i as u32).to_string(),
                    times[i],
                    rank[i] + 1,
                )
            })
            .collect(),
    })
}

fn sample_users(
    model: &Model,
    held: &HashMap<u32, BTreeSet<u32>>,
    o: &ReportOptions,
) -> Result<Vec<SampleUser>> {
    let chosen: Vec<u32> = if o.users.is_empty() {
        // Users with a history, and with held-out items when there is a
        // test set, so the page can show hits.
        let mut c: Vec<u32> = (0..model.n_users() as u32)
            .filter(|&u| model.history_len(u) > 0 && (held.is_empty() || held.contains_key(&u)))
            .collect();
        c.shuffle(&mut rand::rngs::StdRng::seed_from_u64(o.seed ^ 0x05e5));
        c.truncate(o.sample_users);
        c
    } else {
        o.users
            .iter()
            .map(|u| {
                model
                    .user_ids()
                    .get(u)
                    .ok_or_else(|| Error::UnknownUser(u.clone()))
            })
            .collect::<Result<_>>()?
    };
    let ro = RecommendOptions {
        n: o.n,
        fallback: Fallback::Overall,
        ..Default::default()
    };
    let key = |i: u32| model.item_ids().key(i).to_string();
    chosen
        .into_iter()
        .map(|u| {
            let id = model.user_ids().key(u).to_string();
            let r = score::recommend(model, &id, &ro)?;
            Ok(SampleUser {
                history: model.seen(u).iter().map(|&i| key(i)).collect(),
                recommendations: r.items.into_iter().map(|s| (s.item, s.score)).collect(),
                held_out: held
                    .get(&u)
                    .map(|s| s.iter().map(|&i| key(i)).collect())
                    .unwrap_or_default(),
                user: id,
            })
        })
        .collect()
}

/// Writes the page through a temp file + fsync + rename.
pub fn write(path: &Path, html: &str) -> Result<()> {
    crate::util::atomic_write(path, |w| {
        std::io::Write::write_all(w, html.as_bytes()).map_err(|e| Error::io(path, e))
    })
}

#[cfg(test)]
mod tests;
