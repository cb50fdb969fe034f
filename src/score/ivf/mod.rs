//! Approximate top-N for inner-product scores: an inverted-file (IVF) index
//! over the item factors.
//!
//! Main type: [`IvfIndex`].
//!
//! # Method
//!
//! [`IvfIndex::build`] partitions the items into `C` lists with k-means (L2
//! distance): linfa's k-means (seeded random initialisation, one run,
//! [`KMEANS_ITERATIONS`] Lloyd steps) fits initial centroids on a seeded
//! random sample of at most [`KMEANS_SAMPLE`] items, then
//! [`REFINE_ITERATIONS`] Lloyd steps over *all* items refine them, and every
//! item goes in the list of its nearest centroid. The lists are stored as
//! CSR (`indptr`, `items`), so each item is in exactly one list.
//!
//! [`IvfIndex::search`] answers a query vector `q` in two steps: score the
//! `C` centroids by `q·c` and keep the `probe` best, then score every item
//! of those lists exactly (`q·item + bias`, the same kernel as a full scan)
//! and select the top `n` with [`top_n`]. The cost is about
//! `C + probe · I / C` dot products instead of `I`; the answer is exact for
//! the items it scores, and equals the exact top-`n` when `probe = C`. What
//! it can miss is a good item whose centroid ranked below the `probe` best.
//! The centroid ranking ignores item biases, so with large learned biases
//! (BPR) a larger `probe` is needed for the same recall.
//!
//! # Choosing `C` and `probe`
//!
//! [`default_clusters`] gives `C ≈ 4·√I` (1,785 lists for 199,050 items).
//! `probe` trades recall for speed. On `benches/ivf.rs` (199,050 items,
//! implicit ALS at k = 64, 2 cores) an exact top-10 takes 3.5–4.8 ms; the
//! index takes 15 µs at probe 20 and 21–22 µs at probe 80, with recall@10
//! 0.987 / 0.998 after 5 ALS sweeps and 0.933 / 0.988 after 15 (whose top
//! lists are less dominated by popular items). At such probes the cost is
//! mostly the `C` centroid scores: the lists that rank first are the small
//! ones of high-norm items. Item factors with flatter norms need a larger
//! share of the lists for the same recall (5% of the lists gives 0.96 on
//! the synthetic clusters of the unit tests).
//!
//! # File
//!
//! [`IvfIndex::save`] writes a safetensors file (temp file, fsync, rename):
//! `ivf_centroids` F32 `[C,k]`, `ivf_indptr` U64 `[C+1]`, `ivf_items` U32
//! `[I]`, and metadata `format` = `recsys-ivf`, `format_version` = `1`,
//! `model_fingerprint` (the model's data fingerprint, so an index is never
//! used with factors it was not built from). [`IvfIndex::load`] refuses any
//! file that fails a check, with the reason.
//!
//! Files: this one holds the type and the search; `build.rs` the k-means
//! that makes the lists, `file.rs` saving and loading.

mod build;
mod file;

use std::fmt;

use super::top_n;
use crate::linalg::row_dots;

/// The `format` metadata entry of an index file.
pub const FORMAT: &str = "recsys-ivf";
/// Bumped on any incompatible change to the index file layout.
pub const FORMAT_VERSION: u32 = 1;
/// At most this many items (a seeded random sample) go into linfa's k-means,
/// which gives the initial centroids. linfa computes every item–centroid
/// distance one pair at a time (about 1 s per iteration for 50,000 items and
/// 1,800 centroids on 2 cores), so it does not see the whole catalogue.
pub const KMEANS_SAMPLE: usize = 50_000;
/// Lloyd iterations of linfa's k-means on the sample.
pub const KMEANS_ITERATIONS: u64 = 5;
/// Lloyd steps over *all* items after the sample fit (each: recentre on the
/// mean of the list, reassign every item, items × centroids as blocked
/// matrix products, about 0.5 s for 200,000 × 1,800 at k = 64). They matter
/// for recall: top-N results are made of the few high-norm (popular) items,
/// which a sample under-represents. On `benches/ivf.rs` with 15 ALS sweeps,
/// recall@10 at probe 20 rose from 0.71 (15 sample iterations, no full steps)
/// to 0.93 (5 + 3).
pub const REFINE_ITERATIONS: usize = 3;

/// The default number of lists for `n_items` items: `round(4·√n_items)`,
/// kept within `1..=n_items` (0 for an empty catalogue).
///
/// A list then holds about `√n_items / 4` items, and scoring the centroids
/// costs as much as scanning 16 average lists. FAISS suggests `4·√n` to
/// `16·√n` lists; the low end keeps the centroid scores, which dominate a
/// query at the probes that reach 0.95–0.99 recall in `benches/ivf.rs`,
/// cheap.
pub fn default_clusters(n_items: usize) -> usize {
    if n_items == 0 {
        return 0;
    }
    ((4.0 * (n_items as f64).sqrt()).round() as usize).clamp(1, n_items)
}

/// An inverted-file index over item factors. See the module docs.
#[derive(Clone, PartialEq)]
pub struct IvfIndex {
    /// Factor dimension.
    k: usize,
    /// `C × k`, row-major.
    centroids: Vec<f32>,
    /// List `c` is `items[indptr[c]..indptr[c + 1]]`; `C + 1` entries.
    indptr: Vec<u64>,
    /// Every item index exactly once, grouped by list, ascending within a list.
    items: Vec<u32>,
}

impl fmt::Debug for IvfIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IvfIndex {{ k: {}, n_clusters: {}, n_items: {} }}",
            self.k,
            self.n_clusters(),
            self.n_items()
        )
    }
}

impl IvfIndex {
    /// Top-`n` items for the query vector `q` (length `k`), best first, as
    /// (item index, score).
    ///
    /// Scores the centroids by `q·c`, takes the `probe` best lists (`probe`
    /// is clamped to `1..=n_clusters`), scores their items exactly as
    /// `q·item + item_bias[item]` (no bias term when `item_bias` is `None`)
    /// and skips the items for which `skip(item)` is true. With
    /// `probe = n_clusters` the result equals an exact scan.
    ///
    /// # Panics
    ///
    /// If `q.len() != k`, `item_factors.len() != n_items · k` or an
    /// `item_bias` is not `n_items` long: the index was built for other
    /// factors.
    pub fn search(
        &self,
        q: &[f32],
        item_factors: &[f32],
        item_bias: Option<&[f32]>,
        n: usize,
        probe: usize,
        skip: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, f32)> {
        let k = self.k;
        assert_eq!(q.len(), k, "query length must equal the index's k");
        assert_eq!(
            item_factors.len(),
            self.n_items() * k,
            "item factors do not match the index"
        );
        if let Some(b) = item_bias {
            assert_eq!(
                b.len(),
                self.n_items(),
                "item bias does not match the index"
            );
        }
        if n == 0 {
            return Vec::new();
        }
        let c = self.n_clusters();
        let probe = probe.clamp(1, c);
        let mut dots = vec![0f32; c];
        row_dots(&self.centroids, q, &mut dots);
        let mut lists: Vec<(f32, u32)> = dots
            .into_iter()
            .enumerate()
            .map(|(j, s)| (s, j as u32))
            .collect();
        if probe < c {
            // Best first: higher score, then lower list index.
            lists.select_nth_unstable_by(probe - 1, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            lists.truncate(probe);
        }
        let scores = lists
            .iter()
            .flat_map(|&(_, j)| self.list(j as usize))
            .copied()
            .filter(|&i| !skip(i))
            .map(|i| {
                let row = &item_factors[i as usize * k..(i as usize + 1) * k];
                // The exact scan's kernel on one row: the same bits as `dot`,
                // in 8-lane vectors where the CPU has them.
                let mut s = 0f32;
                row_dots(row, q, std::slice::from_mut(&mut s));
                (i, item_bias.map_or(s, |b| s + b[i as usize]))
            });
        top_n(scores, n)
    }

    /// Number of lists (`C`).
    pub fn n_clusters(&self) -> usize {
        self.indptr.len() - 1
    }

    /// Number of indexed items (every item of the catalogue).
    pub fn n_items(&self) -> usize {
        self.items.len()
    }

    /// Factor dimension `k`.
    pub fn factors(&self) -> usize {
        self.k
    }

    /// The items of list `c`, ascending.
    ///
    /// # Panics
    ///
    /// If `c >= n_clusters()`.
    pub fn list(&self, c: usize) -> &[u32] {
        &self.items[self.indptr[c] as usize..self.indptr[c + 1] as usize]
    }
}

#[cfg(test)]
mod tests;
