//! Approximate top-10 with the IVF index against an exact scan, on the item
//! factors of a 200,000-item catalogue: implicit ALS (k = 64, 5 sweeps) on
//! seeded synthetic data (20,000 users, ~2M interactions).
//! `cargo bench --bench ivf`.
//!
//! Prints the index build time, then per `probe` the recall@10 against the
//! exact top-10 over 1,000 users, plain and with each user's training items
//! skipped (as `recommend` does), and the mean share of the catalogue
//! scored. Criterion times one query per iteration (cycling through the
//! same 1,000 users): `exact` (score every item, `top_n`) and
//! `ivf/.../probe=P`.
//!
//! `IVF_BENCH_EPOCHS=15` trains with ALS's default 15 sweeps instead: its
//! top-10s are less dominated by a few popular items, so a given recall
//! needs a larger `probe`.

use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use recsys::data::synth::{generate, SynthParams};
use recsys::interactions::{IdMap, Interactions};
use recsys::linalg::dot;
use recsys::model::Model;
use recsys::score::ivf::{default_clusters, IvfIndex};
use recsys::score::top_n;
use recsys::train::als::AlsParams;

const USERS: usize = 20_000;
const ITEMS: usize = 200_000;
const RATINGS: usize = 2_000_000;
const K: usize = 64;
const N: usize = 10;
const QUERIES: usize = 1_000;
const PROBES: [usize; 6] = [10, 20, 40, 80, 160, 320];

fn model() -> Model {
    let epochs = std::env::var("IVF_BENCH_EPOCHS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let t = Instant::now();
    // A flatter popularity than the default (0.6, not 0.9) so that nearly
    // every one of the 200,000 items gets interactions.
    let s = generate(&SynthParams {
        users: USERS,
        items: ITEMS,
        ratings: RATINGS,
        rank: 16,
        popularity_exponent: 0.6,
        ..Default::default()
    })
    .expect("synthetic data");
    let x = Interactions {
        users: s.users,
        items: s.items,
        values: s.ratings,
        times: Some(s.times),
        user_ids: IdMap::from_ints((0..USERS as i64).collect()).into(),
        item_ids: IdMap::from_ints((0..ITEMS as i64).collect()).into(),
    }
    .compact();
    println!(
        "data: {} users × {} items, {} interactions ({:.1} s)",
        x.n_users(),
        x.n_items(),
        x.len(),
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let m = AlsParams {
        factors: K,
        epochs,
        ..Default::default()
    }
    .check()
    .expect("ALS params")
    .fit(&x, None, &mut |_| {})
    .expect("ALS fit");
    println!("ALS: {epochs} sweeps, {:.1} s", t.elapsed().as_secs_f64());
    m
}

/// The baseline: score every item, partial selection.
fn exact(q: &[f32], f: &[f32], skip: &dyn Fn(u32) -> bool) -> Vec<(u32, f32)> {
    top_n(
        f.chunks_exact(q.len())
            .enumerate()
            .filter(|&(i, _)| !skip(i as u32))
            .map(|(i, row)| (i as u32, dot(q, row))),
        N,
    )
}

fn overlap(got: &[(u32, f32)], want: &[(u32, f32)]) -> usize {
    got.iter()
        .filter(|g| want.iter().any(|w| w.0 == g.0))
        .count()
}

fn bench(c: &mut Criterion) {
    let m = model();
    let f = m.item_factors();
    let n_items = m.n_items();
    let clusters = default_clusters(n_items);
    let t = Instant::now();
    let idx = IvfIndex::build(f, K, clusters, 42).expect("IVF build");
    let mut sizes: Vec<usize> = (0..clusters).map(|j| idx.list(j).len()).collect();
    sizes.sort_unstable();
    println!(
        "IVF build: {clusters} lists over {n_items} items in {:.2} s \
         (items per list: median {}, p99 {}, max {})",
        t.elapsed().as_secs_f64(),
        sizes[clusters / 2],
        sizes[clusters * 99 / 100],
        sizes[clusters - 1],
    );

    // Users spread over the whole id range.
    let users: Vec<u32> = (0..QUERIES)
        .map(|j| (j * m.n_users() / QUERIES) as u32)
        .collect();
    let none = |_: u32| false;
    let truth: Vec<_> = users
        .iter()
        .map(|&u| {
            let seen = m.seen(u);
            let is_seen = |i: u32| seen.binary_search(&i).is_ok();
            (
                exact(m.user_vector(u), f, &none),
                exact(m.user_vector(u), f, &is_seen),
            )
        })
        .collect();
    for probe in PROBES {
        let (mut hits, mut hits_unseen, mut scored) = (0usize, 0usize, 0usize);
        for (&u, (want, want_unseen)) in users.iter().zip(&truth) {
            let q = m.user_vector(u);
            // `skip` sees every item the search scores: count them.
            let count = std::cell::Cell::new(0usize);
            let counting = |_: u32| {
                count.set(count.get() + 1);
                false
            };
            hits += overlap(&idx.search(q, f, None, N, probe, &counting), want);
            scored += count.get();
            let seen = m.seen(u);
            let is_seen = |i: u32| seen.binary_search(&i).is_ok();
            hits_unseen += overlap(&idx.search(q, f, None, N, probe, &is_seen), want_unseen);
        }
        let total = (QUERIES * N) as f64;
        println!(
            "probe {probe:>4}/{clusters}: recall@{N} {:.4} (seen items skipped: {:.4}), \
             items scored {:.2}% ({QUERIES} users)",
            hits as f64 / total,
            hits_unseen as f64 / total,
            100.0 * scored as f64 / (QUERIES * n_items) as f64
        );
    }

    let mut g = c.benchmark_group("ivf-200k");
    let sweep = format!("k={K}/items={n_items}");
    g.bench_function(BenchmarkId::new("exact", &sweep), |b| {
        let mut j = 0usize;
        b.iter(|| {
            j = (j + 1) % QUERIES;
            exact(m.user_vector(users[j]), f, &none)
        })
    });
    for probe in PROBES {
        g.bench_function(
            BenchmarkId::new("ivf", format!("{sweep}/C={clusters}/probe={probe}")),
            |b| {
                let mut j = 0usize;
                b.iter(|| {
                    j = (j + 1) % QUERIES;
                    idx.search(m.user_vector(users[j]), f, None, N, probe, &none)
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
