//! Unit tests of the BPR trainer.

use std::sync::Arc;

use super::maths::two_rows;
use super::BprParams;
use crate::interactions::{IdMap, Interactions};

fn blocks() -> Interactions {
    let mut users = Vec::new();
    let mut items = Vec::new();
    for u in 0..60u32 {
        for i in 0..40u32 {
            if (u < 30) == (i < 20) && (u + i) % 3 != 0 {
                users.push(u);
                items.push(i);
            }
        }
    }
    let n = users.len();
    Interactions {
        users,
        items,
        values: vec![1.0; n],
        times: None,
        user_ids: Arc::new(IdMap::from_ints((0..60).collect())),
        item_ids: Arc::new(IdMap::from_ints((0..40).collect())),
    }
}

#[test]
fn bpr_ranks_the_users_group_first_and_repeats_bit_for_bit() {
    let x = blocks();
    let p = BprParams {
        factors: 8,
        epochs: 40,
        threads: Some(2),
        ..Default::default()
    }
    .check()
    .unwrap();
    let m = p.fit(&x, None, &mut |_| {}).unwrap();
    let unseen_a = (0..20u32).find(|&i| !m.seen(0).contains(&i)).unwrap();
    let better = (20..40u32)
        .filter(|&b| m.predict(0, unseen_a) > m.predict(0, b))
        .count();
    assert!(
        better >= 18,
        "only {better} of 20 group-B items ranked below"
    );
    let m2 = p.fit(&x, None, &mut |_| {}).unwrap();
    assert_eq!(m.user_factors(), m2.user_factors());
    assert_eq!(m.item_bias(), m2.item_bias());
}

#[test]
fn two_rows_are_the_right_rows() {
    let mut m: Vec<f32> = (0..12).map(|v| v as f32).collect();
    let (a, b) = two_rows(&mut m, 2, 0, 3);
    assert_eq!(
        (&a[..], &b[..]),
        (&[6.0, 7.0, 8.0][..], &[0.0, 1.0, 2.0][..])
    );
    let (a, b) = two_rows(&mut m, 1, 3, 3);
    assert_eq!(
        (&a[..], &b[..]),
        (&[3.0, 4.0, 5.0][..], &[9.0, 10.0, 11.0][..])
    );
}

#[test]
fn setters_match_the_fields_and_check_names_the_parameter() {
    let a = BprParams::default().factors(8).reg(0.01).patience(Some(3));
    let b = BprParams {
        factors: 8,
        reg: 0.01,
        patience: Some(3),
        ..Default::default()
    };
    assert_eq!(a, b);
    let e = a.learning_rate(0.0).check().unwrap_err().to_string();
    assert!(e.contains("learning_rate"), "{e}");
}
