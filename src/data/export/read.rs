//! Reading an export back: [`read`], [`read_manifest`], [`read_id_map`].

use std::fs::File;
use std::path::Path;

use polars::prelude::*;

use super::{part_name, polars_err, Manifest, Rows, EXPORT_FORMAT};
use crate::error::{Error, Result};
use crate::interactions::{IdMap, Interactions};

/// Reads an id map written by an export (rows in index order).
pub fn read_id_map(path: &Path) -> Result<IdMap> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let df = ParquetReader::new(f).finish().map_err(polars_err(path))?;
    let pl = polars_err(path);
    let index: Vec<i32> = df
        .column("index")
        .and_then(|c| Ok(c.i32()?.into_no_null_iter().collect()))
        .map_err(&pl)?;
    if index.iter().enumerate().any(|(n, &i)| i as usize != n) {
        return Err(Error::Format {
            path: path.to_path_buf(),
            message: "id map rows are not in index order 0, 1, 2, …".into(),
        });
    }
    let id = df.column("id").map_err(&pl)?;
    Ok(match id.dtype() {
        DataType::String => IdMap::from_strings(
            id.str()
                .map_err(&pl)?
                .iter()
                .map(|s| s.unwrap_or_default().to_string())
                .collect(),
        ),
        _ => IdMap::from_ints(
            id.cast(&DataType::Int64)
                .and_then(|c| Ok(c.i64()?.into_no_null_iter().collect()))
                .map_err(&pl)?,
        ),
    })
}

/// Reads `DIR/manifest.json`.
pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let p = dir.join("manifest.json");
    let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
    let m: Manifest = serde_json::from_str(&text).map_err(|e| Error::Format {
        path: p.clone(),
        message: format!("not an export manifest: {e}"),
    })?;
    if m.format != EXPORT_FORMAT {
        return Err(Error::Format {
            path: p,
            message: format!("format is {:?}, expected {EXPORT_FORMAT:?}", m.format),
        });
    }
    Ok(m)
}

/// Reads an export back into interactions (every partition, in memory),
/// with its manifest. A corrupt file is an error on it, never a panic.
pub fn read(dir: &Path) -> Result<(Interactions, Manifest)> {
    crate::data::guard_reader(dir, || read_unguarded(dir))
}

fn read_unguarded(dir: &Path) -> Result<(Interactions, Manifest)> {
    let m = read_manifest(dir)?;
    let user_ids = read_id_map(&dir.join("user_ids.parquet"))?;
    let item_ids = read_id_map(&dir.join("item_ids.parquet"))?;
    let mut x = Interactions {
        users: Vec::with_capacity(m.rows),
        items: Vec::with_capacity(m.rows),
        values: Vec::with_capacity(m.rows),
        times: m.has_time.then(Vec::new),
        user_ids: std::sync::Arc::new(user_ids),
        item_ids: std::sync::Arc::new(item_ids),
    };
    for p in 0..m.partitions {
        let path = dir.join(part_name(p));
        let f = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let df = ParquetReader::new(f).finish().map_err(polars_err(&path))?;
        let r = Rows::from_frame(&df).map_err(polars_err(&path))?;
        let (nu, ni) = (x.n_users(), x.n_items());
        if r.users.iter().any(|&u| u < 0 || u as usize >= nu)
            || r.items.iter().any(|&i| i < 0 || i as usize >= ni)
        {
            return Err(Error::Format {
                path,
                message: format!("an id outside the id maps ({nu} users, {ni} items)"),
            });
        }
        x.users.extend(r.users.iter().map(|&u| u as u32));
        x.items.extend(r.items.iter().map(|&i| i as u32));
        x.values.extend(&r.values);
        if let (Some(t), Some(rt)) = (&mut x.times, &r.times) {
            t.extend(rt);
        }
    }
    if x.len() != m.rows {
        return Err(Error::Format {
            path: dir.join("manifest.json"),
            message: format!(
                "{} rows in the partitions, the manifest says {}",
                x.len(),
                m.rows
            ),
        });
    }
    Ok((x, m))
}
