//! SGD throughput on the ml-1m peer split at k = 64: recsys with 1 and 2
//! threads, and LIBMF (through the `libmf` crate) on the same data in the
//! same run. Throughput is ratings per second per epoch.
//!
//! `cargo bench --bench sgd`; build LIBMF with SIMD as its authors intend:
//! `CXXFLAGS="-DUSEAVX -mavx -march=native" cargo bench --bench sgd`.

use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use recsys::data::{load, LoadOptions};
use recsys::train::sgd::SgdParams;

const EPOCHS: usize = 20;
const K: usize = 64;

fn ml1m_train() -> recsys::interactions::Interactions {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/bench/splits/ml-1m_explicit_train.csv");
    load(
        &[path.to_string_lossy().into_owned()],
        &LoadOptions::default(),
    )
    .expect("ml-1m split")
    .0
}

fn bench(c: &mut Criterion) {
    let x = ml1m_train();
    let mut g = c.benchmark_group("sgd-ml1m");
    g.sample_size(10);
    g.throughput(Throughput::Elements((x.len() * EPOCHS) as u64));
    for threads in [1usize, 2] {
        let p = SgdParams::default()
            .factors(K)
            .epochs(EPOCHS)
            .threads(Some(threads))
            .check()
            .unwrap();
        g.bench_with_input(
            BenchmarkId::new("recsys", format!("k={K}/threads={threads}")),
            &p,
            |b, p| b.iter(|| p.fit(&x, None, &mut |_| {}).unwrap()),
        );
    }
    let mut m = libmf::Matrix::new();
    for n in 0..x.len() {
        m.push(x.users[n] as i32, x.items[n] as i32, x.values[n]);
    }
    for threads in [1i32, 2] {
        g.bench_with_input(
            BenchmarkId::new("libmf", format!("k={K}/threads={threads}")),
            &threads,
            |b, &t| {
                b.iter(|| {
                    libmf::Model::params()
                        .factors(K as i32)
                        .iterations(EPOCHS as i32)
                        .threads(t)
                        .quiet(true)
                        .fit(&m)
                        .unwrap()
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
