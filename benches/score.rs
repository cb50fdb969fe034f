//! Scoring speed on an ml-1m implicit ALS model (k = 64): recommend-all
//! (users/s) and single-user top-10 latency (criterion's estimate, plus
//! p50/p99 over 5,000 random users, printed), a batch of 100 users scored
//! together against one by one, and single-user latency on a generated
//! 200,000-item catalogue, each next to its arithmetic bound (items × k
//! multiply-adds at 16 per cycle, at `RECSYS_GHZ`, default 2.6).
//! `cargo bench --bench score`.

use std::path::Path;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use std::sync::Arc;

use recsys::data::synth::{generate, SynthParams};
use recsys::data::{load, LoadOptions};
use recsys::interactions::{IdMap, Interactions};
use recsys::model::Model;
use recsys::score::{self, batch, ivf, Filters, RecommendOptions};
use recsys::train::als::AlsParams;

fn model() -> Model {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/bench/splits/ml-1m_implicit_train.csv");
    let x = load(
        &[path.to_string_lossy().into_owned()],
        &LoadOptions::default(),
    )
    .expect("ml-1m implicit split")
    .0;
    AlsParams {
        factors: 64,
        ..Default::default()
    }
    .check()
    .unwrap()
    .fit(&x, None, &mut |_| {})
    .unwrap()
}

/// An implicit ALS model over a generated catalogue of `items` items (one
/// sweep: scoring cost does not depend on how well it fits).
fn catalogue_model(items: usize) -> Model {
    let users = 20_000;
    let s = generate(&SynthParams {
        users,
        items,
        ratings: 1_000_000,
        ..SynthParams::default()
    })
    .expect("synthetic data");
    let x = Interactions {
        users: s.users,
        items: s.items,
        values: s.ratings,
        times: None,
        user_ids: Arc::new(IdMap::from_ints((0..users as i64).collect())),
        item_ids: Arc::new(IdMap::from_ints((0..items as i64).collect())),
    };
    AlsParams {
        factors: 64,
        epochs: 1,
        ..Default::default()
    }
    .check()
    .unwrap()
    .fit(&x, None, &mut |_| {})
    .unwrap()
}

/// Microseconds of `items × k` multiply-adds at 16 per cycle.
fn bound_us(items: usize, k: usize) -> f64 {
    let ghz: f64 = std::env::var("RECSYS_GHZ")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.6);
    (items * k) as f64 / 16.0 / (ghz * 1e3)
}

/// p50/p99 single-user exact top-10 over 5,000 random users, printed with
/// the ratio of p50 to the arithmetic bound.
fn single_user_latency(name: &str, m: &Model, rng: &mut rand::rngs::StdRng) {
    let opts = RecommendOptions::default();
    let mut lat = Vec::new();
    for _ in 0..5000 {
        let u = m
            .user_ids()
            .key(rng.gen_range(0..m.n_users() as u32))
            .to_string();
        let t = Instant::now();
        std::hint::black_box(score::recommend(m, &u, &opts).unwrap());
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let (p50, p99) = percentiles(lat);
    let b = bound_us(m.n_items(), m.factors());
    println!(
        "single-user top-10, exact, {name} ({} items, k={}): p50 {p50:.1} µs, p99 {p99:.1} µs; bound {b:.1} µs, p50 {:.2}× it",
        m.n_items(),
        m.factors(),
        p50 / b
    );
}

fn percentiles(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[v.len() * 99 / 100])
}

fn bench(c: &mut Criterion) {
    let m = model();
    let users: Vec<u32> = (0..m.n_users() as u32).collect();
    let f = Filters {
        exclude_seen: true,
        blocked: None,
    };
    let mut g = c.benchmark_group("score-ml1m");
    g.sample_size(20);
    g.throughput(Throughput::Elements(users.len() as u64));
    g.bench_function("recommend-all/top10/k=64", |b| {
        b.iter(|| batch::recommend_all(&m, &users, 10, &f, &mut |_| Ok(())).unwrap())
    });
    g.throughput(Throughput::Elements(1));
    let opts = RecommendOptions::default();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    g.bench_function("recommend-one/top10/k=64", |b| {
        b.iter(|| {
            let u = m
                .user_ids()
                .key(rng.gen_range(0..m.n_users() as u32))
                .to_string();
            score::recommend(&m, &u, &opts).unwrap()
        })
    });
    // A request of 100 users: scored together (blocked products) and one
    // by one, in the same run.
    let batch_ids: Vec<String> = (0..100)
        .map(|_| {
            m.user_ids()
                .key(rng.gen_range(0..m.n_users() as u32))
                .to_string()
        })
        .collect();
    let ids: Vec<&str> = batch_ids.iter().map(String::as_str).collect();
    g.throughput(Throughput::Elements(ids.len() as u64));
    g.bench_function("batch-100/together", |b| {
        b.iter(|| score::recommend_many(&m, &ids, &opts))
    });
    g.bench_function("batch-100/one-by-one", |b| {
        b.iter(|| {
            ids.iter()
                .map(|u| score::recommend(&m, u, &opts))
                .collect::<Vec<_>>()
        })
    });
    g.finish();
    single_user_latency("ml-1m", &m, &mut rng);
    single_user_latency("generated", &catalogue_model(200_000), &mut rng);

    // The IVF index on ml-1m: recall@10 against exact, and latency.
    let idx = ivf::IvfIndex::build(
        m.item_factors(),
        m.factors(),
        ivf::default_clusters(m.n_items()),
        42,
    )
    .unwrap();
    let users: Vec<u32> = (0..1000)
        .map(|_| rng.gen_range(0..m.n_users() as u32))
        .collect();
    for probe in [4usize, 8, 16, 32] {
        let (mut hit, mut tot) = (0usize, 0usize);
        let mut lat = Vec::new();
        for &u in &users {
            let exact: Vec<u32> = score::recommend_index(&m, u, 10, &f)
                .into_iter()
                .map(|p| p.0)
                .collect();
            let t = Instant::now();
            let approx = score::recommend_index_ivf(&m, &idx, u, 10, &f, probe);
            lat.push(t.elapsed().as_secs_f64() * 1e6);
            hit += approx.iter().filter(|p| exact.contains(&p.0)).count();
            tot += exact.len();
        }
        let (p50, p99) = percentiles(lat);
        println!(
            "ml-1m IVF ({} lists) probe {probe}: recall@10 {:.4}, p50 {p50:.1} µs, p99 {p99:.1} µs",
            idx.n_clusters(),
            hit as f64 / tot as f64
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
