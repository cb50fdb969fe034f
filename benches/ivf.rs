//! Approximate top-10 with the IVF index against an exact scan, on the item
//! factors of a 200,000-item catalogue: implicit ALS (k = 64, 5 sweeps) on
//! seeded synthetic data (20,000 users, ~2M interactions).
//! `cargo bench --bench ivf`.
//!
//! Prints the index build time and, per `probe`, recall@10 against the
//! exact top-10 over 1,000 users and the mean fraction of items scored;
//! criterion times a single query (one user per iteration, cycling through
//! the same 1,000 users) for `exact` and `ivf/probe=P`.

use std::time::Instant;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use recsys::data::synth::{generate, SynthParams};
use recsys::interactions::{IdMap, Interactions};
use recsys::model::Model;
use recsys::score::ivf::{default_clusters, IvfIndex};
use recsys::score::top_n;
use recsys::train::als::AlsParams;
use recsys::train::kernels::dot;

const USERS: usize = 20_000;
const ITEMS: usize = 200_000;
const RATINGS: usize = 2_000_000;
const K: usize = 64;
const N: usize = 10;
const QUERIES: usize = 1_000;
const PROBES: [usize; 5] = [20, 40, 80, 160, 320];

fn model() -> Model {
    let t = Instant::now();
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
        epochs: std::env::var("ALS_EPOCHS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5),
        ..Default::default()
    }
    .check()
    .expect("ALS params")
    .fit(&x, None, &mut |_| {})
    .expect("ALS fit");
    println!("ALS: {:.1} s", t.elapsed().as_secs_f64());
    m
}

fn exact(q: &[f32], f: &[f32]) -> Vec<(u32, f32)> {
    top_n(
        f.chunks_exact(q.len())
            .enumerate()
            .map(|(i, row)| (i as u32, dot(q, row))),
        N,
    )
}

fn bench(c: &mut Criterion) {
    let m = model();
    let f = m.item_factors();
    let n_items = m.n_items();
    let clusters = default_clusters(n_items);
    let t = Instant::now();
    let idx = IvfIndex::build(f, K, clusters, 42).expect("IVF build");
    let sizes: Vec<usize> = (0..clusters).map(|j| idx.list(j).len()).collect();
    println!(
        "IVF build: {clusters} lists over {n_items} items in {:.2} s (list sizes: max {}, empty {})",
        t.elapsed().as_secs_f64(),
        sizes.iter().max().unwrap_or(&0),
        sizes.iter().filter(|&&s| s == 0).count(),
    );

    {
        let mut norms: Vec<f32> = f.chunks_exact(K).map(|r| dot(r, r).sqrt()).collect();
        norms.sort_by(|a, b| a.total_cmp(b));
        let p = |q: f64| norms[((norms.len() - 1) as f64 * q) as usize];
        println!(
            "DIAG item norms p1 {} p10 {} p50 {} p90 {} p99 {} max {}",
            p(0.01),
            p(0.1),
            p(0.5),
            p(0.9),
            p(0.99),
            p(1.0)
        );
        let mut s = sizes.clone();
        s.sort();
        let p = |q: f64| s[((s.len() - 1) as f64 * q) as usize];
        println!(
            "DIAG list sizes p10 {} p50 {} p90 {} p99 {}",
            p(0.1),
            p(0.5),
            p(0.9),
            p(0.99)
        );
        let mut list_of = vec![0usize; n_items];
        for j in 0..clusters {
            for &i in idx.list(j) {
                list_of[i as usize] = j;
            }
        }
        let mut lens = Vec::new();
        let mut distinct = std::collections::HashSet::new();
        for j in 0..QUERIES {
            let u = (j * m.n_users() / QUERIES) as u32;
            for (i, _) in exact(m.user_vector(u), f) {
                lens.push(sizes[list_of[i as usize]]);
                distinct.insert(i);
            }
        }
        lens.sort();
        println!(
            "DIAG sizes of lists holding exact top-10: p10 {} p50 {} p90 {}; distinct top items {}",
            lens[lens.len() / 10],
            lens[lens.len() / 2],
            lens[lens.len() * 9 / 10],
            distinct.len()
        );
    }
    // Users spread over the whole id range.
    let users: Vec<u32> = (0..QUERIES)
        .map(|j| (j * m.n_users() / QUERIES) as u32)
        .collect();
    let truth: Vec<Vec<(u32, f32)>> = users.iter().map(|&u| exact(m.user_vector(u), f)).collect();
    let none = |_: u32| false;
    for probe in PROBES {
        let mut hits = 0usize;
        let mut scanned = 0usize;
        let mut hits_seen = 0usize;
        for (&u, want) in users.iter().zip(&truth) {
            let got = idx.search(m.user_vector(u), f, None, N, probe, &none);
            hits += got
                .iter()
                .filter(|(i, _)| want.iter().any(|w| w.0 == *i))
                .count();
            let seen = m.seen(u);
            let sk = |i: u32| seen.binary_search(&i).is_ok();
            let w2 = top_n(
                f.chunks_exact(K)
                    .enumerate()
                    .filter(|(i, _)| !sk(*i as u32))
                    .map(|(i, r)| (i as u32, dot(m.user_vector(u), r))),
                N,
            );
            let g2 = idx.search(m.user_vector(u), f, None, N, probe, &sk);
            hits_seen += g2
                .iter()
                .filter(|(i, _)| w2.iter().any(|w| w.0 == *i))
                .count();
            // Items scored = what an item counter in `skip` sees.
            let counted = std::cell::Cell::new(0usize);
            let count = |_: u32| {
                counted.set(counted.get() + 1);
                false
            };
            idx.search(m.user_vector(u), f, None, N, probe, &count);
            scanned += counted.get();
        }
        println!(
            "DIAG seen-excluded recall {:.4}",
            hits_seen as f64 / (QUERIES * N) as f64
        );
        println!(
            "probe {probe:>4}/{clusters}: recall@{N} {:.4}, items scored {:.1}% ({QUERIES} users)",
            hits as f64 / (QUERIES * N) as f64,
            100.0 * scanned as f64 / (QUERIES * n_items) as f64
        );
    }

    let mut g = c.benchmark_group("ivf-200k");
    let sweep = format!("k={K}/items={n_items}");
    g.bench_function(BenchmarkId::new("exact", &sweep), |b| {
        let mut j = 0usize;
        b.iter(|| {
            j = (j + 1) % QUERIES;
            exact(m.user_vector(users[j]), f)
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
