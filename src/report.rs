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

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
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

fn chart_err(e: impl std::fmt::Display) -> Error {
    Error::Other(format!("drawing a chart: {e}"))
}

const COLORS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

const CHART_SIZE: (u32, u32) = (560, 300);

/// Range of values with a little headroom; a flat series gets a unit range.
fn padded(vals: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = vals
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |a, v| {
            (a.0.min(v), a.1.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(hi.abs().max(1e-3) * 0.01);
    (lo - pad, hi + pad)
}

/// The common end of every chart: the legend box in the upper right, then
/// the SVG is finished.
fn legend_and_present<'a, 'b: 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, CT>,
    root: &DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
) -> Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(chart_err)?;
    root.present().map_err(chart_err)
}

/// A line chart of named series of (x, y) points; `mark_x` draws a dashed
/// vertical line (the epoch whose factors were kept).
fn line_chart(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[(String, Vec<(f64, f64)>)],
    mark_x: Option<f64>,
) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, CHART_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(chart_err)?;
        let (x0, x1) = padded(series.iter().flat_map(|s| s.1.iter().map(|p| p.0)));
        let (y0, y1) = padded(series.iter().flat_map(|s| s.1.iter().map(|p| p.1)));
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(chart_err)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .light_line_style(WHITE)
            .draw()
            .map_err(chart_err)?;
        for (n, (label, pts)) in series.iter().enumerate() {
            let c = COLORS[n % COLORS.len()];
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
                .map_err(chart_err)?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                });
            if pts.len() <= 60 {
                chart
                    .draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))
                    .map_err(chart_err)?;
            }
        }
        if let Some(x) = mark_x {
            let grey = RGBColor(120, 120, 120);
            let steps = 12;
            let dashes = (0..steps).step_by(2).map(|s| {
                let a = y0 + (y1 - y0) * s as f64 / steps as f64;
                let b = y0 + (y1 - y0) * (s + 1) as f64 / steps as f64;
                PathElement::new(vec![(x, a), (x, b)], grey.stroke_width(1))
            });
            chart
                .draw_series(dashes)
                .map_err(chart_err)?
                .label("kept epoch")
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], grey));
        }
        legend_and_present(&mut chart, &root)?;
    }
    Ok(svg)
}

/// Grouped bars: one group per decile, one bar per series.
fn decile_chart(title: &str, series: &[(&str, &[f64])]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, CHART_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(chart_err)?;
        let ymax = series
            .iter()
            .flat_map(|s| s.1.iter().copied())
            .fold(0f64, f64::max)
            * 100.0
            * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5f64..9.5f64, 0f64..ymax.max(1.0))
            .map_err(chart_err)?;
        chart
            .configure_mesh()
            .x_labels(10)
            .x_label_formatter(&|x| {
                let r = x.round();
                if (x - r).abs() < 1e-6 && (0.0..=9.0).contains(&r) {
                    format!("{}%", (r as i32 + 1) * 10)
                } else {
                    String::new()
                }
            })
            .x_desc("items by training popularity, most popular decile first")
            .y_desc("% of all")
            .light_line_style(WHITE)
            .draw()
            .map_err(chart_err)?;
        let w = 0.8 / series.len().max(1) as f64;
        for (n, (label, vals)) in series.iter().enumerate() {
            let c = COLORS[n % COLORS.len()];
            chart
                .draw_series(vals.iter().enumerate().map(|(d, &v)| {
                    let x = d as f64 - 0.4 + n as f64 * w;
                    Rectangle::new([(x, 0.0), (x + w * 0.95, v * 100.0)], c.filled())
                }))
                .map_err(chart_err)?
                .label(*label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        }
        legend_and_present(&mut chart, &root)?;
    }
    Ok(svg)
}

/// Text for HTML element content and attribute values.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}

/// Lower is better for these metrics.
fn lower_is_better(metric: &str) -> bool {
    matches!(metric, "rmse" | "mae")
        || metric.starts_with("test_rmse")
        || metric.starts_with("test_mae")
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1180px;padding:0 1rem;color:#222}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
.sub{color:#666;margin-top:0}table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.25rem .6rem;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}.better{color:#1a7f37;font-weight:600}.worse{color:#b42318}
.charts{display:flex;flex-wrap:wrap;gap:1rem}.charts svg{border:1px solid #eee}
.users{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:1rem}
.user{border:1px solid #ddd;border-radius:6px;padding:.6rem .9rem}.user h3{margin:.2rem 0 .4rem;font-size:1rem}
.user ol,.user ul{margin:.2rem 0 .6rem;padding-left:1.4rem}.user li{margin:.1rem 0}.hit{background:#dcfce7}
.muted{color:#777}code{background:#f4f4f4;padding:0 .2rem}";

impl Report {
    fn title(&self, id: &str) -> String {
        match self.titles.get(id) {
            Some(t) => format!("{} <span class=\"muted\">({})</span>", esc(t), esc(id)),
            None => esc(id),
        }
    }

    /// The learning-curve charts that have data, as SVG.
    fn curves(&self) -> Result<Vec<String>> {
        let h = &self.meta.history;
        let kept = (self.meta.best_epoch > 0 && self.meta.best_epoch < h.len())
            .then_some(self.meta.best_epoch as f64);
        type Get = fn(&crate::train::EpochReport) -> Option<f64>;
        let series = |named: &[(&str, Get)]| -> Vec<(String, Vec<(f64, f64)>)> {
            named
                .iter()
                .map(|(name, get)| {
                    let pts: Vec<(f64, f64)> = h
                        .iter()
                        .filter_map(|r| get(r).map(|v| (r.epoch as f64, v)))
                        .collect();
                    (name.to_string(), pts)
                })
                .filter(|(_, pts)| !pts.is_empty())
                .collect()
        };
        let mut out = Vec::new();
        let rmse = series(&[
            ("train RMSE", |r| r.train_rmse),
            ("validation RMSE", |r| r.valid_rmse),
        ]);
        if !rmse.is_empty() {
            out.push(line_chart("Error per epoch", "epoch", "RMSE", &rmse, kept)?);
        }
        let loss = series(&[("train loss", |r| r.train_loss)]);
        if !loss.is_empty() {
            out.push(line_chart(
                "Training loss per epoch",
                "epoch",
                "weighted squared loss",
                &loss,
                kept,
            )?);
        }
        let rank = series(&[
            ("validation P@10", |r| r.valid_precision),
            ("validation nDCG@10", |r| r.valid_ndcg),
            ("train pair accuracy (AUC)", |r| r.train_auc),
        ]);
        if !rank.is_empty() {
            out.push(line_chart(
                "Ranking quality per epoch",
                "epoch",
                "",
                &rank,
                kept,
            )?);
        }
        let mut time = series(&[("gradient pass", |r| Some(r.seconds))]);
        // Wall clock per epoch (validation and loss included), from the
        // cumulative times when the file has them.
        let wall: Vec<(f64, f64)> = h
            .iter()
            .scan(0f64, |prev, r| {
                Some(r.elapsed_seconds.map(|e| {
                    let d = e - *prev;
                    *prev = e;
                    (r.epoch as f64, d)
                }))
            })
            .flatten()
            .collect();
        if !wall.is_empty() {
            time.push(("whole epoch".into(), wall));
        }
        if !time.is_empty() {
            out.push(line_chart(
                "Time per epoch",
                "epoch",
                "seconds",
                &time,
                None,
            )?);
        }
        Ok(out)
    }

    /// The whole page.
    pub fn html(&self) -> Result<String> {
        let m = &self.meta;
        let mut s = String::with_capacity(1 << 18);
        let name = esc(&self.model_name);
        let _ = writeln!(
            s,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>recsys report: {name}</title><style>{STYLE}</style></head><body>\n\
             <h1>Model report: {name}</h1>\n<p class=\"sub\">{} {}· {} users × {} items · k = {} · \
             {} training rows · created {} · recsys {}</p>",
            esc(&m.algorithm),
            if m.implicit {
                "(implicit feedback) "
            } else {
                ""
            },
            m.n_users,
            m.n_items,
            m.factors,
            m.data.rows,
            esc(&m.created),
            esc(&m.recsys_version),
        );
        let _ = writeln!(
            s,
            "<details><summary>Data and parameters</summary><p>Sources: {}<br>Fingerprint: \
             <code>{}</code></p><pre>{}</pre></details>",
            esc(&m.data.sources.join(", ")),
            esc(&m.data.fingerprint),
            esc(&serde_json::to_string_pretty(&m.params).unwrap_or_default())
        );

        // Learning curves.
        s.push_str("<section id=\"curves\"><h2>Learning curves</h2>\n");
        let curves = self.curves()?;
        if m.history.is_empty() {
            s.push_str("<p class=\"muted\">The model's metadata holds no per-epoch history.</p>\n");
        } else {
            let _ = write!(
                s,
                "<p>{} epoch(s) run; the factors of epoch {} were kept.{}</p>\n<div class=\"charts\">",
                m.history.len(),
                m.best_epoch,
                if m.history.iter().all(|r| r.valid_rmse.is_none() && r.valid_ndcg.is_none()) {
                    " No validation curve: train with <code>--validation F</code> to record one."
                } else {
                    ""
                }
            );
            for c in &curves {
                s.push_str(c);
            }
            s.push_str("</div>\n");
        }
        s.push_str("</section>\n");

        // Final metrics.
        s.push_str("<section id=\"metrics\"><h2>Metrics</h2>\n");
        if self.tested {
            let _ = writeln!(
                s,
                "<p>On the test set ({} users ranked). The baseline recommends the most popular \
                 items the user has not seen (training counts); for RMSE and MAE it predicts the \
                 global mean rating.</p>",
                self.ranking_users
            );
        } else {
            s.push_str(
                "<p>As stored in the model at training time. Give <code>--test PATH</code> to \
                 measure on a test set next to the popularity baseline.</p>\n",
            );
        }
        s.push_str("<table id=\"metrics-table\"><thead><tr><th>metric</th><th>model</th>");
        if self.tested {
            s.push_str("<th>popularity baseline</th><th>model vs baseline</th>");
        }
        s.push_str("</tr></thead><tbody>\n");
        for r in &self.metrics {
            let _ = write!(
                s,
                "<tr data-metric=\"{}\"><td>{}</td><td class=\"num\">{}</td>",
                esc(&r.metric),
                esc(&r.metric),
                fmt_num(r.model)
            );
            if self.tested {
                match r.baseline {
                    Some(b) => {
                        let better = if lower_is_better(&r.metric) {
                            r.model < b
                        } else {
                            r.model > b
                        };
                        let rel = if b.abs() > 1e-12 {
                            format!("{:+.1}%", (r.model / b - 1.0) * 100.0)
                        } else {
                            "–".into()
                        };
                        let _ = write!(
                            s,
                            "<td class=\"num baseline\">{}</td><td class=\"num {}\">{rel}</td>",
                            fmt_num(b),
                            if better { "better" } else { "worse" }
                        );
                    }
                    None => s.push_str("<td></td><td></td>"),
                }
            }
            s.push_str("</tr>\n");
        }
        s.push_str("</tbody></table></section>\n");

        // Coverage and popularity.
        let c = &self.coverage;
        let _ = write!(
            s,
            "<section id=\"coverage\"><h2>Catalogue coverage and popularity</h2>\n<p>Top-{} lists \
             of {} users (training items excluded): <b id=\"coverage-value\">{:.1}%</b> of the \
             catalogue ({} of {} items) is recommended to someone; {:.1}% of the list slots go \
             to the 10% most popular items, which hold {:.1}% of the training interactions. \
             Gini of the recommendation counts: {:.3} (0 = every item equally often).</p>\n\
             <div class=\"charts\">",
            c.n,
            c.users,
            c.coverage * 100.0,
            c.distinct_items,
            m.n_items,
            c.recommended_by_decile.first().unwrap_or(&0.0) * 100.0,
            c.training_by_decile.first().unwrap_or(&0.0) * 100.0,
            c.gini
        );
        s.push_str(&decile_chart(
            "Where recommendations go",
            &[
                ("recommended", &c.recommended_by_decile),
                ("training interactions", &c.training_by_decile),
            ],
        )?);
        s.push_str("</div>\n<table id=\"top-items\"><thead><tr><th>most recommended</th><th>times</th><th>popularity rank</th></tr></thead><tbody>\n");
        for (id, times, rank) in &c.top_items {
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td class=\"num\">{times}</td><td class=\"num\">{rank}</td></tr>",
                self.title(id)
            );
        }
        s.push_str("</tbody></table></section>\n");

        // Sample users.
        s.push_str("<section id=\"users\"><h2>Sample users</h2>\n");
        if self.tested {
            s.push_str("<p>Recommendations that are among the user's held-out items are <span class=\"hit\">highlighted</span>.</p>\n");
        }
        s.push_str("<div class=\"users\">\n");
        const HISTORY_SHOWN: usize = 15;
        for u in &self.users {
            let held: BTreeSet<&str> = u.held_out.iter().map(String::as_str).collect();
            let hits = u
                .recommendations
                .iter()
                .filter(|r| held.contains(r.0.as_str()))
                .count();
            let _ = write!(
                s,
                "<div class=\"user\" data-user=\"{}\"><h3>User {}</h3><p class=\"muted\">{} training \
                 items{}</p><b>Recommended</b><ol class=\"recs\">",
                esc(&u.user),
                esc(&u.user),
                u.history.len(),
                if self.tested {
                    format!(", {} held out, {hits} hit(s) in the top {}", u.held_out.len(), c.n)
                } else {
                    String::new()
                }
            );
            for (id, score) in &u.recommendations {
                let _ = write!(
                    s,
                    "<li data-item=\"{}\"{}>{} <span class=\"muted\">{score:.3}</span></li>",
                    esc(id),
                    if held.contains(id.as_str()) {
                        " class=\"hit\""
                    } else {
                        ""
                    },
                    self.title(id)
                );
            }
            s.push_str("</ol><b>History</b><ul class=\"history\">");
            for id in u.history.iter().take(HISTORY_SHOWN) {
                let _ = write!(s, "<li>{}</li>", self.title(id));
            }
            if u.history.len() > HISTORY_SHOWN {
                let _ = write!(
                    s,
                    "<li class=\"muted\">… and {} more</li>",
                    u.history.len() - HISTORY_SHOWN
                );
            }
            s.push_str("</ul></div>\n");
        }
        s.push_str("</div></section>\n");

        // The history as numbers.
        if !m.history.is_empty() {
            s.push_str("<section id=\"history\"><h2>Per-epoch history</h2><details><summary>Table</summary><table><thead><tr><th>epoch</th><th>train RMSE</th><th>valid RMSE</th><th>train loss</th><th>train AUC</th><th>valid P@10</th><th>valid nDCG@10</th><th>seconds</th><th>elapsed</th></tr></thead><tbody>\n");
            let o = |v: Option<f64>| v.map(fmt_num).unwrap_or_default();
            for r in &m.history {
                let _ = writeln!(
                    s,
                    "<tr><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.3}</td><td class=\"num\">{}</td></tr>",
                    r.epoch,
                    o(r.train_rmse),
                    o(r.valid_rmse),
                    o(r.train_loss),
                    o(r.train_auc),
                    o(r.valid_precision),
                    o(r.valid_ndcg),
                    r.seconds,
                    r.elapsed_seconds.map(|e| format!("{e:.3}")).unwrap_or_default()
                );
            }
            s.push_str("</tbody></table></details></section>\n");
        }
        s.push_str("</body></html>\n");
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::interactions::IdMap;
    use std::sync::Arc;

    fn interactions(pairs: &[(u32, u32)]) -> Interactions {
        Interactions {
            users: pairs.iter().map(|p| p.0).collect(),
            items: pairs.iter().map(|p| p.1).collect(),
            values: vec![1.0; pairs.len()],
            times: None,
            user_ids: Arc::new(IdMap::from_ints((0..20).collect())),
            item_ids: Arc::new(IdMap::from_ints((100..130).collect())),
        }
    }

    fn model_and_test() -> (Model, Interactions) {
        let mut train = Vec::new();
        let mut test = Vec::new();
        for u in 0..20u32 {
            for i in 0..30u32 {
                // A popularity slope (low items are popular) with some taste.
                let h = (u * 7 + i * 13) % 10;
                if i < 30 - u.min(29) && h < 6 - (i / 6).min(5) {
                    train.push((u, i));
                } else if h == 9 {
                    test.push((u, i));
                }
            }
        }
        let m = crate::train::als::AlsParams {
            factors: 4,
            epochs: 3,
            threads: Some(1),
            ..Default::default()
        }
        .check()
        .unwrap()
        .fit(&interactions(&train), None, &mut |_| {})
        .unwrap();
        (m, interactions(&test))
    }

    #[test]
    fn popularity_baseline_matches_a_slow_reference() {
        let (m, test) = model_and_test();
        let k = 5;
        let got = popularity_baseline(&m, &test, &[k], None);
        // Reference: per test user, the unseen items by count (ties: lower
        // index first), the top k, hits / k.
        let pop = m.item_popularity();
        let (mut sum, mut users) = (0.0, 0);
        for u in 0..m.n_users() as u32 {
            let ext = m.user_ids().key(u).to_string();
            let positives: Vec<u32> = (0..test.len())
                .filter(|&n| test.user_ids.key(test.users[n]).to_string() == ext)
                .filter_map(|n| {
                    m.item_ids()
                        .get(&test.item_ids.key(test.items[n]).to_string())
                })
                .filter(|i| !m.seen(u).contains(i))
                .collect();
            if positives.is_empty() {
                continue;
            }
            let mut cand: Vec<u32> = (0..m.n_items() as u32)
                .filter(|i| !m.seen(u).contains(i))
                .collect();
            cand.sort_by(|&a, &b| pop[b as usize].total_cmp(&pop[a as usize]).then(a.cmp(&b)));
            let hits = cand
                .iter()
                .take(k)
                .filter(|i| positives.contains(i))
                .count();
            sum += hits as f64 / k as f64;
            users += 1;
        }
        assert!(users > 0);
        assert_eq!(got.users, users);
        let want = sum / users as f64;
        assert!(
            (got.values["precision@5"] - want).abs() < 1e-12,
            "{got:?} vs {want}"
        );
    }

    #[test]
    fn the_page_has_every_section_and_counts_add_up() {
        let (m, test) = model_and_test();
        let titles: HashMap<String, String> = [(
            "100".to_string(),
            "A <b>bold</b> & \"quoted\" film".to_string(),
        )]
        .into();
        let o = ReportOptions {
            n: 5,
            ks: vec![5],
            sample_users: 3,
            ..Default::default()
        };
        let r = build(&m, "m.safetensors", Some(&test), Some(&titles), &o).unwrap();
        let total: f64 = r.coverage.recommended_by_decile.iter().sum();
        assert!((total - 1.0).abs() < 1e-9);
        assert_eq!(r.coverage.users, 20);
        assert!(r.coverage.gini >= 0.0 && r.coverage.gini < 1.0);
        assert_eq!(r.users.len(), 3);
        assert!(r
            .users
            .iter()
            .all(|u| u.recommendations.len() == 5 && !u.held_out.is_empty()));
        let html = r.html().unwrap();
        for part in [
            "id=\"curves\"",
            "id=\"metrics-table\"",
            "precision@5",
            "id=\"coverage\"",
            "class=\"user\"",
        ] {
            assert!(html.contains(part), "{part}");
        }
        assert!(!html.contains("<b>bold</b>"), "titles are escaped");
        // Unknown users asked for by name are an error, not a panic.
        let o = ReportOptions {
            users: vec!["nobody".into()],
            ..Default::default()
        };
        assert!(matches!(
            build(&m, "m", None, None, &o),
            Err(Error::UnknownUser(_))
        ));
        assert!(ReportOptions {
            n: 0,
            ..Default::default()
        }
        .check()
        .is_err());
    }

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn charts_are_svg_with_their_labels() {
        let svg = line_chart(
            "Error per epoch",
            "epoch",
            "RMSE",
            &[
                ("train".into(), vec![(1.0, 1.0), (2.0, 0.9), (3.0, 0.85)]),
                (
                    "validation".into(),
                    vec![(1.0, 1.1), (2.0, 0.95), (3.0, 0.96)],
                ),
            ],
            Some(2.0),
        )
        .unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        for label in ["Error per epoch", "train", "validation", "kept epoch"] {
            assert!(svg.contains(label), "{label} missing");
        }
        let bars = decile_chart(
            "Where",
            &[("a", &[0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])],
        )
        .unwrap();
        assert!(bars.contains("<rect") && bars.contains("10%"));
    }

    #[test]
    fn a_flat_or_empty_series_still_gets_a_range() {
        assert_eq!(padded(std::iter::empty()), (0.0, 1.0));
        let (a, b) = padded([2.0, 2.0].into_iter());
        assert!(a < 2.0 && b > 2.0);
    }
}
