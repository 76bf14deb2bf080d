// The query-string, parameter and filter parsers against a real manifest:
// any input is parsed or refused with an error, never a panic.
//
// Shared by the libFuzzer target (fuzz/fuzz_targets) and the stable
// replay of the committed inputs (tests/fuzz_replay.rs).
use pointillist::server::params::{Params, RenderQuery};
use pointillist::server::spec::{self, Kind};
use pointillist::store::Manifest;
use std::sync::OnceLock;

fn manifest() -> &'static Manifest {
    static M: OnceLock<Manifest> = OnceLock::new();
    M.get_or_init(|| {
        serde_json::from_str(include_str!("../manifest.json")).expect("fuzz/manifest.json")
    })
}

/// One input: the target's whole check.
pub fn check(input: &[u8]) {
    let Ok(raw) = std::str::from_utf8(input) else {
        return;
    };
    let m = manifest();
    let _ = RenderQuery::parse(Some(raw), m, &spec::LEGEND);
    if let Ok(p) = Params::parse(Some(raw)) {
        // Every declared parameter of every endpoint, by its own parser.
        for e in [
            spec::TILE,
            spec::LEGEND,
            spec::HISTOGRAM,
            spec::COUNT,
            spec::AGGREGATE,
            spec::POINTS,
        ] {
            let _ = p.only(&e);
            for param in e.params() {
                match param.kind {
                    Kind::Int { .. } | Kind::IntOf { .. } => {
                        let _ = p.int(param);
                    }
                    Kind::Number { .. } => {
                        let _ = p.number(param);
                    }
                    Kind::Word { .. } => {
                        let _ = p.word(param);
                    }
                    Kind::Bool { .. } => {
                        let _ = p.flag(param);
                    }
                    Kind::Text { .. } => {}
                }
            }
        }
        let _ = p.bbox();
        let _ = p.filters(m);
        let _ = p.agg(m);
    }
    let _ = pointillist::query::Filter::parse(raw, m);
    let _ = pointillist::query::Agg::parse(raw);
}
