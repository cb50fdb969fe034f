//! Property tests (proptest): id maps round-trip, splits partition the data,
//! top-N equals a full sort, saved models score identically, training is
//! deterministic for a fixed seed and thread count. Case counts are small so
//! the suite stays fast; a failure prints the shrunk input.

use std::collections::BTreeSet;
use std::sync::Arc;

use proptest::prelude::*;
use recsys::data::split::{split, SplitSpec};
use recsys::data::{load, LoadOptions};
use recsys::interactions::{IdMap, Interactions};
use recsys::model::Model;
use recsys::score::{recommend_index, top_n, Filters};
use recsys::train::als::{AlsParams, Solver};
use recsys::train::bpr::BprParams;
use recsys::train::sgd::SgdParams;

/// Ids of one side: distinct integers (any sign) or distinct strings.
fn id_map(n: usize) -> impl Strategy<Value = IdMap> {
    prop_oneof![
        prop::collection::hash_set(any::<i64>(), n)
            .prop_map(|s| IdMap::from_ints(s.into_iter().collect())),
        prop::collection::hash_set("\\PC{0,6}", n)
            .prop_map(|s| IdMap::from_strings(s.into_iter().collect())),
    ]
}

/// Interactions with distinct (user, item) pairs; entry `k` has the value
/// `k`, so each entry can be traced through a split.
fn interactions() -> impl Strategy<Value = Interactions> {
    (1usize..12, 1usize..15)
        .prop_flat_map(|(nu, ni)| {
            (
                prop::collection::btree_set((0..nu as u32, 0..ni as u32), 1..80),
                prop::collection::vec(0i64..40, 80),
                id_map(nu),
                id_map(ni),
            )
        })
        .prop_map(|(pairs, times, user_ids, item_ids)| {
            let (users, items): (Vec<u32>, Vec<u32>) = pairs.into_iter().unzip();
            let n = users.len();
            Interactions {
                users,
                items,
                values: (0..n).map(|k| k as f32).collect(),
                times: Some(times[..n].to_vec()),
                user_ids: Arc::new(user_ids),
                item_ids: Arc::new(item_ids),
            }
        })
}

/// Every entry traced back to its original index (its value).
fn tags(x: &Interactions, original: &Interactions) -> Vec<usize> {
    (0..x.len())
        .map(|k| {
            let t = x.values[k] as usize;
            assert_eq!(
                (x.users[k], x.items[k], x.times.as_ref().map(|v| v[k])),
                (
                    original.users[t],
                    original.items[t],
                    original.times.as_ref().map(|v| v[t])
                ),
                "entry {t} changed on its way through the split"
            );
            t
        })
        .collect()
}

fn same_factors(a: &Model, b: &Model) -> bool {
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    bits(a.user_factors()) == bits(b.user_factors())
        && bits(a.item_factors()) == bits(b.item_factors())
        && bits(a.user_bias()) == bits(b.user_bias())
        && bits(a.item_bias()) == bits(b.item_bias())
        && a.global_mean().to_bits() == b.global_mean().to_bits()
}

/// Two JSON values equal, numbers with a fraction to within 1e-12 relative.
fn json_close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::{Array, Number, Object};
    match (a, b) {
        (Number(x), Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-12 * x.abs().max(y.abs())
        }
        (Array(x), Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| json_close(v, w))
        }
        (Object(x), Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_close(v, w)))
        }
        _ => a == b,
    }
}

/// Ratings in 1..=5 so every trainer (explicit too) has something to fit.
fn rated(mut x: Interactions) -> Interactions {
    for (k, v) in x.values.iter_mut().enumerate() {
        *v = (k % 5) as f32 + 1.0;
    }
    x.compact()
}

fn fit(x: &Interactions, algo: u8, seed: u64, threads: usize) -> Model {
    let t = Some(threads);
    match algo {
        0 => SgdParams {
            factors: 3,
            epochs: 3,
            seed,
            threads: t,
            ..Default::default()
        }
        .check()
        .unwrap()
        .fit(x, None, &mut |_| {}),
        1 => AlsParams {
            factors: 3,
            epochs: 2,
            implicit: false,
            // Explicit ALS solves each row exactly; check() refuses cg for it.
            solver: Solver::Cholesky,
            seed,
            threads: t,
            ..Default::default()
        }
        .check()
        .unwrap()
        .fit(x, None, &mut |_| {}),
        2 => AlsParams {
            factors: 3,
            epochs: 2,
            seed,
            threads: t,
            ..Default::default()
        }
        .check()
        .unwrap()
        .fit(x, None, &mut |_| {}),
        _ => BprParams {
            factors: 3,
            epochs: 3,
            seed,
            threads: t,
            ..Default::default()
        }
        .check()
        .unwrap()
        .fit(x, None, &mut |_| {}),
    }
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn id_maps_round_trip(ids in (0usize..40).prop_flat_map(id_map)) {
        for i in 0..ids.len() as u32 {
            let key = ids.key(i);
            prop_assert_eq!(ids.get(&key.to_string()), Some(i), "{}", key);
            prop_assert_eq!(ids.get_key(&key), Some(i));
        }
        let identity: Vec<Option<u32>> = (0..ids.len() as u32).map(Some).collect();
        prop_assert_eq!(ids.translate_to(&ids), identity);
    }

    #[test]
    fn splits_partition_the_data_exactly(
        x in interactions(),
        f in 0.05f64..0.95,
        kind in 0u8..3,
        seed in any::<u64>(),
    ) {
        let spec = match kind {
            0 => SplitSpec::Random(f),
            1 => SplitSpec::User(f),
            _ => SplitSpec::Time(f),
        };
        let (train, test) = split(&x, spec, seed).unwrap();
        let (a, b) = (tags(&train, &x), tags(&test, &x));
        let mut all: Vec<usize> = a.iter().chain(&b).copied().collect();
        all.sort_unstable();
        prop_assert_eq!(all, (0..x.len()).collect::<Vec<_>>(), "every entry in exactly one side");
        match spec {
            SplitSpec::Random(f) => {
                prop_assert_eq!(test.len(), (f * x.len() as f64).round() as usize)
            }
            SplitSpec::User(_) => {
                for u in 0..x.n_users() as u32 {
                    let count = |s: &Interactions| s.users.iter().filter(|&&v| v == u).count();
                    let (m, tr, te) = (count(&x), count(&train), count(&test));
                    if m >= 2 {
                        prop_assert!(tr >= 1 && te >= 1, "user {u}: {m} entries, {tr} train, {te} test");
                    } else {
                        prop_assert_eq!(te, 0, "a user with one entry stays in train");
                    }
                }
            }
            SplitSpec::Time(_) => {
                let newest_train = train.times.as_ref().unwrap().iter().max();
                let oldest_test = test.times.as_ref().unwrap().iter().min();
                if let (Some(a), Some(b)) = (newest_train, oldest_test) {
                    prop_assert!(a <= b);
                }
            }
        }
    }

    #[test]
    fn top_n_equals_a_full_sort(
        scores in prop::collection::vec(
            prop_oneof![
                (-4i8..4).prop_map(|v| f32::from(v) * 0.5),
                Just(f32::NAN),
                Just(f32::INFINITY),
                Just(f32::NEG_INFINITY),
                Just(-0.0f32),
                any::<f32>(),
            ],
            0..200,
        ),
        n in 0usize..60,
    ) {
        let got = top_n(scores.iter().enumerate().map(|(i, &s)| (i as u32, s)), n);
        // Reference: NaN never ranks; higher score first, then lower index.
        let mut all: Vec<(u32, f32)> = scores
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.is_nan())
            .map(|(i, &s)| (i as u32, s))
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(n);
        let bits = |v: &[(u32, f32)]| v.iter().map(|&(i, s)| (i, s.to_bits())).collect::<Vec<_>>();
        prop_assert_eq!(bits(&got), bits(&all));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn loaded_ids_round_trip(
        users in prop::collection::btree_set("[a-c0-9]{1,4}", 1..10),
        items in prop::collection::btree_set("[0-9]{1,4}|[a-z0]{1,3}", 1..10),
        pick in prop::collection::vec(
            (any::<prop::sample::Index>(), any::<prop::sample::Index>()),
            1..40,
        ),
    ) {
        // External ids written as text come back as the same text, whether
        // they load as integers or (zero-padded, mixed) as strings.
        let users: Vec<String> = users.into_iter().collect();
        let items: Vec<String> = items.into_iter().collect();
        let rows: BTreeSet<(usize, usize)> = pick
            .iter()
            .map(|(u, i)| (u.index(users.len()), i.index(items.len())))
            .collect();
        let mut text = String::from("user,item\n");
        for &(u, i) in &rows {
            text.push_str(&format!("{},{}\n", users[u], items[i]));
        }
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("ids.csv");
        std::fs::write(&path, &text).unwrap();
        let (x, _) = load(&[path.to_string_lossy().into_owned()], &LoadOptions::default()).unwrap();
        prop_assert_eq!(x.len(), rows.len());
        for (k, &(u, i)) in rows.iter().enumerate() {
            prop_assert_eq!(x.user_ids.key(x.users[k]).to_string(), users[u].clone());
            prop_assert_eq!(x.item_ids.key(x.items[k]).to_string(), items[i].clone());
        }
    }

    #[test]
    fn saved_models_load_and_score_identically(
        x in interactions(),
        algo in 0u8..4,
        seed in any::<u64>(),
    ) {
        let x = rated(x);
        // BPR needs a negative item to sample (it refuses one item, rightly).
        prop_assume!(x.n_items() >= 2);
        let a = fit(&x, algo, seed, 1);
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("m.safetensors");
        a.save(&path).unwrap();
        let b = Model::load(&path).unwrap();
        prop_assert!(same_factors(&a, &b));
        // The metadata travels as JSON text, and serde_json's default float
        // parser may read a number back one ulp off (its `float_roundtrip`
        // feature is exact): the telemetry floats (epoch timings, metrics)
        // are compared to within rounding, everything else exactly. None of
        // them takes part in scoring, which is checked bit for bit below.
        let (ma, mb) = (serde_json::to_value(a.meta()).unwrap(), serde_json::to_value(b.meta()).unwrap());
        prop_assert!(json_close(&ma, &mb), "{ma}\n{mb}");
        for i in 0..a.n_items() as u32 {
            prop_assert_eq!(a.item_ids().key(i), b.item_ids().key(i));
        }
        let filters = Filters { exclude_seen: true, blocked: None };
        for u in 0..a.n_users() as u32 {
            prop_assert_eq!(a.user_ids().key(u), b.user_ids().key(u));
            prop_assert_eq!(a.seen(u), b.seen(u));
            let (ra, rb) = (
                recommend_index(&a, u, a.n_items(), &filters),
                recommend_index(&b, u, b.n_items(), &filters),
            );
            let bits = |v: &[(u32, f32)]| v.iter().map(|&(i, s)| (i, s.to_bits())).collect::<Vec<_>>();
            prop_assert_eq!(bits(&ra), bits(&rb));
        }
    }

    #[test]
    fn training_is_deterministic_for_a_seed_and_thread_count(
        x in interactions(),
        algo in 0u8..4,
        seed in any::<u64>(),
        threads in 1usize..=2,
    ) {
        let x = rated(x);
        // BPR needs a negative item to sample (it refuses one item, rightly).
        prop_assume!(x.n_items() >= 2);
        let (a, b) = (fit(&x, algo, seed, threads), fit(&x, algo, seed, threads));
        prop_assert!(same_factors(&a, &b), "algorithm {algo}, {threads} thread(s)");
    }
}

/// A gate condition in the grammar `recsys retrain --gate` documents.
fn gate_text() -> impl Strategy<Value = String> {
    let metric = prop_oneof![
        Just("rmse".to_string()),
        Just("mae".to_string()),
        (
            prop_oneof![Just("ndcg"), Just("precision"), Just("map")],
            1usize..50
        )
            .prop_map(|(m, k)| format!("{m}@{k}")),
    ];
    let op = prop_oneof![Just("<="), Just("<"), Just(">="), Just(">")];
    let rhs = prop_oneof![
        (0.0f64..10.0).prop_map(|v| format!("{v}")),
        (0.5f64..2.0, -0.1f64..0.1).prop_map(|(f, c)| format!("{f} * current + {c}")),
        Just("current".to_string()),
    ];
    prop::collection::vec((metric, op, rhs), 1..4).prop_map(|cs| {
        cs.into_iter()
            .map(|(m, o, r)| format!("{m} {o} {r}"))
            .collect::<Vec<_>>()
            .join(" and ")
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any text given to --gate, --every or --cron is a parse error at
    /// worst, never a panic.
    #[test]
    fn retrain_flags_never_panic(s in "\\PC{0,40}") {
        let _ = s.parse::<recsys::retrain::gate::Gate>();
        let _ = recsys::retrain::schedule::Schedule::every(&s);
        let _ = recsys::retrain::schedule::Schedule::cron(&s);
    }

    /// A gate printed (as the history records it) parses back to itself.
    #[test]
    fn gates_round_trip_through_their_text(t in gate_text()) {
        let g: recsys::retrain::gate::Gate = t.parse().map_err(TestCaseError::fail)?;
        let again: recsys::retrain::gate::Gate =
            g.to_string().parse().map_err(TestCaseError::fail)?;
        prop_assert_eq!(again, g);
    }
}
