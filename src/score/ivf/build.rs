//! [`IvfIndex::build`]: k-means lists over the item factors.

use linfa::traits::Fit;
use linfa::DatasetBase;
use linfa_clustering::{KMeans, KMeansInit};
use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, ArrayView2};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rayon::prelude::*;

use super::{IvfIndex, KMEANS_ITERATIONS, KMEANS_SAMPLE, REFINE_ITERATIONS};
use crate::error::{Error, Result};
use crate::linalg::dot;

impl IvfIndex {
    /// Clusters the item factors (`n_items × k`, row-major) into
    /// `n_clusters` lists with k-means (see the module docs). Seeded: the
    /// same inputs and seed give the same index on the same machine (the
    /// matrix products may round differently on a CPU with other vector
    /// instructions, which can move an item that is equally near two
    /// centroids). Uses rayon's thread pool.
    ///
    /// Errors ([`Error::InvalidParam`]) when `k` is 0, the factors are not a
    /// whole number of rows, empty, more than `u32::MAX` rows or not finite,
    /// or `n_clusters` is outside `1..=n_items`.
    pub fn build(item_factors: &[f32], k: usize, n_clusters: usize, seed: u64) -> Result<IvfIndex> {
        if k == 0 {
            return Err(Error::param("k", k, "must be ≥ 1"));
        }
        if !item_factors.len().is_multiple_of(k) {
            return Err(Error::param(
                "item_factors",
                format!("{} values", item_factors.len()),
                format!("must be a whole number of rows of k = {k}"),
            ));
        }
        let n = item_factors.len() / k;
        if n == 0 || n > u32::MAX as usize {
            return Err(Error::param(
                "item_factors",
                format!("{n} rows"),
                "must hold 1..=4294967295 items",
            ));
        }
        if !(1..=n).contains(&n_clusters) {
            return Err(Error::param(
                "n_clusters",
                n_clusters,
                format!("must be in 1..={n} (the number of items)"),
            ));
        }
        if let Some(i) = item_factors.iter().position(|x| !x.is_finite()) {
            return Err(Error::param(
                "item_factors",
                item_factors[i],
                format!("item {} has a non-finite factor", i / k),
            ));
        }

        // Initial centroids: linfa's k-means on a seeded sample.
        let mut rng = StdRng::seed_from_u64(seed);
        let m = n.min(KMEANS_SAMPLE.max(n_clusters));
        let mut sample = Vec::with_capacity(m * k);
        if m == n {
            sample.extend_from_slice(item_factors);
        } else {
            let mut picks = rand::seq::index::sample(&mut rng, n, m).into_vec();
            picks.sort_unstable();
            for i in picks {
                sample.extend_from_slice(&item_factors[i * k..(i + 1) * k]);
            }
        }
        let records = Array2::from_shape_vec((m, k), sample)
            .map_err(|e| Error::Other(format!("k-means input: {e}")))?;
        let fitted = KMeans::params_with_rng(n_clusters, rng)
            .n_runs(1)
            .init_method(KMeansInit::Random)
            .max_n_iterations(KMEANS_ITERATIONS)
            .tolerance(1e-4)
            .fit(&DatasetBase::from(records))
            .map_err(|e| Error::Other(format!("k-means on the item factors: {e}")))?;
        let mut centroids: Vec<f32> = fitted.centroids().iter().copied().collect();
        if centroids.len() != n_clusters * k || centroids.iter().any(|x| !x.is_finite()) {
            return Err(Error::Other(
                "k-means on the item factors gave invalid centroids".into(),
            ));
        }

        // Then Lloyd steps over every item; the lists follow the last assignment.
        let mut nearest = assign(item_factors, k, &centroids);
        for _ in 0..REFINE_ITERATIONS {
            recenter(item_factors, k, &mut centroids, &nearest);
            nearest = assign(item_factors, k, &centroids);
        }
        let (indptr, items) = group(&nearest, n_clusters);
        Ok(IvfIndex {
            k,
            centroids,
            indptr,
            items,
        })
    }
}

/// Index of the nearest centroid (L2) of every item: the largest
/// `x·c − ½‖c‖²`, ties to the lower index. Blocks of items against all
/// centroids as one matrix product each, blocks in parallel.
fn assign(item_factors: &[f32], k: usize, centroids: &[f32]) -> Vec<u32> {
    const BLOCK: usize = 512;
    let c = centroids.len() / k;
    let cent = ArrayView2::from_shape((c, k), centroids).expect("C × k centroids");
    let half_norms: Vec<f32> = centroids.chunks_exact(k).map(|c| 0.5 * dot(c, c)).collect();
    let blocks: Vec<Vec<u32>> = item_factors
        .par_chunks(BLOCK * k)
        .map_init(
            || Array2::<f32>::zeros((BLOCK, c)),
            |scores, block| {
                let rows = block.len() / k;
                let x = ArrayView2::from_shape((rows, k), block).expect("rows × k block");
                let mut s = scores.slice_mut(s![..rows, ..]);
                general_mat_mul(1.0, &x, &cent.t(), 0.0, &mut s);
                s.rows()
                    .into_iter()
                    .map(|r| {
                        let mut best = (f32::NEG_INFINITY, 0u32);
                        for (j, (&v, &h)) in r.iter().zip(&half_norms).enumerate() {
                            if v - h > best.0 {
                                best = (v - h, j as u32);
                            }
                        }
                        best.1
                    })
                    .collect()
            },
        )
        .collect();
    blocks.concat()
}

/// One Lloyd step on all items: each centroid moves to the mean of its
/// items (an empty list keeps its centroid).
fn recenter(item_factors: &[f32], k: usize, centroids: &mut [f32], nearest: &[u32]) {
    let c = centroids.len() / k;
    let mut sums = vec![0f64; c * k];
    let mut counts = vec![0usize; c];
    for (x, &j) in item_factors.chunks_exact(k).zip(nearest) {
        let j = j as usize;
        counts[j] += 1;
        for (s, &v) in sums[j * k..(j + 1) * k].iter_mut().zip(x) {
            *s += v as f64;
        }
    }
    for j in 0..c {
        if counts[j] > 0 {
            for (o, &s) in centroids[j * k..(j + 1) * k]
                .iter_mut()
                .zip(&sums[j * k..(j + 1) * k])
            {
                *o = (s / counts[j] as f64) as f32;
            }
        }
    }
}

/// CSR lists from each item's list index (a counting sort: items stay
/// ascending within a list).
fn group(nearest: &[u32], n_clusters: usize) -> (Vec<u64>, Vec<u32>) {
    let mut indptr = vec![0u64; n_clusters + 1];
    for &c in nearest {
        indptr[c as usize + 1] += 1;
    }
    for c in 0..n_clusters {
        indptr[c + 1] += indptr[c];
    }
    let mut next: Vec<u64> = indptr[..n_clusters].to_vec();
    let mut items = vec![0u32; nearest.len()];
    for (i, &c) in nearest.iter().enumerate() {
        items[next[c as usize] as usize] = i as u32;
        next[c as usize] += 1;
    }
    (indptr, items)
}
