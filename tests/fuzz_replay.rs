//! Every committed fuzz input (fuzz/corpus and fuzz/seeds), run once
//! through the same checks as the libFuzzer targets, on the stable
//! toolchain: deterministic, and no nightly build in CI. Coverage-guided
//! runs that find new inputs are `scripts/fuzz.sh` (nightly, cargo fuzz).

use std::path::Path;

mod cover {
    include!("../fuzz/cases/cover.rs");
}
mod csv_reader {
    include!("../fuzz/cases/csv_reader.rs");
}
mod open_dataset {
    include!("../fuzz/cases/open_dataset.rs");
}
mod query_params {
    include!("../fuzz/cases/query_params.rs");
}

/// Runs `check` on every committed input of `target`; returns how many.
fn replay(target: &str, check: impl Fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for dir in ["corpus", "seeds"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        let mut files: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for f in files {
            let bytes = std::fs::read(&f).unwrap();
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&bytes)));
            assert!(r.is_ok(), "fuzz input {} fails its check", f.display());
            n += 1;
        }
    }
    assert!(n > 0, "no committed inputs for fuzz target {target}");
    n
}

#[test]
fn cover_inputs() {
    replay("cover", |b| {
        // libFuzzer's decoding of typed inputs (libfuzzer-sys uses
        // `arbitrary_take_rest`), so each file means the same input here.
        let u = arbitrary::Unstructured::new(b);
        if let Ok(input) = <cover::Input as arbitrary::Arbitrary>::arbitrary_take_rest(u) {
            cover::check(input);
        }
    });
}

#[test]
fn csv_reader_inputs() {
    replay("csv_reader", csv_reader::check);
}

#[test]
fn open_dataset_inputs() {
    replay("open_dataset", open_dataset::check);
}

#[test]
fn query_params_inputs() {
    replay("query_params", query_params::check);
}
