//! Implicit-feedback training on the ml-1m peer split (ratings ≥ 4 as
//! positives) at k = 64: implicit ALS (conjugate gradient and Cholesky), time
//! per sweep; BPR, time per epoch. `cargo bench --bench implicit`.

use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use recsys::data::{load, LoadOptions};
use recsys::train::als::{AlsParams, Solver};
use recsys::train::bpr::BprParams;

fn ml1m_implicit() -> recsys::interactions::Interactions {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/bench/splits/ml-1m_implicit_train.csv");
    load(
        &[path.to_string_lossy().into_owned()],
        &LoadOptions::default(),
    )
    .expect("ml-1m implicit split")
    .0
}

fn bench(c: &mut Criterion) {
    let x = ml1m_implicit();
    let mut g = c.benchmark_group("implicit-ml1m");
    g.sample_size(10);
    // One iteration = a 5-epoch fit (setup included); throughput counts
    // positives processed per second over the 5 epochs.
    const EPOCHS: usize = 5;
    g.throughput(Throughput::Elements((x.len() * EPOCHS) as u64));
    for threads in [1usize, 2] {
        for (name, solver) in [("als-cg", Solver::Cg), ("als-cholesky", Solver::Cholesky)] {
            let p = AlsParams {
                factors: 64,
                epochs: EPOCHS,
                solver,
                threads: Some(threads),
                ..Default::default()
            }
            .check()
            .unwrap();
            g.bench_with_input(
                BenchmarkId::new(name, format!("k=64/threads={threads}")),
                &p,
                |b, p| b.iter(|| p.fit(&x, None, &mut |_| {}).unwrap()),
            );
        }
        let p = BprParams {
            factors: 64,
            epochs: EPOCHS,
            threads: Some(threads),
            ..Default::default()
        }
        .check()
        .unwrap();
        g.bench_with_input(
            BenchmarkId::new("bpr", format!("k=64/threads={threads}")),
            &p,
            |b, p| b.iter(|| p.fit(&x, None, &mut |_| {}).unwrap()),
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
