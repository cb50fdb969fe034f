use std::collections::HashMap;
use std::path::Path;

use rand::rngs::StdRng;
use rand::SeedableRng;
use safetensors::tensor::{Dtype, TensorView};

use super::file::{T_CENTROIDS, T_INDPTR, T_ITEMS};
use super::*;
use crate::error::Error;
use crate::linalg::dot;
use ndarray_rand::rand_distr::{Distribution, StandardNormal};
use rand::Rng;

fn normal(rng: &mut StdRng, n: usize, sd: f32) -> Vec<f32> {
    (0..n)
        .map(|_| sd * <StandardNormal as Distribution<f32>>::sample(&StandardNormal, rng))
        .collect()
}

/// Items scattered around `centers` random centres (unit-scale
/// Gaussian centres, noise `sd`), with varied norms, as MF factors have.
fn clustered(n: usize, k: usize, centers: usize, sd: f32, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let c = normal(&mut rng, centers * k, 1.0);
    let mut out = Vec::with_capacity(n * k);
    for _ in 0..n {
        let j = rng.gen_range(0..centers);
        let scale = rng.gen_range(0.5f32..1.5);
        let noise = normal(&mut rng, k, sd);
        out.extend(
            c[j * k..(j + 1) * k]
                .iter()
                .zip(&noise)
                .map(|(a, e)| scale * (a + e)),
        );
    }
    out
}

/// The slow, obviously-correct reference: score everything, full sort.
fn brute_force(
    q: &[f32],
    f: &[f32],
    bias: Option<&[f32]>,
    n: usize,
    skip: &dyn Fn(u32) -> bool,
) -> Vec<(u32, f32)> {
    let k = q.len();
    let mut all: Vec<(u32, f32)> = f
        .chunks_exact(k)
        .enumerate()
        .filter(|&(i, _)| !skip(i as u32))
        .map(|(i, row)| (i as u32, dot(q, row) + bias.map_or(0.0, |b| b[i])))
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(n);
    all
}

#[test]
fn full_probe_equals_exact_top_n() {
    let (n, k) = (3000, 16);
    let f = clustered(n, k, 20, 0.5, 1);
    let bias = normal(&mut StdRng::seed_from_u64(2), n, 0.3);
    let idx = IvfIndex::build(&f, k, 40, 7).unwrap();
    let queries = normal(&mut StdRng::seed_from_u64(3), 20 * k, 1.0);
    let skip = |i: u32| i % 7 == 3;
    for q in queries.chunks_exact(k) {
        for top in [1usize, 10, 100, 5000] {
            let want = brute_force(q, &f, None, top, &|_| false);
            let got = idx.search(q, &f, None, top, idx.n_clusters(), &|_| false);
            assert_eq!(got, want, "n={top}");
            // probe beyond C is clamped to C.
            let got = idx.search(q, &f, None, top, usize::MAX, &|_| false);
            assert_eq!(got, want, "n={top}");
            let want = brute_force(q, &f, Some(&bias), top, &skip);
            let got = idx.search(q, &f, Some(&bias), top, idx.n_clusters(), &skip);
            assert_eq!(got, want, "n={top}, with bias and skip");
            assert!(got.iter().all(|&(i, _)| !skip(i)));
        }
    }
    assert!(idx
        .search(&queries[..k], &f, None, 0, 40, &|_| false)
        .is_empty());
}

#[test]
fn recall_is_high_at_a_modest_probe() {
    // 100 overlapping clusters (noise about as large as the spread of
    // the centres), queries near random items.
    let (n, k) = (20_000, 32);
    let f = clustered(n, k, 100, 0.8, 11);
    let c = default_clusters(n);
    assert_eq!(c, 566);
    let idx = IvfIndex::build(&f, k, c, 5).unwrap();
    let mut rng = StdRng::seed_from_u64(12);
    let queries: Vec<Vec<f32>> = (0..200)
        .map(|_| {
            let j = rng.gen_range(0..n);
            let noise = normal(&mut rng, k, 1.0);
            f[j * k..(j + 1) * k]
                .iter()
                .zip(&noise)
                .map(|(a, e)| a + e)
                .collect()
        })
        .collect();
    let truth: Vec<_> = queries
        .iter()
        .map(|q| brute_force(q, &f, None, 10, &|_| false))
        .collect();
    let recall = |probe: usize| {
        let hits: usize = queries
            .iter()
            .zip(&truth)
            .map(|(q, want)| {
                let got = idx.search(q, &f, None, 10, probe, &|_| false);
                got.iter().filter(|g| want.contains(g)).count()
            })
            .sum();
        hits as f64 / (10 * queries.len()) as f64
    };
    let curve: Vec<f64> = [1, 7, 28, c].into_iter().map(recall).collect();
    // Not trivially easy: one list finds a minority of the top 10.
    assert!(curve[0] < 0.5, "{curve:?}");
    // More lists never lose a hit (the probed lists are nested).
    assert!(curve.windows(2).all(|w| w[0] <= w[1]), "{curve:?}");
    // 5% of the lists (28 of 566) find nearly all of it (0.96 when written).
    assert!(curve[2] >= 0.93, "recall@10 at probe 28/{c}: {curve:?}");
    assert_eq!(curve[3], 1.0);
}

#[test]
fn every_item_is_in_exactly_one_list() {
    let (n, k) = (5000, 8);
    let f = clustered(n, k, 30, 0.3, 4);
    let idx = IvfIndex::build(&f, k, default_clusters(n), 1).unwrap();
    assert_eq!(idx.n_items(), n);
    assert_eq!(idx.factors(), k);
    let mut count = vec![0u32; n];
    for c in 0..idx.n_clusters() {
        let l = idx.list(c);
        assert!(
            l.windows(2).all(|w| w[0] < w[1]),
            "list {c} is not ascending"
        );
        l.iter().for_each(|&i| count[i as usize] += 1);
    }
    assert!(count.iter().all(|&c| c == 1));
    // Items are in the list of their nearest centroid.
    for c in 0..idx.n_clusters() {
        for &i in idx.list(c) {
            let x = &f[i as usize * k..(i as usize + 1) * k];
            let d = |j: usize| {
                let cj = &idx.centroids[j * k..(j + 1) * k];
                x.iter()
                    .zip(cj)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f32>()
            };
            let dc = d(c);
            assert!((0..idx.n_clusters()).all(|j| d(j) >= dc - 1e-3 * (1.0 + dc)));
        }
    }
}

#[test]
fn build_is_seeded_and_checks_its_inputs() {
    let (n, k) = (2000, 8);
    let f = clustered(n, k, 10, 0.3, 9);
    assert_eq!(
        IvfIndex::build(&f, k, 50, 3).unwrap(),
        IvfIndex::build(&f, k, 50, 3).unwrap()
    );
    assert!(IvfIndex::build(&f, 0, 50, 3).is_err());
    assert!(IvfIndex::build(&f[..f.len() - 1], k, 50, 3).is_err());
    assert!(IvfIndex::build(&[], k, 1, 3).is_err());
    assert!(IvfIndex::build(&f, k, 0, 3).is_err());
    assert!(IvfIndex::build(&f, k, n + 1, 3).is_err());
    let mut g = f.clone();
    g[5] = f32::NAN;
    assert!(IvfIndex::build(&g, k, 50, 3).is_err());
    // One list per item is allowed.
    let one_each = IvfIndex::build(&f[..20 * k], k, 20, 3).unwrap();
    assert_eq!(one_each.n_clusters(), 20);
    assert_eq!(default_clusters(0), 0);
    assert_eq!(default_clusters(1), 1);
    assert_eq!(default_clusters(3), 3);
    assert_eq!(default_clusters(200_000), 1789);
}

#[test]
fn save_load_round_trip_gives_identical_results() {
    let (n, k) = (4000, 16);
    let f = clustered(n, k, 25, 0.4, 21);
    let idx = IvfIndex::build(&f, k, 63, 2).unwrap();
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("sub/items.ivf.safetensors");
    idx.save(&p, "0123456789abcdef").unwrap();
    let back = IvfIndex::load(&p, n, k, "0123456789abcdef").unwrap();
    assert_eq!(back, idx);
    let queries = normal(&mut StdRng::seed_from_u64(22), 10 * k, 1.0);
    for q in queries.chunks_exact(k) {
        for probe in [1, 5, 63] {
            assert_eq!(
                back.search(q, &f, None, 10, probe, &|_| false),
                idx.search(q, &f, None, 10, probe, &|_| false)
            );
        }
    }
    let leftovers = std::fs::read_dir(p.parent().unwrap()).unwrap().count();
    assert_eq!(leftovers, 1, "temp file left behind");
}

fn refusal(path: &Path, n: usize, k: usize, fp: &str) -> String {
    match IvfIndex::load(path, n, k, fp) {
        Err(Error::BadModel { path: p, reason }) => {
            assert_eq!(p, path);
            reason
        }
        other => panic!("expected BadModel, got {other:?}"),
    }
}

#[test]
fn load_refuses_bad_files() {
    let (n, k) = (1000, 8);
    let f = clustered(n, k, 10, 0.3, 31);
    let idx = IvfIndex::build(&f, k, 30, 2).unwrap();
    let d = tempfile::tempdir().unwrap();
    let good = d.path().join("good.safetensors");
    idx.save(&good, "fp").unwrap();
    let bytes = std::fs::read(&good).unwrap();

    // Truncated, at several points (inside the header and the data).
    let cut = d.path().join("cut.safetensors");
    for len in [0, 7, 100, bytes.len() / 2, bytes.len() - 1] {
        std::fs::write(&cut, &bytes[..len]).unwrap();
        let r = refusal(&cut, n, k, "fp");
        assert!(r.contains("not a safetensors file"), "{len}: {r}");
    }
    // Far larger than any index of this shape (e.g. the wrong file).
    let big = d.path().join("big.safetensors");
    std::fs::write(&big, vec![0u8; 8 + 64 * 1024 + 8 + n * (4 * k + 12) + 1]).unwrap();
    assert!(refusal(&big, n, k, "fp").contains("more than an index"));
    // Another model's index.
    let r = refusal(&good, n, k, "other");
    assert!(r.contains("built for model data"), "{r}");
    // Built for other shapes.
    assert!(refusal(&good, n + 1, k, "fp").contains(T_ITEMS));
    assert!(refusal(&good, n, k + 1, "fp").contains(T_CENTROIDS));
    // A model file is not an index.
    let other = d.path().join("other.safetensors");
    let mut md = HashMap::new();
    md.insert("format".to_string(), "recsys-model".to_string());
    safetensors::serialize_to_file(
        vec![(
            "x".to_string(),
            TensorView::new(Dtype::U8, vec![1], &[0u8]).unwrap(),
        )],
        Some(md),
        &other,
    )
    .unwrap();
    assert!(refusal(&other, n, k, "fp").contains("format is"));

    // Well-formed files with inconsistent lists.
    let bad = d.path().join("bad.safetensors");
    let mut dup = idx.clone();
    dup.items[1] = dup.items[0];
    dup.save(&bad, "fp").unwrap();
    assert!(refusal(&bad, n, k, "fp").contains("more than one list"));
    let mut beyond = idx.clone();
    beyond.items[0] = n as u32;
    beyond.save(&bad, "fp").unwrap();
    assert!(refusal(&bad, n, k, "fp").contains("beyond"));
    let mut order = idx.clone();
    order.indptr[1] = n as u64 + 1;
    order.save(&bad, "fp").unwrap();
    assert!(refusal(&bad, n, k, "fp").contains(T_INDPTR));
    let mut nan = idx.clone();
    nan.centroids[3] = f32::NAN;
    nan.save(&bad, "fp").unwrap();
    assert!(refusal(&bad, n, k, "fp").contains("non-finite"));

    // Missing file: an I/O error, not BadModel.
    assert!(matches!(
        IvfIndex::load(&d.path().join("none"), n, k, "fp"),
        Err(Error::NotFound { .. })
    ));
}
