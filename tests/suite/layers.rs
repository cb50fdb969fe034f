//! The layer rule of docs/architecture.md: a module of `src/` uses only
//! modules of lower layers (plus the same-layer uses listed in `ALSO`). Read
//! from the source: every `crate::name` path outside `#[cfg(test)]` code.
//! Test modules are exempt: they build fixtures with whatever they need.

use std::collections::BTreeSet;
use std::path::Path;

/// (module, layer), bottom up. A new top-level module must be added here.
const LAYERS: &[(&str, u32)] = &[
    ("error", 1),
    ("linalg", 1),
    ("util", 1),
    ("interactions", 2),
    ("data", 2),
    ("model", 3),
    ("score", 4),
    ("eval", 4),
    ("train", 5),
    ("spark", 6),
    ("engine", 7),
    ("retrain", 8),
    ("report", 8),
    ("loadtest", 8),
    ("serve", 9),
    ("cli", 10),
    ("lib", 11),
    ("main", 11),
];

/// Same-layer uses that are allowed (one way only): evaluation ranks with
/// the scorer's top-N; loading builds interactions; atomic writes report
/// errors.
const ALSO: &[(&str, &str)] = &[
    ("eval", "score"),
    ("data", "interactions"),
    ("util", "error"),
];

fn layer(m: &str) -> Option<u32> {
    LAYERS.iter().find(|(n, _)| *n == m).map(|(_, l)| *l)
}

/// The top-level modules named by `crate::…` paths in `src`, test code cut.
fn crate_uses(src: &str) -> BTreeSet<String> {
    let code = match src.find("\n#[cfg(test)]") {
        Some(i) => &src[..i],
        None => src,
    };
    // Whole-line comments out (doc links name modules without using them);
    // then one string, so a `use crate::{…}` group may span lines.
    let code: String = code
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        // `other_crate::x` or `$crate::x` are not ours.
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let Some(group) = rest.strip_prefix('{') else {
            out.insert(ident(rest));
            continue;
        };
        // The first name of each top-level part of the group.
        let (mut depth, mut start) = (0usize, 0usize);
        for (n, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    out.insert(ident(&group[start..n]));
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    out.insert(ident(&group[start..n]));
                    start = n + 1;
                }
                _ => {}
            }
        }
    }
    // Empty names and items of the crate root are not modules.
    out.retain(|n| !n.is_empty() && n != "Result" && n != "Error");
    out
}

/// The violations of one module's uses.
fn violations(module: &str, uses: &BTreeSet<String>) -> Vec<String> {
    let Some(own) = layer(module) else {
        return vec![format!("module `{module}` is not in the layer table")];
    };
    let mut bad = Vec::new();
    for u in uses {
        if u == module {
            continue;
        }
        match layer(u) {
            None => bad.push(format!("`{module}` uses `{u}`, which is not in the layer table")),
            Some(l) if l < own => {}
            Some(l) if l == own && ALSO.contains(&(module, u.as_str())) => {}
            Some(l) => bad.push(format!(
                "`{module}` (layer {own}) uses `{u}` (layer {l}): a module may only use lower layers"
            )),
        }
    }
    bad
}

fn rs_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_module_uses_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rs_files(&src, &mut files);
    files.sort();
    let mut bad = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = top.trim_end_matches(".rs").to_string();
        let text = std::fs::read_to_string(f).unwrap();
        for v in violations(&module, &crate_uses(&text)) {
            bad.push(format!("{}: {v}", rel.display()));
        }
    }
    assert!(files.len() > 20, "found only {} source files", files.len());
    assert!(bad.is_empty(), "layer violations:\n{}", bad.join("\n"));
}

#[test]
fn an_upward_import_is_caught() {
    // The check itself must be able to fail: `model` reaching up into `train`
    // (the cycle this rule was written against) is refused; test code is not.
    let src = "use crate::interactions::Csr;\nuse crate::{\n    linalg::{dot, axpy},\n    train::EpochReport,\n};\n\
               fn f() { crate::util::x(); }\n#[cfg(test)]\nmod tests { use crate::engine::Trainer; }\n";
    let uses = crate_uses(src);
    assert_eq!(
        uses.into_iter().collect::<Vec<_>>(),
        ["interactions", "linalg", "train", "util"]
    );
    let v = violations("model", &crate_uses(src));
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].contains("`model` (layer 3) uses `train` (layer 5)"),
        "{v:?}"
    );
    // Same-layer uses are refused unless listed.
    assert!(violations("score", &crate_uses("use crate::eval::x;")).len() == 1);
    assert!(violations("eval", &crate_uses("use crate::score::top_n;")).is_empty());
}
