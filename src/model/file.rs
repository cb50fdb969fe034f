//! The model file: safetensors with JSON metadata.
//!
//! Tensors: `user_factors [U,k]`, `item_factors [I,k]` (F32), `user_bias [U]`,
//! `item_bias [I]`, `item_popularity [I]`, `global_mean [1]` (F32), optionally
//! `item_recent_popularity [I]` (F32, when the data had timestamps),
//! `seen_indptr [U+1]` (U64) and `seen_items [nnz]` (U32) for each user's
//! training items, and the id maps: `user_ids [U]` (I64) for integer ids, or
//! `user_ids_utf8` (U8) + `user_ids_offsets [U+1]` (U64) for strings; the same
//! for items. `__metadata__` holds `format`, `format_version` and `recsys`
//! (the [`ModelMeta`] as JSON). numpy's `safetensors.numpy.load_file` reads it.
//!
//! Version 2 adds an optional list head (a rating model's second model for
//! its lists): `lists.user_factors [U,k']`, `lists.item_factors [I,k']`,
//! `lists.user_bias [U]`, `lists.item_bias [I]`, `lists.global_mean [1]`,
//! and its metadata in `__metadata__.recsys_lists`. Version 1 files, which
//! have none, are read as before.
//!
//! Writing goes through a temp file, fsync and rename. Loading maps the file
//! and refuses it, with the reason, unless every check passes: safetensors'
//! own header validation (size cap, offsets in bounds, whole file covered),
//! then ours (format and version, dtypes and shapes against each other, CSR
//! and id-map consistency), so later indexing cannot go out of bounds.

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use super::{Model, ModelMeta, FORMAT, FORMAT_VERSION, FORMAT_VERSION_MIN};
use crate::error::{Error, Result};
use crate::interactions::IdMap;

/// An array that is either owned, shared between the heads of one model,
/// or a view into a mapped model file.
pub enum Buf<T: bytemuck::Pod> {
    Owned(Vec<T>),
    Shared(Arc<[T]>),
    Mapped {
        map: Arc<Mmap>,
        start: usize,
        len: usize,
        _t: PhantomData<T>,
    },
}

impl<T: bytemuck::Pod> Deref for Buf<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match self {
            Buf::Owned(v) => v,
            Buf::Shared(v) => v,
            // Alignment and bounds were checked when the view was made (`tensor`).
            Buf::Mapped {
                map, start, len, ..
            } => bytemuck::cast_slice(&map[*start..*start + len * size_of::<T>()]),
        }
    }
}

impl<T: bytemuck::Pod> fmt::Debug for Buf<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Buf::Owned(_) => "owned",
            Buf::Shared(_) => "shared",
            Buf::Mapped { .. } => "mapped",
        };
        write!(f, "Buf({kind}, {} elements)", self.len())
    }
}

impl<T: bytemuck::Pod> Buf<T> {
    /// A second handle on the same elements, without a copy: an owned array
    /// becomes shared (once), a mapped one is another view of the map.
    pub fn share(&mut self) -> Buf<T> {
        match self {
            Buf::Owned(v) => {
                let a: Arc<[T]> = Arc::from(std::mem::take(v));
                *self = Buf::Shared(Arc::clone(&a));
                Buf::Shared(a)
            }
            Buf::Shared(v) => Buf::Shared(Arc::clone(v)),
            Buf::Mapped {
                map, start, len, ..
            } => Buf::Mapped {
                map: Arc::clone(map),
                start: *start,
                len: *len,
                _t: PhantomData,
            },
        }
    }
}

fn view<'a>(dtype: Dtype, shape: Vec<usize>, data: &'a [u8]) -> Result<TensorView<'a>> {
    TensorView::new(dtype, shape, data).map_err(|e| Error::Other(format!("building tensor: {e}")))
}

fn id_tensors<'a>(
    prefix: &str,
    ids: &'a IdMap,
    store: &'a mut Vec<Vec<u8>>,
) -> Vec<(String, Dtype, Vec<usize>, usize)> {
    // Returns (name, dtype, shape, index into `store`) so the bytes outlive the views.
    match ids {
        IdMap::Int { ids, .. } => {
            store.push(bytemuck::cast_slice(ids).to_vec());
            vec![(
                format!("{prefix}_ids"),
                Dtype::I64,
                vec![ids.len()],
                store.len() - 1,
            )]
        }
        IdMap::Str { ids, .. } => {
            let mut bytes = Vec::new();
            let mut offsets = Vec::with_capacity(ids.len() + 1);
            offsets.push(0u64);
            for s in ids {
                bytes.extend_from_slice(s.as_bytes());
                offsets.push(bytes.len() as u64);
            }
            let n = bytes.len();
            store.push(bytes);
            store.push(bytemuck::cast_slice(&offsets).to_vec());
            vec![
                (
                    format!("{prefix}_ids_utf8"),
                    Dtype::U8,
                    vec![n],
                    store.len() - 2,
                ),
                (
                    format!("{prefix}_ids_offsets"),
                    Dtype::U64,
                    vec![offsets.len()],
                    store.len() - 1,
                ),
            ]
        }
    }
}

impl Model {
    /// Writes the model to `path` atomically (temp file, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let (nu, ni, k) = (self.n_users(), self.n_items(), self.k);
        let mean = [self.global_mean];
        let mut tensors: Vec<(String, TensorView<'_>)> = vec![
            (
                "user_factors".into(),
                view(
                    Dtype::F32,
                    vec![nu, k],
                    bytemuck::cast_slice(&self.user_factors),
                )?,
            ),
            (
                "item_factors".into(),
                view(
                    Dtype::F32,
                    vec![ni, k],
                    bytemuck::cast_slice(&self.item_factors),
                )?,
            ),
            (
                "user_bias".into(),
                view(Dtype::F32, vec![nu], bytemuck::cast_slice(&self.user_bias))?,
            ),
            (
                "item_bias".into(),
                view(Dtype::F32, vec![ni], bytemuck::cast_slice(&self.item_bias))?,
            ),
            (
                "item_popularity".into(),
                view(
                    Dtype::F32,
                    vec![ni],
                    bytemuck::cast_slice(&self.item_popularity),
                )?,
            ),
            (
                "global_mean".into(),
                view(Dtype::F32, vec![1], bytemuck::cast_slice(&mean))?,
            ),
            (
                "seen_indptr".into(),
                view(
                    Dtype::U64,
                    vec![nu + 1],
                    bytemuck::cast_slice(&self.seen_indptr),
                )?,
            ),
            (
                "seen_items".into(),
                view(
                    Dtype::U32,
                    vec![self.seen_items.len()],
                    bytemuck::cast_slice(&self.seen_items),
                )?,
            ),
        ];
        if let Some(r) = &self.item_recent_popularity {
            tensors.push((
                "item_recent_popularity".into(),
                view(Dtype::F32, vec![ni], bytemuck::cast_slice(r))?,
            ));
        }
        let head_mean = [self.list_head.as_ref().map_or(0.0, |h| h.global_mean)];
        let mut head_meta = None;
        if let Some(h) = &self.list_head {
            let kh = h.k;
            let arrays: [(&str, &[f32], Vec<usize>); 4] = [
                ("user_factors", &h.user_factors, vec![nu, kh]),
                ("item_factors", &h.item_factors, vec![ni, kh]),
                ("user_bias", &h.user_bias, vec![nu]),
                ("item_bias", &h.item_bias, vec![ni]),
            ];
            for (name, data, shape) in arrays {
                tensors.push((
                    format!("{LIST_HEAD}{name}"),
                    view(Dtype::F32, shape, bytemuck::cast_slice(data))?,
                ));
            }
            tensors.push((
                format!("{LIST_HEAD}global_mean"),
                view(Dtype::F32, vec![1], bytemuck::cast_slice(&head_mean))?,
            ));
            head_meta = Some(
                serde_json::to_string(&h.meta)
                    .map_err(|e| Error::Other(format!("encoding metadata: {e}")))?,
            );
        }
        let mut store = Vec::new();
        let mut specs = id_tensors("user", &self.user_ids, &mut store);
        specs.extend(id_tensors("item", &self.item_ids, &mut store));
        for (name, dtype, shape, at) in specs {
            tensors.push((name, view(dtype, shape, &store[at])?));
        }
        let meta_json = serde_json::to_string(&self.meta)
            .map_err(|e| Error::Other(format!("encoding metadata: {e}")))?;
        let mut header = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("format_version".to_string(), FORMAT_VERSION.to_string()),
            ("recsys".to_string(), meta_json),
        ]);
        if let Some(m) = head_meta {
            header.insert(LIST_HEAD_META.to_string(), m);
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let tmp = crate::util::temp_path(path);
        if let Err(e) = safetensors::serialize_to_file(tensors, Some(header), &tmp) {
            let _ = std::fs::remove_file(&tmp);
            return Err(Error::Other(format!(
                "{}: writing model: {e}",
                path.display()
            )));
        }
        crate::util::commit_temp(&tmp, path)
    }

    /// Maps and checks a model file. See the module docs for what is checked.
    pub fn load(path: &Path) -> Result<Model> {
        let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
        let bad = |reason: String| Error::BadModel {
            path: path.to_path_buf(),
            reason,
        };
        if len < 8 {
            return Err(bad(format!(
                "the file is {len} bytes long, too short for a safetensors header"
            )));
        }
        // SAFETY: the map is read-only. Model files are never modified in
        // place: they are written to a temp file and renamed over, so the
        // bytes under an existing map do not change. (Another program
        // truncating the file while it is mapped is outside what we can
        // defend against, as for any mapped file.)
        let map = Arc::new(unsafe { Mmap::map(&f) }.map_err(|e| Error::io(path, e))?);
        load_from_map(map).map_err(bad)
    }

    /// Checks and loads a model file held in memory (copied into an
    /// anonymous map, so the arrays are aligned as in a mapped file); the
    /// same checks as [`Model::load`]. Errors name the file as `<memory>`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model> {
        let bad = |reason: String| Error::BadModel {
            path: "<memory>".into(),
            reason,
        };
        if bytes.len() < 8 {
            return Err(bad(format!(
                "the file is {} bytes long, too short for a safetensors header",
                bytes.len()
            )));
        }
        let mut map =
            memmap2::MmapMut::map_anon(bytes.len()).map_err(|e| Error::io("<memory>", e))?;
        map.copy_from_slice(bytes);
        let map = map.make_read_only().map_err(|e| Error::io("<memory>", e))?;
        load_from_map(Arc::new(map)).map_err(bad)
    }
}

type Checked<T> = std::result::Result<T, String>;

fn load_from_map(map: Arc<Mmap>) -> Checked<Model> {
    let (_, header) = SafeTensors::read_metadata(&map[..])
        .map_err(|e| format!("not a safetensors file ({e})"))?;
    let md = header.metadata().clone().unwrap_or_default();
    match md.get("format") {
        Some(f) if f == FORMAT => {}
        Some(f) => return Err(format!("format is {f:?}, expected {FORMAT:?}")),
        None => {
            return Err("a safetensors file without recsys metadata (no `format` entry)".into())
        }
    }
    let version: u32 = md
        .get("format_version")
        .and_then(|v| v.parse().ok())
        .ok_or("missing or invalid format_version")?;
    if !(FORMAT_VERSION_MIN..=FORMAT_VERSION).contains(&version) {
        return Err(format!("format version {version} is not supported (this recsys reads versions {FORMAT_VERSION_MIN} to {FORMAT_VERSION})"));
    }
    let meta: ModelMeta =
        serde_json::from_str(md.get("recsys").ok_or("missing `recsys` metadata")?)
            .map_err(|e| format!("invalid metadata JSON: {e}"))?;
    let st =
        SafeTensors::deserialize(&map[..]).map_err(|e| format!("not a safetensors file ({e})"))?;

    let k = meta.factors;
    if k == 0 || k > 4096 {
        return Err(format!("factors is {k}, outside 1..=4096"));
    }
    let uf: Buf<f32> = tensor(&st, &map, "user_factors", Dtype::F32, None)?;
    let nu = uf.len() / k;
    let shape_of = |name: &str| {
        st.tensor(name)
            .map(|t| t.shape().to_vec())
            .unwrap_or_default()
    };
    if shape_of("user_factors") != [nu, k] {
        return Err(format!(
            "user_factors has shape {:?}, expected [n_users, {k}]",
            shape_of("user_factors")
        ));
    }
    let itf: Buf<f32> = tensor(&st, &map, "item_factors", Dtype::F32, None)?;
    let ni = itf.len() / k;
    if shape_of("item_factors") != [ni, k] {
        return Err(format!(
            "item_factors has shape {:?}, expected [n_items, {k}]",
            shape_of("item_factors")
        ));
    }
    if nu != meta.n_users || ni != meta.n_items {
        return Err(format!(
            "tensors hold {nu} users × {ni} items but the metadata says {} × {}",
            meta.n_users, meta.n_items
        ));
    }
    let ub = tensor(&st, &map, "user_bias", Dtype::F32, Some(&[nu]))?;
    let ib = tensor(&st, &map, "item_bias", Dtype::F32, Some(&[ni]))?;
    let pop = tensor(&st, &map, "item_popularity", Dtype::F32, Some(&[ni]))?;
    let recent = match st.tensor("item_recent_popularity") {
        Ok(_) => Some(tensor(
            &st,
            &map,
            "item_recent_popularity",
            Dtype::F32,
            Some(&[ni]),
        )?),
        Err(_) => None,
    };
    let gm: Buf<f32> = tensor(&st, &map, "global_mean", Dtype::F32, Some(&[1]))?;
    let indptr: Buf<u64> = tensor(&st, &map, "seen_indptr", Dtype::U64, Some(&[nu + 1]))?;
    let seen: Buf<u32> = tensor(&st, &map, "seen_items", Dtype::U32, None)?;
    if indptr.first() != Some(&0)
        || indptr.windows(2).any(|w| w[0] > w[1])
        || indptr.last().copied() != Some(seen.len() as u64)
    {
        return Err("seen_indptr is not a valid row index for seen_items".into());
    }
    if seen.iter().any(|&i| i as usize >= ni) {
        return Err("seen_items refers to an item beyond item_factors".into());
    }
    let user_ids = id_map(&st, &map, "user", nu)?;
    let item_ids = id_map(&st, &map, "item", ni)?;
    let model = Model {
        meta,
        k,
        global_mean: gm[0],
        user_factors: uf,
        item_factors: itf,
        user_bias: ub,
        item_bias: ib,
        item_popularity: pop,
        item_recent_popularity: recent,
        user_ids: Arc::new(user_ids),
        item_ids: Arc::new(item_ids),
        seen_indptr: indptr,
        seen_items: seen,
        cache: Default::default(),
        list_head: None,
    };
    match md.get(LIST_HEAD_META) {
        Some(json) if version >= 2 => {
            let head = list_head(&st, &map, json, &model)?;
            model.with_list_head(head).map_err(|e| e.to_string())
        }
        _ => Ok(model),
    }
}

/// Tensor names of the list head start with this (`lists.user_factors`, …).
const LIST_HEAD: &str = "lists.";
/// The `__metadata__` entry holding the list head's [`ModelMeta`].
const LIST_HEAD_META: &str = "recsys_lists";

/// The list head stored beside `main`: its own factors, biases and
/// metadata; ids, training items and popularity are `main`'s.
fn list_head(st: &SafeTensors<'_>, map: &Arc<Mmap>, json: &str, main: &Model) -> Checked<Model> {
    let meta: ModelMeta =
        serde_json::from_str(json).map_err(|e| format!("invalid list-head metadata JSON: {e}"))?;
    let (nu, ni, k) = (main.n_users(), main.n_items(), meta.factors);
    if k == 0 || k > 4096 {
        return Err(format!("the list head's factors is {k}, outside 1..=4096"));
    }
    if !meta.implicit {
        return Err("the list head is not an implicit-feedback model".into());
    }
    if meta.n_users != nu || meta.n_items != ni {
        return Err(format!(
            "the list head's metadata says {} × {}, the model holds {nu} users × {ni} items",
            meta.n_users, meta.n_items
        ));
    }
    let t = |name: &str, shape: &[usize]| {
        tensor::<f32>(
            st,
            map,
            &format!("{LIST_HEAD}{name}"),
            Dtype::F32,
            Some(shape),
        )
    };
    let gm = t("global_mean", &[1])?;
    Ok(Model {
        k,
        global_mean: gm[0],
        user_factors: t("user_factors", &[nu, k])?,
        item_factors: t("item_factors", &[ni, k])?,
        user_bias: t("user_bias", &[nu])?,
        item_bias: t("item_bias", &[ni])?,
        meta,
        // Placeholders until `with_list_head` shares the main model's arrays.
        item_popularity: Buf::Owned(Vec::new()),
        item_recent_popularity: None,
        user_ids: Arc::clone(&main.user_ids),
        item_ids: Arc::clone(&main.item_ids),
        seen_indptr: Buf::Owned(Vec::new()),
        seen_items: Buf::Owned(Vec::new()),
        cache: Default::default(),
        list_head: None,
    })
}

/// A typed view of one tensor, checked for dtype and (optionally) shape;
/// mapped in place when aligned, copied otherwise.
fn tensor<T: bytemuck::Pod>(
    st: &SafeTensors<'_>,
    map: &Arc<Mmap>,
    name: &str,
    dtype: Dtype,
    shape: Option<&[usize]>,
) -> Checked<Buf<T>> {
    let t = st
        .tensor(name)
        .map_err(|_| format!("missing tensor `{name}`"))?;
    if t.dtype() != dtype {
        return Err(format!(
            "tensor `{name}` has dtype {:?}, expected {dtype:?}",
            t.dtype()
        ));
    }
    if let Some(s) = shape {
        if t.shape() != s {
            return Err(format!(
                "tensor `{name}` has shape {:?}, expected {s:?}",
                t.shape()
            ));
        }
    }
    let data = t.data();
    if data.len() % size_of::<T>() != 0 {
        return Err(format!(
            "tensor `{name}` has {} bytes, not a whole number of elements",
            data.len()
        ));
    }
    let start = data.as_ptr() as usize - map.as_ptr() as usize;
    let len = data.len() / size_of::<T>();
    if bytemuck::try_cast_slice::<u8, T>(data).is_ok() {
        Ok(Buf::Mapped {
            map: Arc::clone(map),
            start,
            len,
            _t: PhantomData,
        })
    } else {
        Ok(Buf::Owned(bytemuck::pod_collect_to_vec(data)))
    }
}

fn id_map(st: &SafeTensors<'_>, map: &Arc<Mmap>, prefix: &str, n: usize) -> Checked<IdMap> {
    let ids = if st.tensor(&format!("{prefix}_ids")).is_ok() {
        let v: Buf<i64> = tensor(st, map, &format!("{prefix}_ids"), Dtype::I64, Some(&[n]))?;
        IdMap::from_ints(v.to_vec())
    } else {
        let bytes: Buf<u8> = tensor(st, map, &format!("{prefix}_ids_utf8"), Dtype::U8, None)?;
        let offs: Buf<u64> = tensor(
            st,
            map,
            &format!("{prefix}_ids_offsets"),
            Dtype::U64,
            Some(&[n + 1]),
        )?;
        if offs.first() != Some(&0)
            || offs.windows(2).any(|w| w[0] > w[1])
            || offs.last().copied() != Some(bytes.len() as u64)
        {
            return Err(format!(
                "{prefix}_ids_offsets do not index {prefix}_ids_utf8"
            ));
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|e| format!("{prefix}_ids_utf8 is not UTF-8: {e}"))?;
        let mut out = Vec::with_capacity(n);
        for w in offs.windows(2) {
            out.push(
                text.get(w[0] as usize..w[1] as usize)
                    .ok_or_else(|| format!("{prefix} id splits a UTF-8 character"))?
                    .to_string(),
            );
        }
        IdMap::from_strings(out)
    };
    let distinct = match &ids {
        IdMap::Int { index, .. } => index.len(),
        IdMap::Str { index, .. } => index.len(),
    };
    if distinct != n {
        return Err(format!("{prefix} ids are not distinct"));
    }
    Ok(ids)
}
