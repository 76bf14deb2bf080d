// `pack` of an arbitrary CSV file: it packs, or fails with an error that
// leaves nothing behind; it never panics.
//
// Shared by the libFuzzer target (fuzz/fuzz_targets) and the stable
// replay of the committed inputs (tests/fuzz_replay.rs).
use pointillist::pack::{PackOptions, pack};

/// One input: the target's whole check.
pub fn check(input: &[u8]) {
    let dir = tempfile::tempdir_in(std::env::var("FUZZ_TMP").unwrap_or("/tmp".into())).unwrap();
    let csv = dir.path().join("in.csv");
    std::fs::write(&csv, input).unwrap();
    let out = dir.path().join("out");
    let mut o = PackOptions::new(vec![csv.display().to_string()], &out);
    o.partition_rows = 64;
    match pack(&o) {
        Ok(_) => {
            pointillist::store::Dataset::open(&out).expect("a finished pack opens");
        }
        Err(_) => assert!(!out.exists(), "a failed pack left its output"),
    }
}
