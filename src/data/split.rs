//! Train/test splits: random, per user, and by time. Every entry lands in
//! exactly one side; all splits are seeded.

use std::str::FromStr;

use rand::seq::SliceRandom;
use rand::{rngs::StdRng, SeedableRng};

use crate::error::{Error, Result};
use crate::interactions::Interactions;

/// `random:F` (a uniform fraction F of all entries), `user:F` (a fraction F of
/// each user's entries, keeping at least one in train), `time:F` (the newest
/// fraction F of entries).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SplitSpec {
    Random(f64),
    User(f64),
    Time(f64),
}

impl FromStr for SplitSpec {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (kind, frac) = s.split_once(':').ok_or_else(|| {
            format!("split {s:?} must look like random:0.2, user:0.2 or time:0.2")
        })?;
        let f: f64 = frac
            .parse()
            .map_err(|_| format!("split fraction {frac:?} is not a number"))?;
        if !(f > 0.0 && f < 1.0) {
            return Err(format!(
                "split fraction {f} must be strictly between 0 and 1"
            ));
        }
        match kind {
            "random" => Ok(SplitSpec::Random(f)),
            "user" => Ok(SplitSpec::User(f)),
            "time" => Ok(SplitSpec::Time(f)),
            _ => Err(format!("split kind {kind:?} must be random, user or time")),
        }
    }
}

/// Splits `x` into (train, test). Both keep `x`'s id maps; entries keep their
/// original relative order within each side.
pub fn split(x: &Interactions, spec: SplitSpec, seed: u64) -> Result<(Interactions, Interactions)> {
    let n = x.len();
    let mut is_test = vec![false; n];
    let mut rng = StdRng::seed_from_u64(seed);
    match spec {
        SplitSpec::Random(f) => {
            let mut idx: Vec<usize> = (0..n).collect();
            idx.shuffle(&mut rng);
            let n_test = (f * n as f64).round() as usize;
            for &i in &idx[..n_test] {
                is_test[i] = true;
            }
        }
        SplitSpec::User(f) => {
            let rows = crate::interactions::Csr::build(
                x.n_users(),
                &x.users,
                &(0..n as u32).collect::<Vec<_>>(),
                None,
            );
            let mut entries: Vec<u32> = Vec::new();
            for u in 0..rows.n_rows() {
                entries.clear();
                entries.extend_from_slice(rows.row(u));
                let m = entries.len();
                if m < 2 {
                    continue;
                }
                entries.shuffle(&mut rng);
                let n_test = ((f * m as f64).round() as usize).clamp(1, m - 1);
                for &e in &entries[..n_test] {
                    is_test[e as usize] = true;
                }
            }
        }
        SplitSpec::Time(f) => {
            let t = x.times.as_ref().ok_or_else(|| {
                Error::Other("split time:F needs a timestamp column, and this data has none".into())
            })?;
            let mut idx: Vec<usize> = (0..n).collect();
            idx.sort_by_key(|&i| (t[i], i));
            let n_test = (f * n as f64).round() as usize;
            for &i in &idx[n - n_test..] {
                is_test[i] = true;
            }
        }
    }
    let train: Vec<usize> = (0..n).filter(|&i| !is_test[i]).collect();
    let test: Vec<usize> = (0..n).filter(|&i| is_test[i]).collect();
    Ok((x.subset(&train), x.subset(&test)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interactions::IdMap;
    use std::collections::HashSet;
    use std::sync::Arc;

    fn sample() -> Interactions {
        let mut users = Vec::new();
        let mut items = Vec::new();
        for u in 0..50u32 {
            for i in 0..(1 + u % 9) {
                users.push(u);
                items.push((u * 7 + i * 3) % 40);
            }
        }
        let n = users.len();
        Interactions {
            users,
            items,
            values: (0..n).map(|k| (k % 5) as f32 + 1.0).collect(),
            times: Some((0..n as i64).map(|k| (k * 7919) % 1000).collect()),
            user_ids: Arc::new(IdMap::from_ints((0..50).collect())),
            item_ids: Arc::new(IdMap::from_ints((0..40).collect())),
        }
    }

    fn pairs(x: &Interactions) -> Vec<(u32, u32)> {
        x.users
            .iter()
            .copied()
            .zip(x.items.iter().copied())
            .collect()
    }

    #[test]
    fn splits_partition_the_data_without_leaks() {
        let x = sample();
        for spec in [
            SplitSpec::Random(0.2),
            SplitSpec::User(0.3),
            SplitSpec::Time(0.25),
        ] {
            let (tr, te) = split(&x, spec, 7).unwrap();
            assert_eq!(tr.len() + te.len(), x.len(), "{spec:?}");
            let a: HashSet<_> = pairs(&tr).into_iter().collect();
            let b: HashSet<_> = pairs(&te).into_iter().collect();
            assert!(a.is_disjoint(&b), "{spec:?} leaks a pair");
            let all: HashSet<_> = pairs(&x).into_iter().collect();
            assert_eq!(a.union(&b).count(), all.len());
            // Same seed, same split.
            let (tr2, _) = split(&x, spec, 7).unwrap();
            assert_eq!(pairs(&tr), pairs(&tr2));
        }
    }

    #[test]
    fn user_split_keeps_users_on_both_sides() {
        let x = sample();
        let (tr, te) = split(&x, SplitSpec::User(0.5), 1).unwrap();
        let train_users: HashSet<u32> = tr.users.iter().copied().collect();
        for u in &te.users {
            assert!(train_users.contains(u));
        }
        // Users with a single entry stay entirely in train.
        assert!(!te.users.contains(&0));
    }

    #[test]
    fn time_split_takes_the_newest() {
        let x = sample();
        let (tr, te) = split(&x, SplitSpec::Time(0.2), 0).unwrap();
        let max_train = tr.times.unwrap().into_iter().max().unwrap();
        let min_test = te.times.unwrap().into_iter().min().unwrap();
        assert!(max_train <= min_test);
    }

    #[test]
    fn parses_specs() {
        assert_eq!(
            "user:0.2".parse::<SplitSpec>().unwrap(),
            SplitSpec::User(0.2)
        );
        assert!("user:1.5".parse::<SplitSpec>().is_err());
        assert!("foo:0.2".parse::<SplitSpec>().is_err());
        assert!("0.2".parse::<SplitSpec>().is_err());
    }
}
