//! [`Report::html`]: the page itself (inline CSS and SVG, no script).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::charts::{decile_chart, line_chart};
use super::Report;
use crate::error::Result;

/// Text for HTML element content and attribute values.
pub(super) fn esc(s: &str) -> String {
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
