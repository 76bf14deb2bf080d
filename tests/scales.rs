//! Estimated (sampled) zoom colour scales against exact ones.

mod common;

use pointillist::query::{Agg, Filter};
use pointillist::raster::{sample, zoom};
use pointillist::render::{Style, scale_accuracy};
use pointillist::store::Dataset;
use std::sync::OnceLock;

const ROWS: usize = 400_000;
/// Small enough that the test dataset is many budgets.
const SAMPLE_ROWS: u64 = 16_384;

fn dataset() -> &'static Dataset {
    static DS: OnceLock<(tempfile::TempDir, Dataset)> = OnceLock::new();
    &DS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = common::packed_towers(dir.path(), "towers", ROWS, 11);
        let ds = Dataset::open(&path).unwrap();
        (dir, ds)
    })
    .1
}

/// Within the documented bound: at most 5% of a zoom's pixels change
/// colour by more than 16 of 256 levels, and the mean change is under 6
/// levels; and the sample reads a bounded number of rows.
#[test]
fn sampled_scales_agree_with_exact_ones() {
    let ds = dataset();
    let m = &ds.manifest;
    let filters = [
        vec![],
        vec![Filter::parse("range:1000..3000", m).unwrap()],
        // Narrow: at z12 six pixels keep two rows, and the sample sees
        // none of them (expected: 4.2); at z14 none does (expected: 0.28).
        vec![Filter::parse("range:0..250", m).unwrap()],
        vec![Filter::parse("radio:in:LTE,NR", m).unwrap()],
    ];
    let mut compared = 0;
    for agg in ["count", "mean:range", "count_cat:radio"] {
        let agg = Agg::parse(agg).unwrap();
        for f in &filters {
            for z in [6u8, 8, 10, 12, 14] {
                let exact = zoom::zoom_stats(ds, z, 256, &agg, f, None).unwrap();
                let Some(est) = sample::zoom_stats(ds, z, 256, &agg, f, SAMPLE_ROWS, None).unwrap()
                else {
                    continue;
                };
                let style = Style::default();
                let Some(acc) = scale_accuracy(&exact, &est, &agg, &style).unwrap() else {
                    continue;
                };
                println!(
                    "{} {:?} z{z}: pixels {} differ {:.3} beyond16 {:.4} mean {:.2} max {}",
                    agg.to_text(),
                    f.iter().map(|f| f.to_text(m)).collect::<Vec<_>>(),
                    acc.pixels,
                    acc.differ,
                    acc.beyond_16,
                    acc.mean_levels,
                    acc.max_levels
                );
                assert!(
                    acc.beyond_16 <= 0.05 && acc.mean_levels < 6.0,
                    "{} z{z}: {acc:?}",
                    agg.to_text()
                );
                // The estimate counts about as many pixels as there are.
                let ratio = est.pixels as f64 / exact.pixels as f64;
                assert!((0.5..2.0).contains(&ratio), "pixels {ratio}");
                compared += 1;
            }
        }
    }
    assert!(compared >= 20, "compared {compared} scales");
}

/// A sample is not taken where it would not be cheaper than the exact pass.
#[test]
fn small_datasets_and_huge_pixels_get_exact_scales() {
    let ds = dataset();
    let agg = Agg::Count;
    // The dataset is under twice the budget.
    assert!(
        sample::zoom_stats(ds, 10, 256, &agg, &[], ROWS as u64, None)
            .unwrap()
            .is_none()
    );
    // At z0 a pixel holds tens of thousands of rows: widening 256 windows
    // to whole pixels would read more than four budgets.
    assert!(
        sample::zoom_stats(ds, 0, 256, &agg, &[], SAMPLE_ROWS, None)
            .unwrap()
            .is_none()
    );
}
