//! The in-memory interaction matrix: dense `u32` user/item indices, `f32`
//! values, optional timestamps, and the maps back to external ids.
//!
//! Main types: [`Interactions`] (coordinate form, one entry per (user, item)),
//! [`IdMap`] (external id ↔ dense index), [`Csr`] (rows of one side, used for
//! "seen items" and by the ALS/BPR trainers). This module does no I/O.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// An external id as it appeared in the input: an integer or a string.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IdKey {
    Int(i64),
    Str(String),
}

impl fmt::Display for IdKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdKey::Int(v) => write!(f, "{v}"),
            IdKey::Str(s) => f.write_str(s),
        }
    }
}

/// A hash map with a fast, non-cryptographic hasher (ids are not adversarial
/// keys on this path: they come from the operator's own data files).
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Dense index ↔ external id, for users or for items. Integer ids stay
/// integers (compact, and numpy reads them as an `int64` tensor).
#[derive(Clone, Debug)]
pub enum IdMap {
    Int {
        ids: Vec<i64>,
        index: FastMap<i64, u32>,
    },
    Str {
        ids: Vec<String>,
        index: FastMap<String, u32>,
    },
}

impl IdMap {
    /// Builds a map from ids in dense-index order. Ids must be distinct.
    pub fn from_ints(ids: Vec<i64>) -> Self {
        let index = ids
            .iter()
            .enumerate()
            .map(|(i, &v)| (v, i as u32))
            .collect();
        IdMap::Int { ids, index }
    }

    pub fn from_strings(ids: Vec<String>) -> Self {
        let index = ids
            .iter()
            .enumerate()
            .map(|(i, v)| (v.clone(), i as u32))
            .collect();
        IdMap::Str { ids, index }
    }

    pub fn len(&self) -> usize {
        match self {
            IdMap::Int { ids, .. } => ids.len(),
            IdMap::Str { ids, .. } => ids.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Dense index of an external id written as text (a CLI argument, a URL).
    pub fn get(&self, external: &str) -> Option<u32> {
        match self {
            // Only the canonical spelling: "007" is not user 7.
            IdMap::Int { index, .. } => external
                .parse::<i64>()
                .ok()
                .filter(|v| v.to_string() == external)
                .and_then(|v| index.get(&v).copied()),
            IdMap::Str { index, .. } => index.get(external).copied(),
        }
    }

    pub fn get_key(&self, key: &IdKey) -> Option<u32> {
        match (self, key) {
            (IdMap::Int { index, .. }, IdKey::Int(v)) => index.get(v).copied(),
            (IdMap::Str { index, .. }, IdKey::Str(s)) => index.get(s).copied(),
            (_, k) => self.get(&k.to_string()),
        }
    }

    /// External id of a dense index. Panics if `idx` is out of range, which
    /// would be a bug: dense indices never come from outside the library.
    pub fn key(&self, idx: u32) -> IdKey {
        match self {
            IdMap::Int { ids, .. } => IdKey::Int(ids[idx as usize]),
            IdMap::Str { ids, .. } => IdKey::Str(ids[idx as usize].clone()),
        }
    }

    /// The same ids in the same dense order.
    pub fn ids_equal(&self, other: &IdMap) -> bool {
        match (self, other) {
            (IdMap::Int { ids: a, .. }, IdMap::Int { ids: b, .. }) => a == b,
            (IdMap::Str { ids: a, .. }, IdMap::Str { ids: b, .. }) => a == b,
            _ => false,
        }
    }

    /// For every dense index of `self`, the dense index of the same external
    /// id in `other` (None when `other` does not know it).
    pub fn translate_to(&self, other: &IdMap) -> Vec<Option<u32>> {
        (0..self.len() as u32)
            .map(|i| match (self, other) {
                (IdMap::Int { ids, .. }, IdMap::Int { index, .. }) => {
                    index.get(&ids[i as usize]).copied()
                }
                _ => other.get_key(&self.key(i)),
            })
            .collect()
    }

    /// Keeps the ids whose `keep` flag is set, in order.
    pub fn retain(&self, keep: &[bool]) -> IdMap {
        match self {
            IdMap::Int { ids, .. } => IdMap::from_ints(
                ids.iter()
                    .zip(keep)
                    .filter(|(_, &k)| k)
                    .map(|(&v, _)| v)
                    .collect(),
            ),
            IdMap::Str { ids, .. } => IdMap::from_strings(
                ids.iter()
                    .zip(keep)
                    .filter(|(_, &k)| k)
                    .map(|(v, _)| v.clone())
                    .collect(),
            ),
        }
    }

    fn hash_into(&self, h: &mut xxhash_rust::xxh3::Xxh3) {
        match self {
            IdMap::Int { ids, .. } => {
                h.update(b"int");
                h.update(bytemuck::cast_slice(ids));
            }
            IdMap::Str { ids, .. } => {
                h.update(b"str");
                for s in ids {
                    h.update(&(s.len() as u64).to_le_bytes());
                    h.update(s.as_bytes());
                }
            }
        }
    }
}

/// Interactions in coordinate form: entry `n` is (`users[n]`, `items[n]`,
/// `values[n]`, `times[n]`). There is at most one entry per (user, item)
/// once loaded (duplicates are resolved by the loader).
#[derive(Clone, Debug)]
pub struct Interactions {
    pub users: Vec<u32>,
    pub items: Vec<u32>,
    pub values: Vec<f32>,
    pub times: Option<Vec<i64>>,
    pub user_ids: Arc<IdMap>,
    pub item_ids: Arc<IdMap>,
}

impl Interactions {
    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    pub fn n_users(&self) -> usize {
        self.user_ids.len()
    }

    pub fn n_items(&self) -> usize {
        self.item_ids.len()
    }

    /// The entries at `idx`, in that order, with the same id maps.
    pub fn subset(&self, idx: &[usize]) -> Interactions {
        Interactions {
            users: idx.iter().map(|&i| self.users[i]).collect(),
            items: idx.iter().map(|&i| self.items[i]).collect(),
            values: idx.iter().map(|&i| self.values[i]).collect(),
            times: self
                .times
                .as_ref()
                .map(|t| idx.iter().map(|&i| t[i]).collect()),
            user_ids: Arc::clone(&self.user_ids),
            item_ids: Arc::clone(&self.item_ids),
        }
    }

    /// Keeps the entries with value ≥ `t`, as positives of value 1 (id
    /// maps unchanged).
    pub fn positives(mut self, t: f32) -> Interactions {
        let keep: Vec<bool> = self.values.iter().map(|&v| v >= t).collect();
        self.retain(&keep);
        self.values.iter_mut().for_each(|v| *v = 1.0);
        self
    }

    /// Keeps the entries whose `keep` flag is set, in order (id maps unchanged).
    pub fn retain(&mut self, keep: &[bool]) {
        fn filter<T: Copy>(v: &mut Vec<T>, keep: &[bool]) {
            let mut k = keep.iter();
            v.retain(|_| *k.next().unwrap_or(&true));
        }
        filter(&mut self.users, keep);
        filter(&mut self.items, keep);
        filter(&mut self.values, keep);
        if let Some(t) = &mut self.times {
            filter(t, keep);
        }
    }

    /// The items of each user, without values (for "seen" filtering).
    pub fn seen_by_user(&self) -> Csr {
        Csr::build(self.n_users(), &self.users, &self.items, None)
    }

    /// Drops users and items that have no entry, renumbering densely (order kept).
    pub fn compact(mut self) -> Interactions {
        let mut has_user = vec![false; self.n_users()];
        let mut has_item = vec![false; self.n_items()];
        for (&u, &i) in self.users.iter().zip(&self.items) {
            has_user[u as usize] = true;
            has_item[i as usize] = true;
        }
        if has_user.iter().all(|&b| b) && has_item.iter().all(|&b| b) {
            return self;
        }
        let renumber = |keep: &[bool]| {
            let mut next = 0u32;
            keep.iter()
                .map(|&k| {
                    let v = next;
                    next += k as u32;
                    v
                })
                .collect::<Vec<u32>>()
        };
        let (nu, ni) = (renumber(&has_user), renumber(&has_item));
        self.users.iter_mut().for_each(|u| *u = nu[*u as usize]);
        self.items.iter_mut().for_each(|i| *i = ni[*i as usize]);
        self.user_ids = Arc::new(self.user_ids.retain(&has_user));
        self.item_ids = Arc::new(self.item_ids.retain(&has_item));
        self
    }

    /// Number of entries per item (the popularity used for cold start).
    pub fn item_counts(&self) -> Vec<u32> {
        let mut c = vec![0u32; self.n_items()];
        for &i in &self.items {
            c[i as usize] += 1;
        }
        c
    }

    pub fn mean_value(&self) -> f64 {
        if self.values.is_empty() {
            return 0.0;
        }
        self.values.iter().map(|&v| v as f64).sum::<f64>() / self.values.len() as f64
    }

    /// Rows by user: for each user, its items (sorted) and values.
    pub fn by_user(&self) -> Csr {
        Csr::build(self.n_users(), &self.users, &self.items, Some(&self.values))
    }

    /// Rows by item: for each item, its users (sorted) and values.
    pub fn by_item(&self) -> Csr {
        Csr::build(self.n_items(), &self.items, &self.users, Some(&self.values))
    }

    /// A stable 64-bit digest of the entries and id maps (xxh3), written as
    /// 16 hex digits. Same data in the same order → same fingerprint.
    pub fn fingerprint(&self) -> String {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(bytemuck::cast_slice(&self.users));
        h.update(bytemuck::cast_slice(&self.items));
        h.update(bytemuck::cast_slice(&self.values));
        if let Some(t) = &self.times {
            h.update(bytemuck::cast_slice(t));
        }
        self.user_ids.hash_into(&mut h);
        self.item_ids.hash_into(&mut h);
        format!("{:016x}", h.digest())
    }
}

/// Compressed sparse rows: row `r` holds `indices[indptr[r]..indptr[r+1]]`
/// (sorted ascending) with matching `values`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Csr {
    pub indptr: Vec<u64>,
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl Csr {
    /// Counting sort by row, then each row sorted by column. Without `vals`
    /// the result has no values (`values` is empty).
    pub fn build(n_rows: usize, rows: &[u32], cols: &[u32], vals: Option<&[f32]>) -> Csr {
        let mut indptr = vec![0u64; n_rows + 1];
        for &r in rows {
            indptr[r as usize + 1] += 1;
        }
        for r in 0..n_rows {
            indptr[r + 1] += indptr[r];
        }
        let mut next: Vec<u64> = indptr[..n_rows].to_vec();
        let mut indices = vec![0u32; rows.len()];
        let mut values = vec![0f32; if vals.is_some() { rows.len() } else { 0 }];
        for (n, (&r, &c)) in rows.iter().zip(cols).enumerate() {
            let at = next[r as usize] as usize;
            indices[at] = c;
            if let Some(v) = vals {
                values[at] = v[n];
            }
            next[r as usize] += 1;
        }
        let mut csr = Csr {
            indptr,
            indices,
            values,
        };
        csr.sort_rows();
        csr
    }

    fn sort_rows(&mut self) {
        let with_values = !self.values.is_empty();
        let mut pairs: Vec<(u32, f32)> = Vec::new();
        for r in 0..self.n_rows() {
            let (a, b) = (self.indptr[r] as usize, self.indptr[r + 1] as usize);
            if self.indices[a..b].windows(2).all(|w| w[0] <= w[1]) {
                continue;
            }
            if !with_values {
                self.indices[a..b].sort_unstable();
                continue;
            }
            pairs.clear();
            pairs.extend(
                self.indices[a..b]
                    .iter()
                    .copied()
                    .zip(self.values[a..b].iter().copied()),
            );
            pairs.sort_unstable_by_key(|p| p.0);
            for (k, (c, v)) in pairs.iter().enumerate() {
                self.indices[a + k] = *c;
                self.values[a + k] = *v;
            }
        }
    }

    pub fn n_rows(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }

    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    pub fn row(&self, r: usize) -> &[u32] {
        &self.indices[self.indptr[r] as usize..self.indptr[r + 1] as usize]
    }

    pub fn row_values(&self, r: usize) -> &[f32] {
        &self.values[self.indptr[r] as usize..self.indptr[r + 1] as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_maps_round_trip() {
        let m = IdMap::from_ints(vec![10, 3, 77]);
        for i in 0..3u32 {
            assert_eq!(m.get_key(&m.key(i)), Some(i));
            assert_eq!(m.get(&m.key(i).to_string()), Some(i));
        }
        assert_eq!(m.get("4"), None);
        assert_eq!(m.get("abc"), None);
        let s = IdMap::from_strings(vec!["b".into(), "a".into()]);
        assert_eq!(s.get("a"), Some(1));
        assert_eq!(s.key(0), IdKey::Str("b".into()));
        let t = IdMap::from_strings(vec!["77".into(), "x".into()]);
        assert_eq!(t.translate_to(&m), vec![Some(2), None]);
    }

    #[test]
    fn csr_matches_coordinates() {
        let rows = [2, 0, 2, 1, 0];
        let cols = [5, 3, 1, 4, 0];
        let vals = [1.0, 2.0, 3.0, 4.0, 5.0];
        let c = Csr::build(3, &rows, &cols, Some(&vals));
        assert_eq!(c.row(0), &[0, 3]);
        assert_eq!(c.row_values(0), &[5.0, 2.0]);
        assert_eq!(c.row(1), &[4]);
        assert_eq!(c.row(2), &[1, 5]);
        assert_eq!(c.row_values(2), &[3.0, 1.0]);
    }

    #[test]
    fn compact_drops_unused_ids() {
        let x = Interactions {
            users: vec![0, 2],
            items: vec![1, 1],
            values: vec![1.0, 2.0],
            times: None,
            user_ids: Arc::new(IdMap::from_ints(vec![5, 6, 7])),
            item_ids: Arc::new(IdMap::from_strings(vec!["a".into(), "b".into()])),
        }
        .compact();
        assert_eq!(x.users, vec![0, 1]);
        assert_eq!(x.items, vec![0, 0]);
        assert_eq!(x.user_ids.key(1), IdKey::Int(7));
        assert_eq!(x.item_ids.key(0), IdKey::Str("b".into()));
    }
}
