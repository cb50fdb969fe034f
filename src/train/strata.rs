//! Stratified blocks for race-free parallel SGD (DSGD, Gemulla et al. 2011;
//! FPSGD in LIBMF), shared by the rating SGD and BPR trainers.
//!
//! Users and items are shuffled (seeded) into `nb` contiguous ranges each;
//! block (a, c) holds the entries of user range a and item range c, with
//! indices local to those ranges. Stratum `s` pairs user range a with item
//! range (a + s) mod nb, so its blocks share no user and no item: each worker
//! gets `&mut` slices of its own rows. Safe Rust, no locks, no atomics.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

use crate::interactions::Interactions;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    pub u: u32,
    pub i: u32,
    pub r: f32,
}

pub(crate) struct Strata {
    pub nb: usize,
    pub uperm: Vec<u32>,
    pub uinv: Vec<u32>,
    pub iperm: Vec<u32>,
    pub iinv: Vec<u32>,
    pub ubounds: Vec<usize>,
    pub ibounds: Vec<usize>,
    /// Every block's entries, block after block in the order `a * nb + c`
    /// for block (a, c), each block in its [`Order`].
    entries: Vec<Entry>,
    /// Where each block starts in `entries`, and the end.
    starts: Vec<usize>,
}

/// How the entries of a block are ordered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Order {
    /// A seeded shuffle (BPR: its negatives are drawn per entry anyway).
    Shuffled,
    /// By the larger side's row, then the other's (FPSGD): the larger side's
    /// rows are read in order, so only the smaller side's range needs to
    /// stay in cache. Ids were shuffled first, so the order is not the
    /// data's.
    Sorted,
}

/// Bytes of the randomly read side's factor rows one block may touch: a
/// core's L2 and its share of L3. A constant, not the machine's cache size,
/// so the grid (and the model) does not depend on the machine. Each block
/// also streams its range of the sorted side once, so every extra range per
/// side reads that whole side once more per epoch. Measured per epoch, k =
/// 64, 2 threads (`benches/sgd_scale.rs`): 100 M ratings (1 M × 240 k) at
/// 1 / 2 / 4 / 8 MiB: 32.7 / 55.6 / 50.4 / 29.8 M ratings/s; 25 M (250 k ×
/// 60 k) at 1 / 2 / 4 MiB: 61.3 / 58.5 / 60.8 M/s (noise).
const BLOCK_BYTES: usize = 2 * 1024 * 1024;

/// Fewest entries per block on average: below this a block's scheduling
/// costs more than its updates.
const MIN_BLOCK_ENTRIES: usize = 256;

/// How many ranges per side: at least 4 per thread so rayon can balance
/// them, and enough that a block's range of the smaller side's rows
/// (`k` floats each) fits in [`BLOCK_BYTES`], but not so many that blocks
/// average under [`MIN_BLOCK_ENTRIES`]. Past the thread term the count
/// follows the data alone.
pub(crate) fn block_count(threads: usize, nu: usize, ni: usize, k: usize, nnz: usize) -> usize {
    let by_cache = (nu.min(ni) * (k + 1) * 4).div_ceil(BLOCK_BYTES);
    let most = ((nnz / MIN_BLOCK_ENTRIES) as f64).sqrt() as usize;
    let nb = by_cache.min(most).max(4 * threads);
    nb.min(nu).min(ni).max(1)
}

fn permutation(n: usize, rng: &mut StdRng) -> (Vec<u32>, Vec<u32>) {
    let mut fwd: Vec<u32> = (0..n as u32).collect();
    fwd.shuffle(rng);
    let mut inv = vec![0u32; n];
    for (int, &o) in fwd.iter().enumerate() {
        inv[o as usize] = int as u32;
    }
    (fwd, inv)
}

/// Entries per chunk of the parallel bucketing in [`Strata::new`]: fixed, so
/// the entries' order within a block does not depend on the thread count.
const CHUNK: usize = 1 << 16;

/// A raw pointer the scatter in [`Strata::new`] shares between workers.
#[derive(Clone, Copy)]
struct Shared(*mut Entry);
// SAFETY: only used for writes to disjoint indices (see the scatter).
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    /// Through a method, so a closure captures the whole (Sync) wrapper,
    /// not its raw pointer field.
    fn ptr(self) -> *mut Entry {
        self.0
    }
}

impl Strata {
    pub fn new(train: &Interactions, nb: usize, order: Order, rng: &mut StdRng) -> Strata {
        let (nu, ni) = (train.n_users(), train.n_items());
        let (uperm, uinv) = permutation(nu, rng);
        let (iperm, iinv) = permutation(ni, rng);
        let ubounds: Vec<usize> = (0..=nb).map(|a| a * nu / nb).collect();
        let ibounds: Vec<usize> = (0..=nb).map(|a| a * ni / nb).collect();
        let block_of = |bounds: &[usize], n: usize| {
            let mut v = vec![0u32; n];
            for a in 0..nb {
                v[bounds[a]..bounds[a + 1]].fill(a as u32);
            }
            v
        };
        let (ub, ib) = (block_of(&ubounds, nu), block_of(&ibounds, ni));
        let nblocks = nb * nb;
        let locate = |n: usize| {
            let iu = uinv[train.users[n] as usize] as usize;
            let ii = iinv[train.items[n] as usize] as usize;
            let (a, c) = (ub[iu] as usize, ib[ii] as usize);
            let e = Entry {
                u: (iu - ubounds[a]) as u32,
                i: (ii - ibounds[c]) as u32,
                r: train.values[n],
            };
            (a * nb + c, e)
        };
        // A counting sort by block, in parallel over fixed chunks: each
        // chunk counts its entries per block, the counts become disjoint
        // write ranges (block-major, then chunk), and each chunk writes its
        // entries into its own ranges. One flat array, sized exactly: no
        // per-block vectors grown by doubling (on 25 M ratings, ~300 MB).
        let len = train.len();
        let chunks = len.div_ceil(CHUNK).max(1);
        let counts: Vec<Vec<u32>> = (0..chunks)
            .into_par_iter()
            .map(|c| {
                let mut h = vec![0u32; nblocks];
                for n in c * CHUNK..((c + 1) * CHUNK).min(len) {
                    h[locate(n).0] += 1;
                }
                h
            })
            .collect();
        let mut starts = vec![0usize; nblocks + 1];
        // offsets[c][b]: where chunk c's first entry of block b goes.
        let mut offsets: Vec<Vec<usize>> = vec![vec![0usize; nblocks]; chunks];
        let mut at = 0usize;
        for b in 0..nblocks {
            starts[b] = at;
            for c in 0..chunks {
                offsets[c][b] = at;
                at += counts[c][b] as usize;
            }
        }
        starts[nblocks] = at;
        drop(counts);
        // Not zero-filled first: every slot is written once below, and a
        // fill would be one more pass over ~300 MB at 25 M ratings.
        let mut entries: Vec<Entry> = Vec::with_capacity(len);
        let out = Shared(entries.as_mut_ptr());
        offsets.par_iter_mut().enumerate().for_each(|(c, next)| {
            for n in c * CHUNK..((c + 1) * CHUNK).min(len) {
                let (b, e) = locate(n);
                // SAFETY: chunk c owns indices offsets[c][b] ..
                // offsets[c][b] + counts[c][b] for each block b; these
                // ranges are disjoint across (chunk, block) by the prefix
                // sum above and lie within 0..len (the capacity), and each
                // index is written once, by this chunk, while `entries` is
                // not otherwise borrowed.
                unsafe { out.ptr().add(next[b]).write(e) };
                next[b] += 1;
            }
        });
        // SAFETY: the ranges above partition 0..len (the counts sum to
        // len), so all len slots are now initialised; `Entry` is `Copy`.
        unsafe { entries.set_len(len) };
        // Each block shuffled by its own seeded RNG, in parallel, or sorted.
        let base: u64 = rng.gen();
        let users_first = nu >= ni;
        let mut cut = Vec::with_capacity(nblocks);
        let mut rest = entries.as_mut_slice();
        for w in starts.windows(2) {
            let (head, tail) = rest.split_at_mut(w[1] - w[0]);
            cut.push(head);
            rest = tail;
        }
        cut.into_par_iter().enumerate().for_each_init(
            || (Vec::new(), Vec::new()),
            |(tmp, count), (b, v)| {
                let (nu_b, ni_b) = (
                    ubounds[b / nb + 1] - ubounds[b / nb],
                    ibounds[b % nb + 1] - ibounds[b % nb],
                );
                match order {
                    Order::Shuffled => v.shuffle(&mut StdRng::seed_from_u64(
                        base ^ (b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                    )),
                    // Two stable counting passes, minor key first: linear in
                    // the block, where a comparison sort was ~10% of a 25 M
                    // fit.
                    Order::Sorted if users_first => {
                        counting_sort(v, ni_b, |e| e.i, tmp, count);
                        counting_sort(v, nu_b, |e| e.u, tmp, count);
                    }
                    Order::Sorted => {
                        counting_sort(v, nu_b, |e| e.u, tmp, count);
                        counting_sort(v, ni_b, |e| e.i, tmp, count);
                    }
                }
            },
        );
        Strata {
            nb,
            uperm,
            uinv,
            iperm,
            iinv,
            ubounds,
            ibounds,
            entries,
            starts,
        }
    }

    /// Block (a, c)'s entries, at `a * nb + c`.
    pub fn block(&self, b: usize) -> &[Entry] {
        &self.entries[self.starts[b]..self.starts[b + 1]]
    }

    /// Runs stratum `s`: `f(block, entries, user rows, user side state,
    /// item rows, item side state)` on every block of the stratum in
    /// parallel, each with its own slices; rows are `k` floats, side state
    /// `w` per row (a bias, or more). Returns the per-block results in block
    /// order (so sums over them are deterministic).
    #[allow(clippy::too_many_arguments)]
    pub fn run<F>(
        &self,
        s: usize,
        k: usize,
        w: usize,
        uf: &mut [f32],
        bu: &mut [f32],
        itf: &mut [f32],
        bi: &mut [f32],
        f: F,
    ) -> Vec<f64>
    where
        F: Fn(usize, &[Entry], &mut [f32], &mut [f32], &mut [f32], &mut [f32]) -> f64 + Sync,
    {
        let nb = self.nb;
        let ufc = split_rows(uf, &self.ubounds, k);
        let buc = split_rows(bu, &self.ubounds, w);
        let mut ifc = split_rows(itf, &self.ibounds, k);
        let mut bic = split_rows(bi, &self.ibounds, w);
        ifc.rotate_left(s);
        bic.rotate_left(s);
        ufc.into_par_iter()
            .zip(buc)
            .zip(ifc)
            .zip(bic)
            .enumerate()
            .map(|(a, (((uf, bu), itf), bi))| {
                let b = a * nb + (a + s) % nb;
                f(b, self.block(b), uf, bu, itf, bi)
            })
            .collect()
    }

    /// Frees the blocked entries once training is done: the model is built
    /// next from the caller's interactions, and the peak memory of a run is
    /// what is alive at that point.
    pub fn release_entries(&mut self) {
        self.entries = Vec::new();
    }

    /// Rows of `x` (internal user order, `w` wide) back in the caller's order.
    pub fn users_out(&self, x: &[f32], w: usize) -> Vec<f32> {
        unpermute(x, &self.uperm, w)
    }

    pub fn items_out(&self, x: &[f32], w: usize) -> Vec<f32> {
        unpermute(x, &self.iperm, w)
    }

    /// Rows of `x` (caller's user order) in the internal order: the inverse
    /// of [`users_out`](Self::users_out).
    pub fn users_in(&self, x: &[f32], w: usize) -> Vec<f32> {
        permute(x, &self.uperm, w)
    }

    pub fn items_in(&self, x: &[f32], w: usize) -> Vec<f32> {
        permute(x, &self.iperm, w)
    }
}

/// Stable sort of `v` by `key` (each key `< range`), through the reused
/// buffers `tmp` and `count`.
fn counting_sort(
    v: &mut [Entry],
    range: usize,
    key: impl Fn(&Entry) -> u32,
    tmp: &mut Vec<Entry>,
    count: &mut Vec<usize>,
) {
    count.clear();
    count.resize(range + 1, 0);
    for e in v.iter() {
        count[key(e) as usize + 1] += 1;
    }
    for j in 1..=range {
        count[j] += count[j - 1];
    }
    tmp.clear();
    tmp.extend_from_slice(v);
    for e in tmp.iter() {
        let at = &mut count[key(e) as usize];
        v[*at] = *e;
        *at += 1;
    }
}

fn permute(x: &[f32], fwd: &[u32], w: usize) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    for (int, &o) in fwd.iter().enumerate() {
        out[int * w..(int + 1) * w].copy_from_slice(&x[o as usize * w..(o as usize + 1) * w]);
    }
    out
}

fn unpermute(x: &[f32], fwd: &[u32], w: usize) -> Vec<f32> {
    let mut out = vec![0f32; x.len()];
    for (int, &o) in fwd.iter().enumerate() {
        out[o as usize * w..(o as usize + 1) * w].copy_from_slice(&x[int * w..(int + 1) * w]);
    }
    out
}

/// Cuts `data` (rows of `width`) into the row ranges given by `bounds`.
fn split_rows<'a>(data: &'a mut [f32], bounds: &[usize], width: usize) -> Vec<&'a mut [f32]> {
    let mut out = Vec::with_capacity(bounds.len() - 1);
    let mut rest = data;
    for w in bounds.windows(2) {
        let (head, tail) = rest.split_at_mut((w[1] - w[0]) * width);
        out.push(head);
        rest = tail;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interactions::IdMap;
    use rand::SeedableRng;
    use std::sync::Arc;

    /// Pairs whose value is their position, so each entry can be traced back.
    fn numbered(users: Vec<u32>, items: Vec<u32>, nu: u32, ni: u32) -> Interactions {
        let n = users.len();
        Interactions {
            users,
            items,
            values: (0..n).map(|v| v as f32).collect(),
            times: None,
            user_ids: Arc::new(IdMap::from_ints((0..nu as i64).collect())),
            item_ids: Arc::new(IdMap::from_ints((0..ni as i64).collect())),
        }
    }

    #[test]
    fn every_entry_lands_in_exactly_one_block_and_strata_cover_all_blocks() {
        let (nu, ni) = (37u32, 23u32);
        let mut users = Vec::new();
        let mut items = Vec::new();
        for u in 0..nu {
            for i in 0..ni {
                if (u + 2 * i) % 5 == 0 {
                    users.push(u);
                    items.push(i);
                }
            }
        }
        let x = numbered(users, items, nu, ni);
        let st = Strata::new(&x, 4, Order::Shuffled, &mut StdRng::seed_from_u64(1));
        let mut seen: Vec<f32> = (0..16).flat_map(|b| st.block(b)).map(|e| e.r).collect();
        seen.sort_by(f32::total_cmp);
        assert_eq!(seen, x.values);
        // Each block's entries map back to the original pairs.
        for a in 0..4 {
            for c in 0..4 {
                for e in st.block(a * 4 + c) {
                    let u = st.uperm[st.ubounds[a] + e.u as usize];
                    let i = st.iperm[st.ibounds[c] + e.i as usize];
                    assert_eq!((x.users[e.r as usize], x.items[e.r as usize]), (u, i));
                }
            }
        }
        // The strata visit every block once, and within a stratum each user
        // range and item range appears once.
        let mut visits = [0; 16];
        let (mut uf, mut bu, mut itf, mut bi) = (
            vec![0f32; 37],
            vec![0f32; 37],
            vec![0f32; 23],
            vec![0f32; 23],
        );
        for s in 0..4 {
            let got = st.run(
                s,
                1,
                1,
                &mut uf,
                &mut bu,
                &mut itf,
                &mut bi,
                |b, _, u, _, i, _| {
                    u.iter_mut().for_each(|v| *v += 1.0);
                    i.iter_mut().for_each(|v| *v += 1.0);
                    b as f64
                },
            );
            for b in got {
                visits[b as usize] += 1;
            }
        }
        assert!(visits.iter().all(|&v| v == 1));
        assert!(uf.iter().all(|&v| v == 4.0) && itf.iter().all(|&v| v == 4.0));

        // Sorted: the same entries per block, by the larger side (users
        // here), then the other; shuffled blocks are not all sorted.
        let sorted = Strata::new(&x, 4, Order::Sorted, &mut StdRng::seed_from_u64(1));
        let mut any_unsorted = false;
        for b in 0..16 {
            let key = |e: &Entry| (e.u, e.i);
            let got: Vec<_> = sorted.block(b).iter().map(key).collect();
            let mut want: Vec<_> = st.block(b).iter().map(key).collect();
            any_unsorted |= !want.is_sorted();
            want.sort_unstable();
            assert_eq!(got, want, "block {b}");
        }
        assert!(any_unsorted);
    }

    #[test]
    fn bucketing_over_many_chunks_keeps_every_entry_in_its_block() {
        // More entries than one chunk, in no particular order.
        let (nu, ni) = (701u32, 433u32);
        let (mut users, mut items) = (Vec::new(), Vec::new());
        for n in 0..(3 * CHUNK as u32 + 17) {
            let (u, i) = ((n * 7919) % nu, (n * 104_729 + n / nu) % ni);
            users.push(u);
            items.push(i);
        }
        let len = users.len();
        let x = numbered(users, items, nu, ni);
        let nb = 6;
        let st = Strata::new(&x, nb, Order::Shuffled, &mut StdRng::seed_from_u64(3));
        let mut seen = vec![0u8; len];
        for a in 0..nb {
            for c in 0..nb {
                for e in st.block(a * nb + c) {
                    let n = e.r as usize;
                    seen[n] += 1;
                    let u = st.uperm[st.ubounds[a] + e.u as usize];
                    let i = st.iperm[st.ibounds[c] + e.i as usize];
                    assert_eq!((x.users[n], x.items[n]), (u, i));
                }
            }
        }
        assert!(seen.iter().all(|&s| s == 1));
    }

    #[test]
    fn the_grid_follows_the_cache_and_the_threads() {
        // Small data: 4 ranges per thread.
        assert_eq!(block_count(2, 6040, 3706, 64, 800_000), 8);
        // 100 M ratings, 1 M × 240 k: 240 k item rows of 65 floats need 30
        // ranges to fit 2 MiB each, whatever the thread count below 8.
        assert_eq!(block_count(1, 1_000_000, 240_000, 64, 100_000_000), 30);
        assert_eq!(block_count(2, 1_000_000, 240_000, 64, 100_000_000), 30);
        assert_eq!(block_count(16, 1_000_000, 240_000, 64, 100_000_000), 64);
        // Never more ranges than rows, nor blocks averaging under 256
        // entries.
        assert_eq!(block_count(8, 3, 1000, 64, 3000), 3);
        assert_eq!(block_count(1, 1_000_000, 1_000_000, 256, 1_000_000), 62);
        assert_eq!(block_count(2, 250_000, 60_000, 64, 25_000_000), 8);
    }
}
