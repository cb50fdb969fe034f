//! Scoring speed on an ml-1m implicit ALS model (k = 64): recommend-all
//! (users/s) and single-user top-10 latency (criterion's estimate, plus
//! p50/p99 over 5,000 random users, printed), a batch of 100 users scored
//! together against one by one, and single-user latency on a generated
//! 200,000-item catalogue, each next to its arithmetic bound (items × k
//! multiply-adds at 16 per cycle at the measured clock, or `RECSYS_GHZ`),
//! and the scan alone by working-set size.
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

/// Microseconds of `items × k` multiply-adds at 16 per cycle (two 8-lane
/// fused multiply-adds) at the measured clock.
fn bound_us(items: usize, k: usize) -> f64 {
    (items * k) as f64 / 16.0 / (clock_ghz() * 1e3)
}

/// The core's clock in GHz, from a chain of dependent integer adds (one per
/// cycle on any x86-64), the best of five runs; `RECSYS_GHZ` overrides it
/// (and is needed off x86-64, where 2.6 is assumed).
fn clock_ghz() -> f64 {
    static GHZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *GHZ.get_or_init(|| {
        std::env::var("RECSYS_GHZ")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(measured_ghz)
    })
}

#[cfg(target_arch = "x86_64")]
fn measured_ghz() -> f64 {
    let adds: u64 = 400_000_000;
    let best = (0..5)
        .map(|_| {
            let t = Instant::now();
            let mut n = adds / 4;
            let mut x = 0u64;
            // SAFETY: register arithmetic only, no memory access.
            unsafe {
                std::arch::asm!(
                    "2:",
                    "add {x}, 1",
                    "add {x}, 1",
                    "add {x}, 1",
                    "add {x}, 1",
                    "sub {n}, 1",
                    "jnz 2b",
                    x = inout(reg) x,
                    n = inout(reg) n,
                );
            }
            std::hint::black_box((x, n));
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    adds as f64 / best / 1e9
}

#[cfg(not(target_arch = "x86_64"))]
fn measured_ghz() -> f64 {
    2.6
}

/// The scan alone (`row_dots` over every row) for working sets from L1 to
/// past L2, in multiply-adds per cycle: where the factors stop fitting a
/// cache level, the scan is bound by that level's bandwidth, not by
/// arithmetic.
fn scan_by_working_set() {
    let k = 64;
    let ghz = clock_ghz();
    println!("clock {ghz:.2} GHz (measured)");
    // Read between the cold scans, so the factors are out of cache as
    // between the requests of a service.
    let junk = vec![1u8; 4 << 20];
    for items in [96usize, 1_000, 3_494, 20_000] {
        let rows: Vec<f32> = (0..items * k).map(|v| (v % 97) as f32 / 97.0).collect();
        let p: Vec<f32> = (0..k).map(|v| (v % 13) as f32 / 13.0).collect();
        let mut out = vec![0f32; items];
        let reps = (20_000_000 / (items * k)).max(20);
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..reps {
                recsys::linalg::row_dots(&rows, &p, &mut out);
                std::hint::black_box(&mut out);
            }
            best = best.min(t.elapsed().as_secs_f64() / reps as f64);
        }
        let cold = |f: &mut dyn FnMut()| {
            let mut tot = 0f64;
            for _ in 0..200 {
                std::hint::black_box(junk.iter().map(|&b| u64::from(b)).sum::<u64>());
                let t = Instant::now();
                f();
                tot += t.elapsed().as_secs_f64();
            }
            tot / 200.0
        };
        let c32 = cold(&mut || recsys::linalg::row_dots(&rows, &p, &mut out));
        let mac = |t: f64| (items * k) as f64 / (t * ghz * 1e9);
        println!(
            "scan alone, {items} items × k={k} ({} KiB of factors): {:.2} µs, {:.1} multiply-adds per cycle (bound 16); {:.2} µs after 4 MiB of other data",
            items * k * 4 / 1024,
            best * 1e6,
            mac(best),
            c32 * 1e6
        );
    }
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
    // The scan alone (every item's score, no selection, ids or filters),
    // to tell the kernel's share of the latency from the rest.
    let mut scores = vec![0f32; m.n_items()];
    let mut lat = Vec::new();
    for _ in 0..5000 {
        let p = m.user_vector(rng.gen_range(0..m.n_users() as u32));
        let t = Instant::now();
        recsys::linalg::row_dots(m.item_factors(), p, &mut scores);
        std::hint::black_box(&scores);
        lat.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let (k50, _) = percentiles(lat);
    let b = bound_us(m.n_items(), m.factors());
    println!(
        "single-user top-10, exact, {name} ({} items, k={}): p50 {p50:.1} µs, p99 {p99:.1} µs (scan alone p50 {k50:.1} µs); bound {b:.1} µs, p50 {:.2}× it",
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
    scan_by_working_set();
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
