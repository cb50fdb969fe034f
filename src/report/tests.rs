use super::charts::{decile_chart, line_chart, padded};
use super::html::esc;
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
