// Viewport and tile cover: for any box and budget the cover is bounded,
// sorted, disjoint and holds every point of the box.
//
// Shared by the libFuzzer target (fuzz/fuzz_targets) and the stable
// replay of the committed inputs (tests/fuzz_replay.rs).
use pointillist::geo::{MercatorBox, TileId, cover_key_ranges, hilbert};
use pointillist::query::View;

/// The target's input, decoded from bytes by `arbitrary`.
pub type Input = (u32, u32, u32, u32, u8, [f64; 4], (u8, u32, u32));

/// One input: the target's whole check.
pub fn check(input: Input) {
    let (a, b, c, d, budget, lnglat, (z, x, y)) = input;
    let max_cells = budget as usize % 128 + 1;
    let (qx0, qx1) = (a.min(b), a.max(b));
    let (qy0, qy1) = (c.min(d), c.max(d));
    let ranges = cover_key_ranges(qx0, qx1, qy0, qy1, max_cells);
    assert!(!ranges.is_empty() && ranges.len() <= max_cells);
    assert!(ranges.windows(2).all(|w| w[0].1 < w[1].0));
    for (px, py) in [(qx0, qy0), (qx1, qy1), (qx0, qy1), (qx1, qy0)] {
        let k = hilbert(px, py);
        assert!(ranges.iter().any(|&(lo, hi)| lo <= k && k <= hi));
    }
    let [w, s, e, n] = lnglat;
    let bbox = MercatorBox::from_lnglat(w, s, e, n);
    if let Ok(v) = View::viewport(bbox, 64, 64) {
        assert!(v.key_ranges().len() <= 64);
    }
    if let Ok(t) = TileId::new(z as u32, x as u64, y as u64) {
        let (lo, hi) = t.key_range();
        assert!(lo <= hi);
        let (x0, _, y0, _) = t.qbounds();
        let k = hilbert(x0 as u32, y0 as u32);
        assert!(lo <= k && k <= hi);
    }
}
