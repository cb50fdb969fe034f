#![no_main]

use recsys_fuzz::RowFormat;

libfuzzer_sys::fuzz_target!(|data: &[u8]| recsys_fuzz::rows(RowFormat::Ml1m, data));
