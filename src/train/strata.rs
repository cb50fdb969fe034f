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
    /// Block (a, c) at `a * nb + c`, entries in a seeded shuffled order.
    pub blocks: Vec<Vec<Entry>>,
}

/// How many ranges per side for a thread count: more blocks than threads so
/// rayon can balance them, and a block's factor rows stay in cache.
pub(crate) fn block_count(threads: usize, nu: usize, ni: usize) -> usize {
    (4 * threads).min(nu).min(ni).max(1)
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

impl Strata {
    pub fn new(train: &Interactions, nb: usize, rng: &mut StdRng) -> Strata {
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
        let block = |n: usize| {
            let iu = uinv[train.users[n] as usize] as usize;
            let ii = iinv[train.items[n] as usize] as usize;
            (iu, ii, ub[iu] as usize, ib[ii] as usize)
        };
        // Sized exactly before filling: blocks grown by doubling would hold up
        // to twice the entries' memory (on 25 M ratings, ~300 MB more).
        let mut sizes = vec![0usize; nb * nb];
        for n in 0..train.len() {
            let (_, _, a, c) = block(n);
            sizes[a * nb + c] += 1;
        }
        let mut blocks: Vec<Vec<Entry>> = sizes.iter().map(|&s| Vec::with_capacity(s)).collect();
        for n in 0..train.len() {
            let (iu, ii, a, c) = block(n);
            blocks[a * nb + c].push(Entry {
                u: (iu - ubounds[a]) as u32,
                i: (ii - ibounds[c]) as u32,
                r: train.values[n],
            });
        }
        // Each block shuffled by its own seeded RNG, in parallel.
        let base: u64 = rng.gen();
        blocks.par_iter_mut().enumerate().for_each(|(b, v)| {
            v.shuffle(&mut StdRng::seed_from_u64(
                base ^ (b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            ));
        });
        Strata {
            nb,
            uperm,
            uinv,
            iperm,
            iinv,
            ubounds,
            ibounds,
            blocks,
        }
    }

    /// Runs stratum `s`: `f(block, entries, user rows, user biases, item
    /// rows, item biases)` on every block of the stratum in parallel, each
    /// with its own slices. Returns the per-block results in block order
    /// (so sums over them are deterministic).
    #[allow(clippy::too_many_arguments)]
    pub fn run<F>(
        &self,
        s: usize,
        k: usize,
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
        let buc = split_rows(bu, &self.ubounds, 1);
        let mut ifc = split_rows(itf, &self.ibounds, k);
        let mut bic = split_rows(bi, &self.ibounds, 1);
        ifc.rotate_left(s);
        bic.rotate_left(s);
        ufc.into_par_iter()
            .zip(buc)
            .zip(ifc)
            .zip(bic)
            .enumerate()
            .map(|(a, (((uf, bu), itf), bi))| {
                let b = a * nb + (a + s) % nb;
                f(b, &self.blocks[b], uf, bu, itf, bi)
            })
            .collect()
    }

    /// Frees the blocked entries once training is done: the model is built
    /// next from the caller's interactions, and the peak memory of a run is
    /// what is alive at that point.
    pub fn release_entries(&mut self) {
        self.blocks = Vec::new();
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
        let n = users.len();
        let x = Interactions {
            users,
            items,
            values: (0..n).map(|v| v as f32).collect(),
            times: None,
            user_ids: Arc::new(IdMap::from_ints((0..nu as i64).collect())),
            item_ids: Arc::new(IdMap::from_ints((0..ni as i64).collect())),
        };
        let st = Strata::new(&x, 4, &mut StdRng::seed_from_u64(1));
        let mut seen: Vec<f32> = st.blocks.iter().flatten().map(|e| e.r).collect();
        seen.sort_by(f32::total_cmp);
        assert_eq!(seen, x.values);
        // Each block's entries map back to the original pairs.
        for a in 0..4 {
            for c in 0..4 {
                for e in &st.blocks[a * 4 + c] {
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
    }
}
