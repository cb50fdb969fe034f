//! A raw transaction log as it comes: UCI Online Retail (Latin-1, date-time
//! strings, anonymous rows, returns as negative quantities, one row per
//! invoice line).

use super::*;

const RETAIL: &str = "online-retail/OnlineRetail.csv";

fn retail_flags() -> Vec<String> {
    [
        "--data",
        &data(RETAIL),
        "--user-col",
        "CustomerID",
        "--item-col",
        "StockCode",
        "--value-col",
        "Quantity",
        "--time-col",
        "InvoiceDate",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[test]
fn inspect_reports_what_loading_the_raw_log_does() {
    let mut args = vec!["inspect".to_string()];
    args.extend(retail_flags());
    args.push("--implicit".into());
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let j = json(&ok(&a));
    // Counted independently (pandas, latin-1): 541,909 lines, 135,080
    // without a CustomerID, 265,220 (customer, item) pairs with a positive
    // summed quantity, 2,395 with a sum ≤ 0.
    assert_eq!(j["rows_read"], 541_909);
    assert_eq!(j["empty_ids_skipped"], 135_080);
    assert_eq!(j["rows"], 265_220);
    assert_eq!(j["non_positive_dropped"], 2_395);
    assert_eq!(j["aggregate"], "sum");
    assert_eq!(j["feedback"], "counts");
    assert_eq!(j["has_timestamps"], true);
    let notes = j["notes"].to_string();
    assert!(
        notes.contains("windows-1252") && notes.contains("%m/%d/%Y %H:%M"),
        "{notes}"
    );
    // As ratings would load it: the last row of a pair wins.
    args.pop();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let j = json(&ok(&a));
    assert_eq!(j["aggregate"], "last");
    assert_eq!(j["non_positive_dropped"], 0);
}

#[test]
fn an_implicit_model_trains_on_the_raw_log_and_says_which_defaults_it_chose() {
    let d = tmp();
    let m = p(&d, "m.st");
    let mut args: Vec<String> = ["train", "-q", "--implicit", "-k", "16", "--epochs", "3"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(retail_flags());
    args.extend(["--out".to_string(), m.clone()]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&a);
    let info = ok(&["info", &m]);
    assert!(
        info.contains("defaults") && info.contains("counts") && info.contains("log confidence"),
        "{info}"
    );
    let recs = json(&ok(&[
        "recommend",
        "--model",
        &m,
        "--user",
        "17850",
        "--format",
        "json",
    ]));
    assert_eq!(recs["items"].as_array().unwrap().len(), 10, "{recs}");
}

#[test]
fn a_strict_utf_8_read_of_the_latin_1_log_names_the_line_and_column() {
    // The first byte that is not UTF-8 ("£" in Latin-1) is in the
    // Description of line 38,250; read as UTF-8 with Description as the
    // item, that line is the error.
    let e = fails(&[
        "inspect",
        "--data",
        &data(RETAIL),
        "--user-col",
        "InvoiceNo",
        "--item-col",
        "Description",
        "--encoding",
        "utf-8",
    ]);
    assert!(
        e.contains("OnlineRetail.csv:38250:")
            && e.contains("Description")
            && e.contains("--encoding"),
        "{e}"
    );
    let e = fails(&["inspect", "--data", &data(RETAIL), "--encoding", "klingon"]);
    assert!(e.contains("--encoding") && e.contains("klingon"), "{e}");
}
