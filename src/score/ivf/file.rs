//! The index file: [`IvfIndex::save`] and [`IvfIndex::load`].

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::{IvfIndex, FORMAT, FORMAT_VERSION};
use crate::error::{Error, Result};

const META_FORMAT: &str = "format";
const META_VERSION: &str = "format_version";
const META_FINGERPRINT: &str = "model_fingerprint";
/// Largest header [`IvfIndex::load`] accepts: three tensor entries and
/// three short metadata strings need well under 1 KiB.
const MAX_HEADER: u64 = 64 * 1024;
pub(super) const T_CENTROIDS: &str = "ivf_centroids";
pub(super) const T_INDPTR: &str = "ivf_indptr";
pub(super) const T_ITEMS: &str = "ivf_items";

impl IvfIndex {
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
