//! [`write`] and [`write_test`]: the export layout from loaded interactions.

use std::path::Path;

use super::{
    check_partitions, dense_i32, manifest, part_name, polars_err, write_frame, write_id_map,
    write_manifest, Manifest, Rows, Staged, Totals,
};
use crate::error::Result;
use crate::interactions::{IdMap, Interactions};

/// Writes loaded interactions in the export layout (see the module docs).
pub fn write(
    x: &Interactions,
    dir: &Path,
    partitions: usize,
    implicit: bool,
    sources: &[String],
) -> Result<Manifest> {
    check_partitions(partitions)?;
    dense_i32(x.n_users(), "users")?;
    dense_i32(x.n_items(), "items")?;
    let staged = Staged::new(dir)?;
    let mut parts: Vec<Rows> = (0..partitions)
        .map(|_| Rows {
            times: x.times.as_ref().map(|_| Vec::new()),
            ..Default::default()
        })
        .collect();
    for n in 0..x.len() {
        let r = &mut parts[x.users[n] as usize % partitions];
        r.users.push(x.users[n] as i32);
        r.items.push(x.items[n] as i32);
        r.values.push(x.values[n]);
        if let (Some(t), Some(src)) = (&mut r.times, &x.times) {
            t.push(src[n]);
        }
    }
    let mut totals = Totals::new(&x.user_ids, &x.item_ids);
    for (p, mut r) in parts.into_iter().enumerate() {
        // Loaded interactions have no duplicates left; this only sorts.
        r.resolve_duplicates();
        totals.add(&r);
        let path = staged.tmp.join(part_name(p));
        write_frame(&path, r.frame(false).map_err(polars_err(&path))?)?;
    }
    write_id_map(&staged.tmp.join("user_ids.parquet"), &x.user_ids)?;
    write_id_map(&staged.tmp.join("item_ids.parquet"), &x.item_ids)?;
    let m = manifest(
        totals,
        (x.n_users(), x.n_items(), partitions),
        implicit,
        x.times.is_some(),
        sources,
        (x.len(), 0, 0),
    );
    write_manifest(&staged.tmp, &m)?;
    staged.commit()?;
    Ok(m)
}

/// Writes a test side with the training side's dense ids, as one partition
/// (`DIR/part-00000.parquet`): an unknown user is -1, each distinct unknown
/// item gets its own negative id (so it counts as one missed positive).
/// Returns (rows, rows with an unknown user, rows with an unknown item).
pub fn write_test(
    test: &Interactions,
    user_ids: &IdMap,
    item_ids: &IdMap,
    dir: &Path,
) -> Result<(usize, usize, usize)> {
    let staged = Staged::new(dir)?;
    let tu = test.user_ids.translate_to(user_ids);
    let ti = test.item_ids.translate_to(item_ids);
    let mut r = Rows::default();
    let (mut unknown_users, mut unknown_items) = (0, 0);
    for n in 0..test.len() {
        let u = tu[test.users[n] as usize].map_or(-1, |u| u as i32);
        let i = ti[test.items[n] as usize].map_or(-2 - test.items[n] as i32, |i| i as i32);
        unknown_users += (u < 0) as usize;
        unknown_items += (i < 0) as usize;
        r.users.push(u);
        r.items.push(i);
        r.values.push(test.values[n]);
    }
    let path = staged.tmp.join(part_name(0));
    write_frame(&path, r.frame(false).map_err(polars_err(&path))?)?;
    staged.commit()?;
    Ok((test.len(), unknown_users, unknown_items))
}
