use super::*;
use crate::data::LoadOptions;

fn files(d: &tempfile::TempDir) -> Vec<String> {
    let a = d.path().join("a.csv");
    std::fs::write(
        &a,
        "user,item,rating,ts\nann,x,1,10\nbob,y,2,10\nann,x,5,20\ncid,z,3,5\nann,x,3,15\nbob,y,4,10\n",
    )
    .unwrap();
    let b = d.path().join("b.csv");
    std::fs::write(&b, "user,item,rating,ts\ndan,x,2,1\nann,y,4,2\n").unwrap();
    vec![
        a.to_string_lossy().into_owned(),
        b.to_string_lossy().into_owned(),
    ]
}

fn read_parts(dir: &Path, m: &Manifest) -> Vec<(i32, i32, f32)> {
    let mut out = Vec::new();
    for p in 0..m.partitions {
        let path = dir.join(part_name(p));
        let df = ParquetReader::new(File::open(&path).unwrap())
            .finish()
            .unwrap();
        let r = Rows::from_frame(&df).unwrap();
        for n in 0..r.len() {
            assert_eq!(r.users[n] as usize % m.partitions, p);
            out.push((r.users[n], r.items[n], r.values[n]));
        }
    }
    out
}

#[test]
fn streamed_export_equals_the_loaded_data() {
    let d = tempfile::tempdir().unwrap();
    let src = files(&d);
    let opts = LoadOptions::default();
    let (x, _) = crate::data::load(&src, &opts).unwrap();
    let (a, b) = (d.path().join("mem"), d.path().join("stream"));
    let ma = write(&x, &a, 3, false, &src).unwrap();
    let mb = export(&src, &opts, &b, 3).unwrap();
    assert_eq!(mb.duplicates_dropped, 3);
    assert_eq!(mb.rows_read, 8);
    assert_eq!((mb.rows, mb.users, mb.items), (5, 4, 3));
    assert_eq!(ma.fingerprint, mb.fingerprint);
    let rows = read_parts(&b, &mb);
    assert_eq!(rows, read_parts(&a, &ma));
    // The reference: every loaded entry, by external id.
    let users = read_id_map(&b.join("user_ids.parquet")).unwrap();
    let items = read_id_map(&b.join("item_ids.parquet")).unwrap();
    let mut got: Vec<(String, String, f32)> = rows
        .iter()
        .map(|&(u, i, v)| {
            (
                users.key(u as u32).to_string(),
                items.key(i as u32).to_string(),
                v,
            )
        })
        .collect();
    let mut want: Vec<(String, String, f32)> = (0..x.len())
        .map(|n| {
            (
                x.user_ids.key(x.users[n]).to_string(),
                x.item_ids.key(x.items[n]).to_string(),
                x.values[n],
            )
        })
        .collect();
    got.sort_by(|p, q| p.partial_cmp(q).unwrap());
    want.sort_by(|p, q| p.partial_cmp(q).unwrap());
    assert_eq!(got, want);
    assert!(
        want.contains(&("ann".into(), "x".into(), 5.0)),
        "newest wins"
    );
    let (back, _) = read(&b).unwrap();
    assert_eq!((back.len(), back.n_users(), back.n_items()), (5, 4, 3));
    assert_eq!(back.times.as_ref().map(|t| t.len()), Some(5));
    // Re-exporting over an existing export replaces it whole.
    let mc = export(&src[..1], &opts, &b, 2).unwrap();
    assert_eq!(read_manifest(&b).unwrap(), mc);
    assert!(!b.join(part_name(2)).exists());
}

#[test]
fn a_malformed_row_names_its_line_and_leaves_no_directory() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a.csv");
    std::fs::write(&a, "user,item,rating\n1,2,3\n1,3,five\n").unwrap();
    let out = d.path().join("out");
    let err = export(
        &[a.to_string_lossy().into_owned()],
        &LoadOptions::default(),
        &out,
        2,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains(":3:") && err.contains("rating"), "{err}");
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
}

#[test]
fn integer_ids_stay_integers() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("u.data");
    std::fs::write(&a, "7\t100\t3\t1\n3\t100\t4\t2\n7\t5\t1\t3\n").unwrap();
    let out = d.path().join("out");
    let m = export(
        &[a.to_string_lossy().into_owned()],
        &LoadOptions::default(),
        &out,
        1,
    )
    .unwrap();
    assert_eq!(
        (m.users, m.items, m.rating_min, m.rating_max),
        (2, 2, 1.0, 4.0)
    );
    let u = read_id_map(&out.join("user_ids.parquet")).unwrap();
    assert!(matches!(&u, IdMap::Int { ids, .. } if ids == &vec![7, 3]));
}
