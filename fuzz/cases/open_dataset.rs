// `Dataset::open` on mutated datasets: the input is a manifest, a data
// file and an overview (see `split`); whatever opens must also survive
// `verify` and a few queries, and nothing may panic or fault.
//
// Shared by the libFuzzer target (fuzz/fuzz_targets) and the stable
// replay of the committed inputs (tests/fuzz_replay.rs).
use pointillist::geo::TileId;
use pointillist::query::{Agg, View};
use pointillist::store::{DATA_FILE, Dataset, MANIFEST_FILE, OVERVIEW_FILE};

/// `[u32 manifest length][manifest][u32 data length][data][overview]`,
/// little-endian; short inputs give empty parts.
fn split(mut b: &[u8]) -> [&[u8]; 3] {
    let mut take = || {
        let n = b
            .get(..4)
            .map_or(0, |h| u32::from_le_bytes(h.try_into().unwrap()) as usize);
        let rest = b.get(4..).unwrap_or(&[]);
        let n = n.min(rest.len());
        let (part, tail) = rest.split_at(n);
        b = tail;
        part
    };
    let manifest = take();
    let data = take();
    [manifest, data, b]
}

/// One input: the target's whole check.
pub fn check(input: &[u8]) {
    let [manifest, data, overview] = split(input);
    let dir = tempfile::tempdir_in(std::env::var("FUZZ_TMP").unwrap_or("/tmp".into())).unwrap();
    std::fs::write(dir.path().join(MANIFEST_FILE), manifest).unwrap();
    std::fs::write(dir.path().join(DATA_FILE), data).unwrap();
    std::fs::write(dir.path().join(OVERVIEW_FILE), overview).unwrap();
    let Ok(ds) = Dataset::open(dir.path()) else {
        return;
    };
    let _ = ds.verify();
    for agg in ["count", "count_cat:radio", "mean:range"] {
        let Ok(agg) = Agg::parse(agg) else { continue };
        for (z, x, y) in [(0, 0, 0), (3, 2, 3), (8, 75, 96)] {
            let view = View::tile(TileId::new(z, x, y).unwrap(), 256).unwrap();
            let _ = pointillist::raster::aggregate(&ds, &view, &agg, &[], None);
        }
    }
    for c in &ds.manifest.columns {
        let _ = pointillist::query::histogram::histogram(&ds, &c.name, 8, None, &[], &[], None);
    }
}
