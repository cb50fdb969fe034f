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

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use linfa::traits::Fit;
use linfa::DatasetBase;
use linfa_clustering::{KMeans, KMeansInit};
use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array2, ArrayView2};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rayon::prelude::*;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::top_n;
use crate::error::{Error, Result};
use crate::linalg::dot;

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

const META_FORMAT: &str = "format";
const META_VERSION: &str = "format_version";
const META_FINGERPRINT: &str = "model_fingerprint";
/// Largest header [`IvfIndex::load`] accepts: three tensor entries and
/// three short metadata strings need well under 1 KiB.
const MAX_HEADER: u64 = 64 * 1024;
const T_CENTROIDS: &str = "ivf_centroids";
const T_INDPTR: &str = "ivf_indptr";
const T_ITEMS: &str = "ivf_items";

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
        let mut lists: Vec<(f32, u32)> = self
            .centroids
            .chunks_exact(k)
            .enumerate()
            .map(|(j, row)| (dot(q, row), j as u32))
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
                let s = dot(q, row);
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

    /// Writes the index to `path` as a safetensors file (see the module
    /// docs), through a temp file, fsync and rename: a reader sees the old
    /// file or the new one. `model_fingerprint` is the data fingerprint of
    /// the model whose factors the index was built from
    /// (`model.meta().data.fingerprint`); [`IvfIndex::load`] checks it.
    pub fn save(&self, path: &Path, model_fingerprint: &str) -> Result<()> {
        let (c, k, n) = (self.n_clusters(), self.k, self.n_items());
        let view = |dtype, shape, data| {
            TensorView::new(dtype, shape, data)
                .map_err(|e| Error::Other(format!("building tensor: {e}")))
        };
        let tensors = vec![
            (
                T_CENTROIDS.to_string(),
                view(
                    Dtype::F32,
                    vec![c, k],
                    bytemuck::cast_slice(&self.centroids),
                )?,
            ),
            (
                T_INDPTR.to_string(),
                view(Dtype::U64, vec![c + 1], bytemuck::cast_slice(&self.indptr))?,
            ),
            (
                T_ITEMS.to_string(),
                view(Dtype::U32, vec![n], bytemuck::cast_slice(&self.items))?,
            ),
        ];
        let header = HashMap::from([
            (META_FORMAT.to_string(), FORMAT.to_string()),
            (META_VERSION.to_string(), FORMAT_VERSION.to_string()),
            (META_FINGERPRINT.to_string(), model_fingerprint.to_string()),
        ]);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let tmp = crate::util::temp_path(path);
        if let Err(e) = safetensors::serialize_to_file(tensors, Some(header), &tmp) {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::Other(format!(
                "{}: writing IVF index: {e}",
                path.display()
            )));
        }
        crate::util::commit_temp(&tmp, path)
    }

    /// Reads an index written by [`IvfIndex::save`] for a model with
    /// `n_items` items of `k` factors and data fingerprint
    /// `expected_fingerprint`.
    ///
    /// The file is read into memory (it is small: `4·I + 8·C + 4·C·k`
    /// bytes) and refused with [`Error::BadModel`] unless every check
    /// passes: a size cap (what the largest index for `n_items` items of
    /// `k` factors takes), safetensors' own checks (offsets in bounds, whole
    /// file covered), format, version and fingerprint, exactly the three
    /// tensors with the right dtypes and shapes (`k`, `n_items`,
    /// `1 ≤ C ≤ n_items`),
    /// finite centroids, `indptr` starting at 0, non-decreasing and ending
    /// at `n_items`, and every item `< n_items` present exactly once. After
    /// that, [`IvfIndex::search`] cannot index out of bounds.
    pub fn load(
        path: &Path,
        n_items: usize,
        k: usize,
        expected_fingerprint: &str,
    ) -> Result<IvfIndex> {
        let bad = |reason: String| Error::BadModel {
            path: path.to_path_buf(),
            reason,
        };
        // No index for this model can be larger than this (C ≤ n_items):
        // refuse before reading a huge file into memory.
        let cap = (n_items as u64)
            .saturating_mul(4 * k as u64 + 12)
            .saturating_add(8 + 8 + MAX_HEADER);
        let len = std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .len();
        if len > cap {
            return Err(bad(format!(
                "the file is {len} bytes, more than an index of {n_items} items × {k} factors can be"
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        parse(&bytes, n_items, k, expected_fingerprint).map_err(bad)
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

type Checked<T> = std::result::Result<T, String>;

fn parse(bytes: &[u8], n_items: usize, k: usize, expected_fingerprint: &str) -> Checked<IvfIndex> {
    let (_, header) =
        SafeTensors::read_metadata(bytes).map_err(|e| format!("not a safetensors file ({e})"))?;
    let md = header.metadata().clone().unwrap_or_default();
    match md.get(META_FORMAT) {
        Some(f) if f == FORMAT => {}
        Some(f) => return Err(format!("format is {f:?}, expected {FORMAT:?}")),
        None => return Err("a safetensors file without a `format` entry".into()),
    }
    let version: u32 = md
        .get(META_VERSION)
        .and_then(|v| v.parse().ok())
        .ok_or("missing or invalid format_version")?;
    if version != FORMAT_VERSION {
        return Err(format!(
            "IVF format version {version} is not supported (this recsys reads version {FORMAT_VERSION})"
        ));
    }
    match md.get(META_FINGERPRINT) {
        Some(f) if f == expected_fingerprint => {}
        Some(f) => {
            return Err(format!(
            "the index was built for model data {f:?}, not this model's {expected_fingerprint:?}"
        ))
        }
        None => return Err(format!("missing `{META_FINGERPRINT}` metadata")),
    }
    let st =
        SafeTensors::deserialize(bytes).map_err(|e| format!("not a safetensors file ({e})"))?;
    if let Some(extra) = st
        .names()
        .into_iter()
        .find(|n| ![T_CENTROIDS, T_INDPTR, T_ITEMS].contains(n))
    {
        return Err(format!("unexpected tensor `{extra}`"));
    }

    let shape = |name: &str| {
        st.tensor(name)
            .map(|t| t.shape().to_vec())
            .map_err(|_| format!("missing tensor `{name}`"))
    };
    let cs = shape(T_CENTROIDS)?;
    let c = match cs[..] {
        [c, kk] if (1..=n_items).contains(&c) && kk == k => c,
        _ => {
            return Err(format!(
                "`{T_CENTROIDS}` has shape {cs:?}, expected [n_clusters in 1..={n_items}, {k}]"
            ))
        }
    };
    let centroids: Vec<f32> = tensor(&st, T_CENTROIDS, Dtype::F32, &[c, k])?;
    if centroids.iter().any(|x| !x.is_finite()) {
        return Err(format!("`{T_CENTROIDS}` holds non-finite values"));
    }
    let indptr: Vec<u64> = tensor(&st, T_INDPTR, Dtype::U64, &[c + 1])?;
    let items: Vec<u32> = tensor(&st, T_ITEMS, Dtype::U32, &[n_items])?;
    if indptr.first() != Some(&0)
        || indptr.windows(2).any(|w| w[0] > w[1])
        || indptr.last().copied() != Some(n_items as u64)
    {
        return Err(format!(
            "`{T_INDPTR}` is not a valid list index for `{T_ITEMS}`"
        ));
    }
    let mut seen = vec![false; n_items];
    for &i in &items {
        match seen.get_mut(i as usize) {
            None => return Err(format!("item {i} is beyond the model's {n_items} items")),
            Some(true) => return Err(format!("item {i} is in more than one list")),
            Some(s) => *s = true,
        }
    }
    // n_items distinct values below n_items: every item is present.
    Ok(IvfIndex {
        k,
        centroids,
        indptr,
        items,
    })
}

/// A copy of one tensor, checked for dtype and shape (the data need not be
/// aligned in the buffer).
fn tensor<T: bytemuck::Pod>(
    st: &SafeTensors<'_>,
    name: &str,
    dtype: Dtype,
    shape: &[usize],
) -> Checked<Vec<T>> {
    let t = st
        .tensor(name)
        .map_err(|_| format!("missing tensor `{name}`"))?;
    if t.dtype() != dtype {
        return Err(format!(
            "tensor `{name}` has dtype {:?}, expected {dtype:?}",
            t.dtype()
        ));
    }
    if t.shape() != shape {
        return Err(format!(
            "tensor `{name}` has shape {:?}, expected {shape:?}",
            t.shape()
        ));
    }
    let data = t.data();
    let want = shape
        .iter()
        .try_fold(size_of::<T>(), |a, &d| a.checked_mul(d));
    if want != Some(data.len()) {
        return Err(format!(
            "tensor `{name}` has {} bytes, expected {shape:?} × {} bytes",
            data.len(),
            size_of::<T>()
        ));
    }
    Ok(bytemuck::pod_collect_to_vec(data))
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
