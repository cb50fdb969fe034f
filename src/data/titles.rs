//! Item titles from MovieLens item files: `u.item` (`|`-separated, Latin-1),
//! `movies.dat` (`::`-separated, Latin-1) and `movies.csv` (`movieId,title,genres`).

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};

/// Reads an item file into external id → title.
pub fn read_titles(path: &Path) -> Result<HashMap<String, String>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    // Latin-1 maps each byte to the code point of the same value; valid UTF-8
    // (movies.csv) is kept as is.
    let text = match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => e.into_bytes().iter().map(|&b| b as char).collect(),
    };
    let mut out = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let (id, title) = if line.contains("::") {
            let mut f = line.splitn(3, "::");
            (f.next(), f.next())
        } else if line.contains('|') {
            let mut f = line.splitn(3, '|');
            (f.next(), f.next())
        } else if let Some((id, rest)) = line.split_once(',') {
            if n == 0 && id.eq_ignore_ascii_case("movieId") {
                continue;
            }
            // movies.csv quotes titles that contain commas.
            let title = if let Some(stripped) = rest.strip_prefix('"') {
                stripped
                    .split("\",")
                    .next()
                    .map(|t| t.replace("\"\"", "\""))
            } else {
                rest.split(',').next().map(str::to_string)
            };
            out.insert(id.trim().to_string(), title.unwrap_or_default());
            continue;
        } else {
            (None, None)
        };
        match (id, title) {
            (Some(id), Some(t)) => {
                out.insert(id.trim().to_string(), t.to_string());
            }
            _ => {
                return Err(Error::Format {
                    path: path.to_path_buf(),
                    message: format!(
                        "line {}: expected `id|title|…`, `id::title::…` or `id,title,…`",
                        n + 1
                    ),
                })
            }
        }
    }
    Ok(out)
}
