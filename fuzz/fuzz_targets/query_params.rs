//! The query-string, parameter and filter parsers against a real manifest:
//! any input is parsed or refused with an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pointillist::server::params::{Params, RenderQuery};
use pointillist::store::Manifest;
use std::sync::OnceLock;

fn manifest() -> &'static Manifest {
    static M: OnceLock<Manifest> = OnceLock::new();
    M.get_or_init(|| {
        serde_json::from_str(include_str!("../manifest.json")).expect("fuzz/manifest.json")
    })
}

fuzz_target!(|input: &[u8]| {
    let Ok(raw) = std::str::from_utf8(input) else {
        return;
    };
    let m = manifest();
    let _ = RenderQuery::parse(Some(raw), m, &["z", "bbox", "bins", "width", "height"]);
    if let Ok(p) = Params::parse(Some(raw)) {
        let _ = p.bbox();
        let _ = p.filters(m);
        let _ = p.num("bins", 50usize, 1, 1000);
        let _ = p.num("radius_px", 8.0f64, 0.0, 64.0);
        let _ = p.float("lon");
    }
    let _ = pointillist::query::Filter::parse(raw, m);
    let _ = pointillist::query::Agg::parse(raw);
});
