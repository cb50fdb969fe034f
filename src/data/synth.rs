//! A seeded generator of interaction data with planted structure.
//!
//! Users and items get latent vectors of rank `rank`; items get a Zipf-like
//! popularity. A user picks items by popularity and keeps them with a
//! probability that grows with their affinity (so *which* items a user rates
//! carries signal, as in real logs), and rates them
//! `round(3.5 + b_u + b_i + p_u·q_i + noise)` clamped to 1..5. Activity per
//! user is log-normal. Users are generated in parallel chunks, each with its
//! own seeded RNG, so the output depends only on the parameters.

use std::path::Path;

use polars::prelude::*;
use rand::distributions::Distribution;
use rand::seq::SliceRandom;
use rand::{rngs::StdRng, Rng, SeedableRng};
use rayon::prelude::*;

use crate::error::{Error, Result};

/// | Name | Default | Purpose | Range |
/// |---|---|---|---|
/// | users | 1000 | number of users | ≥ 1 |
/// | items | 800 | number of items | ≥ 2 |
/// | ratings | 50 000 | target number of ratings (approximate) | ≥ users |
/// | rank | 8 | rank of the planted structure | ≥ 1 |
/// | popularity_exponent | 0.9 | Zipf exponent of item popularity | ≥ 0 |
/// | noise | 0.6 | std-dev of rating noise | ≥ 0 |
/// | string_ids | false | ids like `u12`/`i34` instead of integers | |
/// | seed | 42 | RNG seed | any |
#[derive(Clone, Debug)]
pub struct SynthParams {
    pub users: usize,
    pub items: usize,
    pub ratings: usize,
    pub rank: usize,
    pub popularity_exponent: f64,
    pub noise: f64,
    pub string_ids: bool,
    pub seed: u64,
}

impl Default for SynthParams {
    fn default() -> Self {
        SynthParams {
            users: 1000,
            items: 800,
            ratings: 50_000,
            rank: 8,
            popularity_exponent: 0.9,
            noise: 0.6,
            string_ids: false,
            seed: 42,
        }
    }
}

impl SynthParams {
    pub fn check(&self) -> Result<()> {
        if self.users == 0 || self.users > u32::MAX as usize {
            return Err(Error::param(
                "users",
                self.users,
                "must be in 1..=4294967295",
            ));
        }
        if self.items < 2 || self.items > u32::MAX as usize {
            return Err(Error::param(
                "items",
                self.items,
                "must be in 2..=4294967295",
            ));
        }
        if self.ratings < self.users {
            return Err(Error::param(
                "ratings",
                self.ratings,
                "must be at least the number of users",
            ));
        }
        if self.ratings as f64 > 0.5 * self.users as f64 * self.items as f64 {
            return Err(Error::param(
                "ratings",
                self.ratings,
                "must be at most half of users × items",
            ));
        }
        if self.rank == 0 || self.rank > 4096 {
            return Err(Error::param("rank", self.rank, "must be in 1..=4096"));
        }
        if !self.popularity_exponent.is_finite()
            || self.popularity_exponent < 0.0
            || !self.noise.is_finite()
            || self.noise < 0.0
        {
            return Err(Error::param(
                "noise",
                self.noise,
                "noise and popularity exponent must be ≥ 0",
            ));
        }
        Ok(())
    }
}

/// Generated columns, in user order; `times` increase within each user.
pub struct Synth {
    pub users: Vec<u32>,
    pub items: Vec<u32>,
    pub ratings: Vec<f32>,
    pub times: Vec<i64>,
}

fn chunk_rng(seed: u64, stream: u64) -> StdRng {
    StdRng::seed_from_u64(
        seed ^ stream
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(0x5851_F42D_4C95_7F2D),
    )
}

fn normal_vec(rng: &mut StdRng, n: usize, sd: f64) -> Vec<f32> {
    let d = rand_distr_normal(sd);
    (0..n).map(|_| d.sample(rng) as f32).collect()
}

fn rand_distr_normal(sd: f64) -> ndarray_rand::rand_distr::Normal<f64> {
    ndarray_rand::rand_distr::Normal::new(0.0, sd.max(1e-12)).expect("finite positive sd")
}

pub fn generate(p: &SynthParams) -> Result<Synth> {
    p.check()?;
    let k = p.rank;
    let mut rng = chunk_rng(p.seed, u64::MAX);
    let item_f = normal_vec(&mut rng, p.items * k, 1.0);
    let item_b = normal_vec(&mut rng, p.items, 0.4);
    // Zipf-like popularity over a random ranking of the items.
    let mut rank: Vec<usize> = (0..p.items).collect();
    rank.shuffle(&mut rng);
    let mut cdf = vec![0f64; p.items];
    let mut acc = 0.0;
    for i in 0..p.items {
        acc += 1.0 / ((rank[i] + 1) as f64).powf(p.popularity_exponent);
        cdf[i] = acc;
    }
    let total_w = acc;
    // Log-normal activity, scaled to the target count.
    let act: Vec<f64> = (0..p.users)
        .map(|_| rand_distr_normal(0.8).sample(&mut rng).exp())
        .collect();
    let act_sum: f64 = act.iter().sum();
    let cap = (p.items / 3).max(1);
    let counts: Vec<usize> = act
        .iter()
        .map(|a| ((p.ratings as f64 * a / act_sum).round() as usize).clamp(1, cap))
        .collect();
    let start = 1_577_836_800i64; // 2020-01-01
    let span = 365 * 86_400i64;

    const CHUNK: usize = 1024;
    let parts: Vec<Synth> = (0..p.users.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| {
            let mut rng = chunk_rng(p.seed, c as u64);
            let mut out = Synth {
                users: Vec::new(),
                items: Vec::new(),
                ratings: Vec::new(),
                times: Vec::new(),
            };
            let mut chosen = std::collections::HashSet::new();
            let noise = rand_distr_normal(p.noise);
            for (u, &count) in counts
                .iter()
                .enumerate()
                .take(((c + 1) * CHUNK).min(p.users))
                .skip(c * CHUNK)
            {
                let pu = normal_vec(&mut rng, k, 1.0);
                let bu = rand_distr_normal(0.3).sample(&mut rng);
                chosen.clear();
                let mut times: Vec<i64> =
                    (0..count).map(|_| start + rng.gen_range(0..span)).collect();
                times.sort_unstable();
                let mut tries = 0usize;
                while chosen.len() < count && tries < 50 * count + 100 {
                    tries += 1;
                    let x = rng.gen::<f64>() * total_w;
                    let i = cdf.partition_point(|&c| c < x).min(p.items - 1);
                    if chosen.contains(&i) {
                        continue;
                    }
                    let q = &item_f[i * k..(i + 1) * k];
                    let s = pu.iter().zip(q).map(|(a, b)| a * b).sum::<f32>() as f64
                        / (k as f64).sqrt();
                    // Keep with probability sigmoid(2s): affinity drives choice.
                    if rng.gen::<f64>() < 1.0 / (1.0 + (-2.0 * s).exp()) {
                        let t = times[chosen.len()];
                        chosen.insert(i);
                        let r = 3.5 + bu + item_b[i] as f64 + 0.9 * s + noise.sample(&mut rng);
                        out.users.push(u as u32);
                        out.items.push(i as u32);
                        out.ratings.push(r.round().clamp(1.0, 5.0) as f32);
                        out.times.push(t);
                    }
                }
            }
            out
        })
        .collect();
    let n: usize = parts.iter().map(|s| s.users.len()).sum();
    let mut all = Synth {
        users: Vec::with_capacity(n),
        items: Vec::with_capacity(n),
        ratings: Vec::with_capacity(n),
        times: Vec::with_capacity(n),
    };
    for s in parts {
        all.users.extend(s.users);
        all.items.extend(s.items);
        all.ratings.extend(s.ratings);
        all.times.extend(s.times);
    }
    Ok(all)
}

/// Writes generated data as CSV (`user,item,rating,timestamp`) or, for a
/// `.parquet` path, as Parquet. The write is atomic.
pub fn write(s: Synth, string_ids: bool, path: &Path) -> Result<usize> {
    let n = s.users.len();
    let pl = |e: PolarsError| Error::Polars {
        path: path.to_path_buf(),
        source: e,
    };
    let (user, item): (Column, Column) = if string_ids {
        (
            Column::new(
                "user".into(),
                s.users.iter().map(|u| format!("u{u}")).collect::<Vec<_>>(),
            ),
            Column::new(
                "item".into(),
                s.items.iter().map(|i| format!("i{i}")).collect::<Vec<_>>(),
            ),
        )
    } else {
        (
            Column::new(
                "user".into(),
                s.users.iter().map(|&u| u as i64).collect::<Vec<_>>(),
            ),
            Column::new(
                "item".into(),
                s.items.iter().map(|&i| i as i64).collect::<Vec<_>>(),
            ),
        )
    };
    // Ratings are whole stars; integers keep the CSV small.
    let rating = Column::new(
        "rating".into(),
        s.ratings.iter().map(|&r| r as i32).collect::<Vec<_>>(),
    );
    let time = Column::new("timestamp".into(), s.times);
    let mut df = DataFrame::new_infer_height(vec![user, item, rating, time]).map_err(pl)?;
    let parquet = path
        .extension()
        .is_some_and(|e| e == "parquet" || e == "pq");
    crate::util::atomic_write(path, |w| {
        if parquet {
            ParquetWriter::new(w)
                .finish(&mut df)
                .map(|_| ())
                .map_err(pl)
        } else {
            CsvWriter::new(w)
                .include_header(true)
                .finish(&mut df)
                .map_err(pl)
        }
    })?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generator_is_seeded_and_has_no_duplicate_pairs() {
        let p = SynthParams {
            users: 300,
            items: 200,
            ratings: 6000,
            ..Default::default()
        };
        let a = generate(&p).unwrap();
        let b = generate(&p).unwrap();
        assert_eq!(a.items, b.items);
        assert_eq!(a.ratings, b.ratings);
        let mut pairs: Vec<(u32, u32)> = a
            .users
            .iter()
            .copied()
            .zip(a.items.iter().copied())
            .collect();
        let n = pairs.len();
        assert!(n > 4000 && n < 8000, "{n}");
        pairs.sort_unstable();
        pairs.dedup();
        assert_eq!(pairs.len(), n);
        assert!(a.ratings.iter().all(|&r| (1.0..=5.0).contains(&r)));
        // Popularity skew: the top 10% of items hold well over 10% of ratings.
        let mut c = vec![0usize; 200];
        a.items.iter().for_each(|&i| c[i as usize] += 1);
        c.sort_unstable_by(|x, y| y.cmp(x));
        assert!(c[..20].iter().sum::<usize>() as f64 > 0.25 * n as f64);
    }

    #[test]
    fn bad_params_are_refused() {
        assert!(SynthParams {
            items: 1,
            ..Default::default()
        }
        .check()
        .is_err());
        assert!(SynthParams {
            ratings: 10,
            ..Default::default()
        }
        .check()
        .is_err());
    }
}
