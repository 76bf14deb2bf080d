//! Aggregation engine against a naive scalar reference, over random data,
//! random views, filters and every reduction.

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use pointillist::geo::{self, MercatorBox, TileId};
use pointillist::pack::{PackOptions, pack};
use pointillist::query::bitsets::FilterBits;
use pointillist::query::brush::{BrushGrid, BrushIndex, BrushTarget, brushed_bounds};
use pointillist::query::histogram::{Histogram, count, histogram};
use pointillist::query::{Agg, Filter, View};
use pointillist::raster::{GridValues, aggregate};
use pointillist::render::Style;
use pointillist::store::Dataset;
use proptest::prelude::*;
use std::sync::{Arc, OnceLock};

const CATS: [&str; 4] = ["GSM", "LTE", "NR", "UMTS"];

#[derive(Clone, Debug)]
struct Row {
    qx: u32,
    qy: u32,
    val: f64,
    cat: usize,
    time: i64,
}

struct Fixture {
    _dir: tempfile::TempDir,
    /// Packed with the default overview.
    ds: Dataset,
    /// The same rows packed without an overview: everything from the rows.
    plain: Dataset,
    rows: Vec<Row>,
}

/// A small deterministic dataset: clusters plus uniform noise, some NaN values.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let n = 30_000usize;
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let centers = [(-74.0, 40.7), (2.35, 48.85), (139.7, 35.7), (0.0, 0.0)];
        let (mut lon, mut lat, mut val, mut cat, mut time) =
            (vec![], vec![], vec![], vec![], vec![]);
        for i in 0..n {
            let (x, y) = if i % 5 == 0 {
                (rnd() * 360.0 - 180.0, rnd() * 170.0 - 85.0)
            } else {
                let c = centers[i % centers.len()];
                (c.0 + (rnd() - 0.5) * 2.0, c.1 + (rnd() - 0.5) * 2.0)
            };
            lon.push(x);
            lat.push(y);
            val.push(if i % 17 == 0 {
                f64::NAN
            } else {
                (rnd() * 1000.0).round() / 10.0
            });
            cat.push(CATS[(rnd() * 4.0) as usize % 4]);
            time.push(1_500_000_000_000_000 + (rnd() * 1e14) as i64);
        }
        let schema = Arc::new(Schema::new(vec![
            Field::new("lon", DataType::Float64, false),
            Field::new("lat", DataType::Float64, false),
            Field::new("val", DataType::Float64, true),
            Field::new("radio", DataType::Utf8, false),
            Field::new(
                "created",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                false,
            ),
        ]));
        let cols: Vec<ArrayRef> = vec![
            Arc::new(Float64Array::from(lon.clone())),
            Arc::new(Float64Array::from(lat.clone())),
            Arc::new(Float64Array::from(val.clone())),
            Arc::new(StringArray::from(cat.clone())),
            Arc::new(TimestampMicrosecondArray::from(time.clone())),
        ];
        let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.parquet");
        let mut w = parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(&input).unwrap(),
            schema,
            None,
        )
        .unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let out = dir.path().join("ds");
        let mut o = PackOptions::new(vec![input.display().to_string()], &out);
        o.partition_rows = 2_000;
        // Cells of so few rows are a large share of them: keep them all.
        o.stats_share = 1.0;
        pack(&o).unwrap();
        let ds = Dataset::open(&out).unwrap();
        assert!(ds.overview.is_some(), "packed with an overview by default");
        assert!(ds.stats.is_some(), "packed with cell statistics");
        let plain_out = dir.path().join("plain");
        let mut o = PackOptions::new(vec![input.display().to_string()], &plain_out);
        o.partition_rows = 2_000;
        o.overview_level = 0;
        o.stats_share = 0.0;
        pack(&o).unwrap();
        let plain = Dataset::open(&plain_out).unwrap();
        assert!(plain.overview.is_none());
        let rows = (0..n)
            .map(|i| {
                let (mx, my) = geo::lnglat_to_meters(lon[i], lat[i]);
                let (qx, qy) = geo::quantize(mx, my);
                Row {
                    qx,
                    qy,
                    val: val[i],
                    cat: CATS.iter().position(|c| *c == cat[i]).unwrap(),
                    time: time[i],
                }
            })
            .collect();
        Fixture {
            _dir: dir,
            ds,
            plain,
            rows,
        }
    })
}

/// Naive pixel of a row for a view (the documented rules, written plainly).
fn naive_pixel(view: &View, r: &Row) -> Option<usize> {
    match *view {
        View::Tile { tile, size } => {
            let s = 32 - tile.z as u32;
            if (r.qx as u64 >> s) != tile.x as u64 || (r.qy as u64 >> s) != tile.y as u64 {
                return None;
            }
            let dx = r.qx as u64 - ((tile.x as u64) << s);
            let dy = r.qy as u64 - ((tile.y as u64) << s);
            let (c, rr) = ((dx * size as u64) >> s, (dy * size as u64) >> s);
            Some((rr * size as u64 + c) as usize)
        }
        View::TileMargin { tile, size, margin } => {
            // The row's pixel in its own tile at this zoom, placed on the
            // grid that starts `margin` pixels before this tile's corner.
            let s = 32 - tile.z as u32;
            let (tx, ty) = ((r.qx as u64 >> s) as i64, (r.qy as u64 >> s) as i64);
            let own = TileId::new(tile.z as u32, tx as u64, ty as u64).unwrap();
            let Some(p) = naive_pixel(&View::tile(own, size).unwrap(), r) else {
                unreachable!("a row is in its own tile")
            };
            let (size, m) = (size as i64, margin as i64);
            let col = (tx - tile.x as i64) * size + (p as i64 % size) + m;
            let row = (ty - tile.y as i64) * size + (p as i64 / size) + m;
            let side = size + 2 * m;
            ((0..side).contains(&col) && (0..side).contains(&row))
                .then_some((row * side + col) as usize)
        }
        View::Viewport {
            bbox: b,
            width,
            height,
        } => {
            let (x, y) = geo::dequantize(r.qx, r.qy);
            if x < b.xmin || x > b.xmax || y < b.ymin || y > b.ymax {
                return None;
            }
            let sx = width as f64 / (b.xmax - b.xmin);
            let sy = height as f64 / (b.ymax - b.ymin);
            let mut xx = (x * sx + -b.xmin * sx) as i64;
            let mut yy = (y * sy + -b.ymin * sy) as i64;
            if x == b.xmax {
                xx -= 1;
            }
            if y == b.ymax {
                yy -= 1;
            }
            let (w, h) = (width as i64, height as i64);
            let (xx, yy) = (xx.clamp(0, w - 1), yy.clamp(0, h - 1));
            Some(((h - 1 - yy) * w + xx) as usize)
        }
    }
}

fn passes(r: &Row, f: &[Filter]) -> bool {
    f.iter().all(|f| match f {
        Filter::Range { column, min, max } => {
            let v = if column == "val" {
                r.val
            } else {
                r.time as f64
            };
            v >= *min && v <= *max
        }
        Filter::In { values, .. } => values.iter().any(|v| v == CATS[r.cat]),
    })
}

fn naive(view: &View, agg: &Agg, filters: &[Filter]) -> Vec<f64> {
    let fx = fixture();
    let (w, h) = view.size();
    let ncat = if agg.category_column().is_some() {
        4
    } else {
        1
    };
    let mut vals: Vec<Vec<f64>> = vec![Vec::new(); w * h * ncat];
    let mut counts = vec![0u64; w * h * ncat];
    for r in &fx.rows {
        if !passes(r, filters) {
            continue;
        }
        if let Some(p) = naive_pixel(view, r) {
            let c = if ncat > 1 { p * ncat + r.cat } else { p };
            counts[c] += 1;
            if !r.val.is_nan() {
                vals[c].push(r.val);
            }
        }
    }
    let stat =
        |v: &Vec<f64>, f: &dyn Fn(&Vec<f64>) -> f64| if v.is_empty() { f64::NAN } else { f(v) };
    (0..w * h * ncat)
        .map(|i| {
            let v = &vals[i];
            let mean = |v: &Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
            let var = |v: &Vec<f64>| {
                let m = mean(v);
                v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64
            };
            match agg {
                Agg::Count | Agg::CountCat(_) => counts[i] as f64,
                Agg::Any => (counts[i] > 0) as u8 as f64,
                Agg::Sum(_) | Agg::CatSum(..) => stat(v, &|v| v.iter().sum()),
                Agg::Mean(_) | Agg::CatMean(..) => stat(v, &mean),
                Agg::Min(_) => stat(v, &|v| v.iter().cloned().fold(f64::INFINITY, f64::min)),
                Agg::Max(_) => stat(v, &|v| v.iter().cloned().fold(f64::NEG_INFINITY, f64::max)),
                Agg::Std(_) => stat(v, &|v| var(v).sqrt()),
                Agg::Var(_) => stat(v, &var),
            }
        })
        .collect()
}

fn engine(view: &View, agg: &Agg, filters: &[Filter]) -> Vec<f64> {
    let a = aggregate(&fixture().ds, view, agg, filters, None).unwrap();
    match a.grid.values {
        GridValues::Count(v) | GridValues::CatCount(v) => v.into_iter().map(|x| x as f64).collect(),
        GridValues::Any(v) => v.into_iter().map(|x| x as u8 as f64).collect(),
        GridValues::Float(v) | GridValues::CatFloat(v) => v,
    }
}

fn val_range(min: f64, max: f64) -> Filter {
    Filter::Range {
        column: "val".into(),
        min,
        max,
    }
}

fn radio_in(v: &[&str]) -> Filter {
    Filter::In {
        column: "radio".into(),
        values: v.iter().map(|s| s.to_string()).collect(),
    }
}

fn same(a: &[f64], b: &[f64]) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!("lengths {} vs {}", a.len(), b.len()));
    }
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let ok = (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-9 * x.abs().max(1.0);
        if !ok {
            return Err(format!("pixel {i}: engine {x} vs naive {y}"));
        }
    }
    Ok(())
}

fn aggs() -> impl Strategy<Value = Agg> {
    prop_oneof![
        Just(Agg::Count),
        Just(Agg::Any),
        Just(Agg::Sum("val".into())),
        Just(Agg::Mean("val".into())),
        Just(Agg::Min("val".into())),
        Just(Agg::Max("val".into())),
        Just(Agg::Std("val".into())),
        Just(Agg::Var("val".into())),
        Just(Agg::CountCat("radio".into())),
        Just(Agg::CatSum("radio".into(), "val".into())),
        Just(Agg::CatMean("radio".into(), "val".into())),
    ]
}

fn filters() -> impl Strategy<Value = Vec<Filter>> {
    let range = (0.0f64..100.0, 0.0f64..60.0).prop_map(|(lo, w)| Filter::Range {
        column: "val".into(),
        min: lo,
        max: lo + w,
    });
    let time = (0.0f64..1e14).prop_map(|lo| Filter::Range {
        column: "created".into(),
        min: 1.5e18 + lo,
        max: f64::INFINITY,
    });
    let set = proptest::sample::subsequence(CATS.to_vec(), 0..=3).prop_map(|v| Filter::In {
        column: "radio".into(),
        values: v.into_iter().map(String::from).collect(),
    });
    proptest::collection::vec(prop_oneof![range, time, set], 0..=2)
}

fn viewports() -> impl Strategy<Value = View> {
    let centers = prop_oneof![
        Just((-74.0, 40.7)),
        Just((2.35, 48.85)),
        Just((0.0, 0.0)),
        Just((30.0, 10.0))
    ];
    (centers, 0.05f64..60.0, 0.05f64..40.0, 1u32..64, 1u32..64).prop_map(|(c, dw, dh, w, h)| {
        let b = MercatorBox::from_lnglat(c.0 - dw, c.1 - dh, c.0 + dw * 0.7, c.1 + dh * 0.9);
        View::viewport(b, w, h).unwrap()
    })
}

fn tiles() -> impl Strategy<Value = View> {
    let centers = prop_oneof![Just((-74.0, 40.7)), Just((2.35, 48.85)), Just((0.0, 0.0))];
    // Margins (spread's) mostly 0, sometimes up to the largest radius.
    let margins = prop_oneof![3 => Just(0u32), 1 => 1u32..=16];
    (
        centers,
        0u32..=14,
        prop_oneof![Just(256u32), Just(512u32)],
        margins,
    )
        .prop_map(|(c, z, size, margin)| {
            let (mx, my) = geo::lnglat_to_meters(c.0 + 0.3, c.1 + 0.2);
            let (qx, qy) = geo::quantize(mx, my);
            let s = 32 - z;
            let t = TileId::new(z, (qx as u64) >> s, (qy as u64) >> s).unwrap();
            View::tile_with_margin(t, size, margin).unwrap()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn viewports_match_naive(view in viewports(), agg in aggs(), f in filters()) {
        same(&engine(&view, &agg, &f), &naive(&view, &agg, &f)).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn tiles_match_naive(view in tiles(), agg in aggs(), f in filters()) {
        same(&engine(&view, &agg, &f), &naive(&view, &agg, &f)).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn histograms_and_counts_match_naive(f in filters(), bins in 1usize..40) {
        let fx = fixture();
        let bbox = MercatorBox::from_lnglat(-80.0, 30.0, 10.0, 55.0);
        let (x0, x1, y0, y1) = bbox.qbounds().unwrap();
        let inside = |r: &Row| r.qx >= x0 && r.qx <= x1 && r.qy >= y0 && r.qy <= y1;
        let n = count(&fx.ds, Some(&bbox), &f, &[], None).unwrap();
        prop_assert_eq!(n, fx.rows.iter().filter(|r| inside(r) && passes(r, &f)).count() as u64);
        // The same filters as bitsets (all of them, or every other one) give
        // the same answers.
        let bits: Vec<Arc<FilterBits>> = f.iter().map(|x| Arc::new(FilterBits::compute(&fx.ds, x, None).unwrap())).collect();
        let odd: Vec<Filter> = f.iter().skip(1).step_by(2).cloned().collect();
        let even: Vec<Arc<FilterBits>> = bits.iter().step_by(2).cloned().collect();
        prop_assert_eq!(count(&fx.ds, Some(&bbox), &[], &bits, None).unwrap(), n);
        prop_assert_eq!(count(&fx.ds, Some(&bbox), &odd, &even, None).unwrap(), n);
        // The radio histogram ignores radio filters.
        let others: Vec<Filter> = f.iter().filter(|x| x.column() != "radio").cloned().collect();
        let h = histogram(&fx.ds, "radio", bins, Some(&bbox), &f, &[], None).unwrap();
        prop_assert_eq!(&histogram(&fx.ds, "radio", bins, Some(&bbox), &[], &bits, None).unwrap(), &h);
        prop_assert_eq!(&histogram(&fx.ds, "radio", bins, Some(&bbox), &odd, &even, None).unwrap(), &h);
        let Histogram::Categorical { categories, .. } = h else { panic!() };
        for (k, (_, c)) in categories.iter().enumerate() {
            prop_assert_eq!(*c, fx.rows.iter().filter(|r| inside(r) && r.cat == k && passes(r, &others)).count() as u64);
        }
        let others: Vec<Filter> = f.iter().filter(|x| x.column() != "val").cloned().collect();
        let h = histogram(&fx.ds, "val", bins, Some(&bbox), &f, &[], None).unwrap();
        prop_assert_eq!(&histogram(&fx.ds, "val", bins, Some(&bbox), &[], &bits, None).unwrap(), &h);
        prop_assert_eq!(&histogram(&fx.ds, "val", bins, None, &[], &bits, None).unwrap(), &histogram(&fx.ds, "val", bins, None, &f, &[], None).unwrap());
        let Histogram::Numeric { counts, min, max, .. } = h else { panic!() };
        // numpy's rule: edge i = min + i·width, the last edge is max; a value
        // lies in the last bin whose lower edge it reaches.
        let width = (max - min) / bins as f64;
        let edges: Vec<f64> = (0..bins).map(|i| min + i as f64 * width).collect();
        let mut expect = vec![0u64; bins];
        for r in fx.rows.iter().filter(|r| inside(r) && passes(r, &others) && r.val >= min && r.val <= max) {
            expect[edges.partition_point(|&e| e <= r.val) - 1] += 1;
        }
        prop_assert_eq!(counts, expect);
    }
}

/// A brushed bound on `step`'s grid: `k` steps, as a client rounds and
/// prints it (`None`: open).
fn grid_bound(k: Option<i64>, mant: i64, exp: i32, scale: f64) -> Option<f64> {
    k.map(|k| format!("{}e{exp}", k * mant).parse::<f64>().unwrap() * scale)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// A brush index answers every on-grid brush exactly as a scan with the
    /// brushed filter does: histograms of the other columns (categorical,
    /// numeric, temporal) and counts, under a bbox and other filters.
    #[test]
    fn brush_indexes_match_scans(
        others in filters(),
        on_time in any::<bool>(),
        step in prop_oneof![Just((1i64, -1i32)), Just((5, -1)), Just((1, 0)), Just((25, 0))],
        a in proptest::option::of(-5i64..1100),
        w in 0i64..600,
        hi_open in any::<bool>(),
        boxed in any::<bool>(),
        bins in 1usize..40,
    ) {
        let fx = fixture();
        let m = &fx.ds.manifest;
        // Brush `val` (0..100 in tenths, some NaN) on a decimal step, or
        // `created` on whole days (epoch ms, stored as µs).
        let (col, mant, exp, scale) = if on_time {
            ("created", 86_400_000i64, 0, 1000.0)
        } else {
            ("val", step.0, step.1, 1.0)
        };
        let step_text = format!("{mant}e{exp}");
        let grid = BrushGrid::new(m, col, &step_text).unwrap().expect("a fine enough grid");
        let k0 = if on_time { a.map(|k| 17_361 + k / 2) } else { a };
        let lo = grid_bound(k0, mant, exp, scale).unwrap_or(f64::NEG_INFINITY);
        let k1 = if hi_open { None } else { Some(k0.unwrap_or(0) + w) };
        let hi = grid_bound(k1, mant, exp, scale).unwrap_or(f64::INFINITY);
        prop_assume!(lo <= hi);
        let brushed = Filter::Range { column: col.into(), min: lo, max: hi };
        let mut all: Vec<Filter> = others.iter().filter(|f| f.column() != col).cloned().collect();
        all.push(brushed);
        prop_assert_eq!(brushed_bounds(&grid, &all), Some((lo, hi)));
        let bbox = boxed.then(|| MercatorBox::from_lnglat(-80.0, 30.0, 10.0, 55.0));
        let bbox = bbox.as_ref();
        let idx = BrushIndex::build(&fx.ds, grid.clone(), BrushTarget::Count, bbox, &all, &[], None)
            .unwrap()
            .unwrap();
        prop_assert_eq!(idx.count(lo, hi), Some(count(&fx.ds, bbox, &all, &[], None).unwrap()));
        prop_assert!(idx.histogram(lo, hi).is_none(), "a count index holds no histogram");
        for target in ["radio", "val", "created"].into_iter().filter(|&c| c != col) {
            let t = BrushTarget::Histogram { column: target, bins };
            // The other filters as bitsets, as the server passes them.
            let bits: Vec<Arc<FilterBits>> = all.iter().map(|x| Arc::new(FilterBits::compute(&fx.ds, x, None).unwrap())).collect();
            let idx = BrushIndex::build(&fx.ds, grid.clone(), t, bbox, &[], &bits, None).unwrap().unwrap();
            let scan = histogram(&fx.ds, target, bins, bbox, &all, &[], None).unwrap();
            prop_assert_eq!(idx.histogram(lo, hi), Some(scan), "{}", target);
        }
        // Off the grid, an index answers only where that is still exact.
        let off = if lo.is_finite() { lo + if on_time { 1000.0 } else { 0.01 } } else { lo };
        let hi = hi.max(off);
        if let Some(n) = idx.count(off, hi) {
            let f = vec![Filter::Range { column: col.into(), min: off, max: hi }];
            prop_assert_eq!(n, count(&fx.ds, bbox, &[f, all[..all.len() - 1].to_vec()].concat(), &[], None).unwrap());
        }
    }
}

/// An integer brushed column takes its slots from a table: the same
/// answers as a scan, at every step and bound.
#[test]
fn brush_indexes_of_integer_columns_match_scans() {
    use arrow_array::Int32Array;
    let n = 20_000usize;
    let lon: Vec<f64> = (0..n).map(|i| (i % 360) as f64 - 179.5).collect();
    let lat: Vec<f64> = (0..n).map(|i| (i % 170) as f64 - 84.5).collect();
    // -40..=4960 with a null every 13th row.
    let range: Vec<Option<i32>> = (0..n)
        .map(|i| (i % 13 != 0).then_some(((i * 7919) % 5001) as i32 - 40))
        .collect();
    let radio: Vec<&str> = (0..n).map(|i| CATS[(i * 31) % 4]).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("lon", DataType::Float64, false),
        Field::new("lat", DataType::Float64, false),
        Field::new("range", DataType::Int32, true),
        Field::new("radio", DataType::Utf8, false),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Float64Array::from(lon)),
        Arc::new(Float64Array::from(lat)),
        Arc::new(Int32Array::from(range)),
        Arc::new(StringArray::from(radio)),
    ];
    let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.parquet");
    let mut w =
        parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&input).unwrap(), schema, None)
            .unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let out = dir.path().join("ds");
    let mut o = PackOptions::new(vec![input.display().to_string()], &out);
    o.partition_rows = 3_000;
    pack(&o).unwrap();
    let ds = Dataset::open(&out).unwrap();
    let radio_in = Filter::In {
        column: "radio".into(),
        values: vec!["LTE".into(), "NR".into()],
    };
    for step in ["1", "1e1", "25"] {
        let grid = BrushGrid::new(&ds.manifest, "range", step)
            .unwrap()
            .unwrap();
        let count_idx = BrushIndex::build(
            &ds,
            grid.clone(),
            BrushTarget::Count,
            None,
            std::slice::from_ref(&radio_in),
            &[],
            None,
        )
        .unwrap()
        .unwrap();
        let t = BrushTarget::Histogram {
            column: "radio",
            bins: 10,
        };
        let hist_idx = BrushIndex::build(&ds, grid, t, None, &[], &[], None)
            .unwrap()
            .unwrap();
        let m: f64 = step.parse().unwrap();
        for (lo, hi) in [
            (-2.0, 3.0),
            (0.0, 0.0),
            (-100.0, 48.0),
            (7.0, 4960.0),
            (5000.0, 6000.0),
        ] {
            let (lo, hi) = ((lo * m).max(-50.0), hi * m);
            let f = Filter::Range {
                column: "range".into(),
                min: lo,
                max: hi,
            };
            let all = [f.clone(), radio_in.clone()];
            assert_eq!(
                count_idx.count(lo, hi),
                Some(count(&ds, None, &all, &[], None).unwrap()),
                "{step} {lo}..{hi}"
            );
            let scan = histogram(&ds, "radio", 10, None, &[f], &[], None).unwrap();
            assert_eq!(hist_idx.histogram(lo, hi), Some(scan), "{step} {lo}..{hi}");
        }
    }
}

#[test]
fn brush_grids_refuse_bad_steps_and_skip_fine_ones() {
    let m = &fixture().ds.manifest;
    for bad in ["0", "-1", "x", "1e", ""] {
        assert!(BrushGrid::new(m, "val", bad).is_err(), "{bad}");
    }
    assert!(
        BrushGrid::new(m, "radio", "1").is_err(),
        "categorical columns are not brushed"
    );
    assert!(BrushGrid::new(m, "nope", "1").is_err());
    // 0..100 in steps of 1e-4 is a million steps: not indexed, no error.
    assert!(BrushGrid::new(m, "val", "1e-4").unwrap().is_none());
    let grid = BrushGrid::new(m, "val", "1e-1").unwrap().unwrap();
    let idx = BrushIndex::build(
        &fixture().ds,
        grid,
        BrushTarget::Count,
        None,
        &[],
        &[],
        None,
    )
    .unwrap()
    .unwrap();
    let n = |lo: f64, hi: f64| {
        let f = [Filter::Range {
            column: "val".into(),
            min: lo,
            max: hi,
        }];
        count(&fixture().ds, None, &f, &[], None).unwrap()
    };
    assert_eq!(idx.count(20.0, 50.5), Some(n(20.0, 50.5)));
    // 50.55 is off the grid, inside the data: scanned, not answered here.
    assert_eq!(idx.count(20.0, 50.55), None);
    assert_eq!(
        idx.count(f64::NEG_INFINITY, f64::INFINITY),
        Some(n(f64::NEG_INFINITY, f64::INFINITY))
    );
    assert_eq!(
        idx.count(-3.33, 50.5),
        Some(n(-3.33, 50.5)),
        "below every value: exact"
    );
}

#[test]
fn world_tile_counts_every_row_once() {
    let fx = fixture();
    let v = View::tile(TileId::new(0, 0, 0).unwrap(), 256).unwrap();
    let total: f64 = engine(&v, &Agg::Count, &[]).iter().sum();
    assert_eq!(total as usize, fx.rows.len());
    // The four z1 tiles partition the world: no point counted twice.
    let mut sum = 0.0;
    for (x, y) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        let v = View::tile(TileId::new(1, x, y).unwrap(), 256).unwrap();
        sum += engine(&v, &Agg::Count, &[]).iter().sum::<f64>();
    }
    assert_eq!(sum as usize, fx.rows.len());
}

#[test]
fn filters_skip_partitions_by_zone_maps() {
    let fx = fixture();
    let v = View::tile(TileId::new(0, 0, 0).unwrap(), 256).unwrap();
    let f = vec![Filter::Range {
        column: "val".into(),
        min: 1e9,
        max: 2e9,
    }];
    let a = aggregate(&fx.ds, &v, &Agg::Count, &f, None).unwrap();
    assert_eq!(a.partitions_skipped, fx.ds.partitions.len());
    assert_eq!(a.rows_scanned, 0);
}

#[test]
fn cancelled_aggregation_stops() {
    let fx = fixture();
    let v = View::tile(TileId::new(0, 0, 0).unwrap(), 256).unwrap();
    let flag = std::sync::atomic::AtomicBool::new(true);
    let r = aggregate(&fx.ds, &v, &Agg::Count, &[], Some(&flag));
    assert!(matches!(r, Err(pointillist::query::QueryError::Cancelled)));
}

#[test]
fn zoom_stats_match_tiles() {
    // The per-zoom distribution equals the union of all tiles' pixel values.
    let fx = fixture();
    for z in [0u8, 1, 3] {
        let stats =
            pointillist::raster::zoom::zoom_stats(&fx.ds, z, 256, &Agg::Count, &[], None).unwrap();
        let mut expect: std::collections::BTreeMap<u64, u64> = Default::default();
        let n = 1u32 << z;
        for x in 0..n {
            for y in 0..n {
                let v =
                    View::tile(TileId::new(z as u32, x as u64, y as u64).unwrap(), 256).unwrap();
                for c in engine(&v, &Agg::Count, &[]) {
                    if c > 0.0 {
                        *expect.entry(c as u64).or_default() += 1;
                    }
                }
            }
        }
        let got: std::collections::BTreeMap<u64, u64> = stats
            .histogram
            .iter()
            .map(|&(v, n)| (v as u64, n))
            .collect();
        assert_eq!(got, expect, "zoom {z}");
    }
}

#[test]
fn row_scan_zoom_stats_match_tiles() {
    // Without an overview every zoom's distribution comes from the row scan:
    // it must hold exactly the non-empty pixel values of all the zoom's tiles.
    let fx = fixture();
    let (range, radio) = (val_range(20.0, 70.0), radio_in(&["LTE"]));
    for z in [0u8, 2, 3] {
        for (agg, f) in [
            (Agg::Count, vec![]),
            (Agg::Count, vec![range.clone()]),
            (Agg::Any, vec![radio.clone()]),
            (Agg::CountCat("radio".into()), vec![range.clone()]),
            (Agg::Sum("val".into()), vec![]),
            (Agg::Mean("val".into()), vec![radio.clone()]),
            (Agg::Min("val".into()), vec![range.clone()]),
            (Agg::Max("val".into()), vec![]),
            (Agg::Std("val".into()), vec![range.clone(), radio.clone()]),
            (Agg::Var("val".into()), vec![]),
        ] {
            let stats =
                pointillist::raster::zoom::zoom_stats(&fx.plain, z, 256, &agg, &f, None).unwrap();
            let mut got: Vec<f64> = stats
                .histogram
                .iter()
                .flat_map(|&(v, n)| std::iter::repeat_n(v, n as usize))
                .collect();
            let mut expect = Vec::new();
            let n = 1u64 << z;
            for x in 0..n {
                for y in 0..n {
                    let v = View::tile(TileId::new(z as u32, x, y).unwrap(), 256).unwrap();
                    let a = aggregate(&fx.plain, &v, &agg, &f, None).unwrap();
                    let vals = a.grid.scalar_f64();
                    let integer = matches!(agg, Agg::Count | Agg::Any | Agg::CountCat(_));
                    expect.extend(
                        vals.into_iter()
                            .filter(|v| if integer { *v > 0.0 } else { !v.is_nan() }),
                    );
                }
            }
            got.sort_by(f64::total_cmp);
            expect.sort_by(f64::total_cmp);
            same(&got, &expect).unwrap_or_else(|e| panic!("z{z} {agg:?} {f:?}: {e}"));
            assert_eq!(stats.pixels as usize, expect.len());
        }
    }
}

/// A grid's values as bits (NaN equal to NaN).
fn bits(v: &GridValues) -> Vec<u64> {
    match v {
        GridValues::Float(f) | GridValues::CatFloat(f) => f.iter().map(|x| x.to_bits()).collect(),
        GridValues::Count(c) | GridValues::CatCount(c) => c.iter().map(|&n| n as u64).collect(),
        GridValues::Any(a) => a.iter().map(|&b| b as u64).collect(),
    }
}

#[test]
fn query_cells_equal_row_aggregation() {
    // Cells of a query answer every tile and zoom scale of pixel level
    // 8..=12: each must equal aggregating the rows (floats up to summation
    // order), for reductions and filters the overview does not cover.
    use pointillist::raster::cells::{CELL_LEVEL, QueryCells};
    let fx = fixture();
    let (range, radio) = (val_range(20.0, 70.0), radio_in(&["LTE", "NR"]));
    let cases: Vec<(Agg, Vec<Filter>)> = vec![
        (Agg::Count, vec![range.clone()]),
        (Agg::Any, vec![range.clone(), radio.clone()]),
        (Agg::CountCat("radio".into()), vec![range.clone()]),
        (Agg::Sum("val".into()), vec![]),
        (Agg::Mean("val".into()), vec![radio.clone()]),
        (Agg::Min("val".into()), vec![range.clone()]),
        (Agg::Max("val".into()), vec![]),
        (Agg::Std("val".into()), vec![range.clone(), radio.clone()]),
        (Agg::Var("val".into()), vec![]),
    ];
    for (agg, f) in &cases {
        assert!(QueryCells::wanted_for_tile(&fx.ds, CELL_LEVEL, agg, f));
        assert!(!QueryCells::wanted_for_tile(&fx.ds, CELL_LEVEL + 1, agg, f));
        let cells = QueryCells::compute(&fx.ds, agg, f, None).unwrap();
        assert!(!cells.is_empty(), "{agg:?} {f:?}");
        // With an overview the pass takes cell boundaries from it; without
        // one, from the coordinates: the same cells to the bit.
        let from_coordinates = QueryCells::compute(&fx.plain, agg, f, None).unwrap();
        assert_eq!(cells.rows(), from_coordinates.rows());
        // An unfiltered value reduction's cells come from the pack-time
        // statistics, the same to the bit; anything else is computed.
        let stored = QueryCells::from_stats(&fx.ds, agg, f);
        let value = !matches!(agg, Agg::Count | Agg::Any | Agg::CountCat(_));
        assert_eq!(stored.is_some(), value && f.is_empty(), "{agg:?} {f:?}");
        assert!(QueryCells::from_stats(&fx.plain, agg, f).is_none());
        if let Some(stored) = &stored {
            assert_eq!(stored.rows(), cells.rows());
            assert_eq!(stored.len(), cells.len());
        }
        // Sum and mean keep a count and a sum per cell: 24 bytes of values
        // where the other reductions keep 48.
        if matches!(agg, Agg::Sum(_) | Agg::Mean(_)) {
            assert_eq!(cells.bytes(), cells.len() * (12 + 24) + 128, "{agg:?}");
        }
        let estimate = QueryCells::estimate_bytes(&fx.ds, agg);
        assert!(
            cells.bytes() as u64 <= estimate,
            "{agg:?}: {} > {estimate}",
            cells.bytes()
        );
        for (size, zmax) in [(256u32, 4u32), (512, 3)] {
            for z in 0..=zmax {
                let level = z + size.trailing_zeros();
                let n = 1u64 << z;
                for x in 0..n {
                    for y in 0..n {
                        let tile = TileId::new(z, x, y).unwrap();
                        let (grid, _) = cells.tile(tile, size).expect("level within cells");
                        let (other, _) = from_coordinates.tile(tile, size).unwrap();
                        assert_eq!(bits(&grid.values), bits(&other.values), "{agg:?} {f:?}");
                        if let Some(stored) = &stored {
                            let (other, _) = stored.tile(tile, size).unwrap();
                            assert_eq!(bits(&grid.values), bits(&other.values), "{agg:?}");
                        }
                        let rows =
                            aggregate(&fx.plain, &View::tile(tile, size).unwrap(), agg, f, None)
                                .unwrap()
                                .grid;
                        assert_eq!(grid.categories, rows.categories);
                        match (&grid.values, &rows.values) {
                            (GridValues::Float(a), GridValues::Float(b)) => same(a, b),
                            (a, b) if a == b => Ok(()),
                            _ => Err("grids differ".to_string()),
                        }
                        .unwrap_or_else(|e| panic!("{agg:?} {f:?} {z}/{x}/{y}@{size}: {e}"));
                    }
                }
                let from_cells = cells.zoom_stats(&fx.plain, level).unwrap();
                let from_rows =
                    pointillist::raster::zoom::zoom_stats(&fx.plain, z as u8, size, agg, f, None)
                        .unwrap();
                assert_eq!(from_cells.pixels, from_rows.pixels, "{agg:?} {f:?} z{z}");
                assert_eq!(from_cells.integer, from_rows.integer);
                let flat = |s: &pointillist::raster::zoom::ZoomStats| -> Vec<f64> {
                    s.histogram
                        .iter()
                        .flat_map(|&(v, n)| std::iter::repeat_n(v, n as usize))
                        .collect()
                };
                same(&flat(&from_cells), &flat(&from_rows))
                    .unwrap_or_else(|e| panic!("zoom stats {agg:?} {f:?} z{z}@{size}: {e}"));
            }
        }
        // Finer than the cells: the rows answer.
        assert!(cells.tile(TileId::new(5, 0, 0).unwrap(), 256).is_none());
        assert!(cells.zoom_stats(&fx.plain, CELL_LEVEL + 1).is_none());
    }
    // What the overview answers is left to it.
    assert!(!QueryCells::wanted_for_tile(&fx.ds, 10, &Agg::Count, &[]));
    assert!(!QueryCells::wanted_for_zoom(
        &fx.ds,
        10,
        &Agg::Count,
        std::slice::from_ref(&radio)
    ));
    assert!(QueryCells::wanted_for_zoom(&fx.plain, 10, &Agg::Count, &[]));
    assert!(!QueryCells::supports(
        &fx.ds,
        &Agg::CatMean("radio".into(), "val".into())
    ));
}

#[test]
fn overview_tiles_equal_row_aggregation() {
    // Every tile the overview answers (z0..=4 at 256 px, z0..=3 at 512 px)
    // must equal aggregating the rows, for each reduction and category
    // filter it covers; and it must actually answer them (cells, not rows).
    let fx = fixture();
    let cases: Vec<(Agg, Vec<Filter>)> = vec![
        (Agg::Count, vec![]),
        (Agg::Any, vec![]),
        (Agg::CountCat("radio".into()), vec![]),
        (Agg::Count, vec![radio_in(&["LTE", "NR"])]),
        (Agg::Any, vec![radio_in(&["GSM"])]),
        (
            Agg::CountCat("radio".into()),
            vec![radio_in(&["UMTS", "LTE"])],
        ),
        (
            Agg::Count,
            vec![radio_in(&["UMTS", "LTE"]), radio_in(&["LTE", "GSM"])],
        ),
        (Agg::CountCat("radio".into()), vec![radio_in(&["nope"])]),
    ];
    let mut answered = 0;
    for size in [256u32, 512] {
        for z in 0..=(12 - size.trailing_zeros()) {
            let n = 1u64 << z;
            let tiles: Vec<(u64, u64)> = if z <= 2 {
                (0..n).flat_map(|x| (0..n).map(move |y| (x, y))).collect()
            } else {
                // The tiles around the clusters (and an empty one).
                [(-74.0, 40.7), (2.35, 48.85), (0.0, 0.0), (-150.0, -60.0)]
                    .iter()
                    .map(|&(lon, lat)| {
                        let (mx, my) = geo::lnglat_to_meters(lon, lat);
                        let (qx, qy) = geo::quantize(mx, my);
                        ((qx as u64) >> (32 - z), (qy as u64) >> (32 - z))
                    })
                    .collect()
            };
            for (x, y) in tiles {
                let v = View::tile(TileId::new(z, x, y).unwrap(), size).unwrap();
                for (agg, f) in &cases {
                    let a = aggregate(&fx.ds, &v, agg, f, None).unwrap();
                    let b = aggregate(&fx.plain, &v, agg, f, None).unwrap();
                    assert_eq!(a.grid, b.grid, "z{z}/{x}/{y}@{size} {agg:?} {f:?}");
                    if a.rows_scanned < b.rows_scanned {
                        answered += 1;
                    }
                }
            }
        }
    }
    assert!(answered > 50, "the overview answered only {answered} tiles");
    // Range filters and value reductions still read the rows.
    let v = View::tile(TileId::new(0, 0, 0).unwrap(), 256).unwrap();
    let f = vec![Filter::Range {
        column: "val".into(),
        min: 10.0,
        max: 50.0,
    }];
    let a = aggregate(&fx.ds, &v, &Agg::Count, &f, None).unwrap();
    assert_eq!(a.rows_scanned, fx.rows.len() as u64);
}

#[test]
fn overview_zoom_stats_equal_row_scans() {
    let fx = fixture();
    let radio = Filter::In {
        column: "radio".into(),
        values: vec!["LTE".into(), "GSM".into()],
    };
    for z in 0u8..=16 {
        for size in [256u32, 512] {
            for (agg, f) in [
                (Agg::Count, vec![]),
                (Agg::Any, vec![]),
                (Agg::CountCat("radio".into()), vec![]),
                (Agg::Count, vec![radio.clone()]),
                (Agg::CountCat("radio".into()), vec![radio.clone()]),
            ] {
                let zs = |ds| pointillist::raster::zoom::zoom_stats(ds, z, size, &agg, &f, None);
                assert_eq!(
                    zs(&fx.ds).unwrap(),
                    zs(&fx.plain).unwrap(),
                    "z{z}@{size} {agg:?} {f:?}"
                );
            }
        }
    }
}

/// Tiles `(z, x, y)` and `(z, x + 1, y)` rendered with `style`, against
/// one viewport over both (with the same margin, spread, then cropped):
/// the two tiles must be its left and right halves, pixel for pixel.
fn assert_seamless(ds: &Dataset, z: u32, x: u64, y: u64, style: &Style, radius: u32) {
    use pointillist::render::{render, render_tile};
    let budget = pointillist::query::Budget::default();
    let a = TileId::new(z, x, y).unwrap();
    let b = TileId::new(z, x + 1, y).unwrap();
    let left = render_tile(ds, a, 256, &Agg::Count, &[], style, None, budget).unwrap();
    let right = render_tile(ds, b, 256, &Agg::Count, &[], style, None, budget).unwrap();
    let (xmin, ymin, _, ymax) = a.bounds_meters();
    let (_, _, xmax, _) = b.bounds_meters();
    let px = (ymax - ymin) / 256.0;
    let r = radius as f64 * px;
    let bbox = MercatorBox {
        xmin: xmin - r,
        ymin: ymin - r,
        xmax: xmax + r,
        ymax: ymax + r,
    };
    let mut fixed = style.clone();
    fixed.dynspread = None;
    fixed.spread = radius;
    let wide = View::viewport(bbox, 512 + 2 * radius, 256 + 2 * radius).unwrap();
    let whole = render(ds, &wide, &Agg::Count, &[], &fixed, None, budget).unwrap();
    let m = radius as usize;
    let both = pointillist::shade::crop(&whole.image, m, m, 512, 256);
    assert_eq!(pointillist::shade::crop(&both, 0, 0, 256, 256), left.image);
    assert_eq!(
        pointillist::shade::crop(&both, 256, 0, 256, 256),
        right.image
    );
    // Dots near the seam are painted on both sides of it.
    let alpha_at = |img: &pointillist::shade::Rgba, col: usize| {
        (0..256)
            .filter(|&row| img.data[(row * 256 + col) * 4 + 3] != 0)
            .count()
    };
    assert!(alpha_at(&left.image, 255) > 0 && alpha_at(&right.image, 0) > 0);
}

fn seam_style() -> Style {
    let mut style = Style::default();
    style.shade.how = pointillist::shade::How::Linear;
    style.shade.span = Some((0.0, 5.0));
    style.scale = pointillist::render::Scale::Tile;
    style
}

#[test]
fn spread_tiles_join_across_their_edge() {
    let fx = fixture();
    let mut style = seam_style();
    style.spread = 3;
    // z6 tiles either side of lon 0, through the cluster at (0, 0).
    let (mx, my) = geo::lnglat_to_meters(0.2, 0.3);
    let (_, qy) = geo::quantize(mx, my);
    let y = (qy as u64) >> (32 - 6);
    assert_seamless(&fx.plain, 6, 31, y, &style, 3);
    assert_seamless(&fx.ds, 6, 31, y, &style, 3);
    // Without the margin (a plain tile, spread inside it), the seam column
    // loses the halves of the neighbour's dots: the check above can fail.
    let plain = pointillist::render::render(
        &fx.plain,
        &View::tile(TileId::new(6, 31, y).unwrap(), 256).unwrap(),
        &Agg::Count,
        &[],
        &style,
        None,
        Default::default(),
    )
    .unwrap();
    let seamless = pointillist::render::render_tile(
        &fx.plain,
        TileId::new(6, 31, y).unwrap(),
        256,
        &Agg::Count,
        &[],
        &style,
        None,
        Default::default(),
    )
    .unwrap();
    assert_ne!(plain.image, seamless.image);
}

#[test]
fn dynspread_uses_one_radius_per_zoom() {
    let fx = fixture();
    let mut style = seam_style();
    style.dynspread = Some((0.9, 4));
    let (mx, my) = geo::lnglat_to_meters(0.2, 0.3);
    let (_, qy) = geo::quantize(mx, my);
    let y = (qy as u64) >> (32 - 6);
    let radius_of = |x: u64| {
        pointillist::render::zoom_dynspread_radius(
            &fx.plain,
            TileId::new(6, x, y).unwrap(),
            256,
            &Agg::Count,
            &[],
            &style,
            None,
            0.9,
            4,
            Default::default(),
        )
        .unwrap()
    };
    let radius = radius_of(31);
    assert_eq!(radius, radius_of(32));
    assert_eq!(radius, radius_of(5), "an empty tile gets the zoom's radius");
    assert!(radius >= 1, "the sparse fixture spreads");
    assert_seamless(&fx.plain, 6, 31, y, &style, radius);
}

/// The planner builds a query's cells where one pass pays: for world-view
/// tiles (256-px z0–z2) whatever they hold, for tiles holding a quarter of
/// the rows, or once they are cached; a smaller z3–z4 tile of a new query
/// reads its own rows, and its zoom's scale is sampled unless exact.
#[test]
fn the_planner_builds_cells_for_world_views_large_tiles_and_cached_queries() {
    use pointillist::raster::plan::{Planner, Source};
    let ds = &fixture().ds;
    let planner = Planner::new(256 << 20, 1000);
    let (agg, filters) = (Agg::Count, [val_range(10.0, 50.0)]);
    let share = |t: TileId| {
        pointillist::query::rows_in(ds, &View::tile(t, 256).unwrap().key_ranges()) as f64
            / ds.rows() as f64
    };
    let tile_of = |lon: f64, lat: f64, z: u32| {
        let (qx, qy) = geo::quantize(
            geo::lnglat_to_meters(lon, lat).0,
            geo::lnglat_to_meters(lon, lat).1,
        );
        TileId::new(z, (qx as u64) >> (32 - z), (qy as u64) >> (32 - z)).unwrap()
    };
    // A z2 tile with a sliver of the rows: a world view, so cells.
    let sparse = TileId::new(2, 0, 3).unwrap();
    assert!(
        share(sparse) > 0.0 && share(sparse) < 0.25,
        "{}",
        share(sparse)
    );
    assert_eq!(
        planner.tile(ds, sparse, 256, &agg, &filters, false),
        Source::Cells
    );
    // New York at z4 holds a fifth: its rows, unless the cells exist.
    let ny = tile_of(-74.0, 40.7, 4);
    assert!(share(ny) < 0.25, "{}", share(ny));
    assert_eq!(
        planner.tile(ds, ny, 256, &agg, &filters, false),
        Source::Rows
    );
    assert_eq!(
        planner.tile(ds, ny, 256, &agg, &filters, true),
        Source::Cells
    );
    // A 512-px z2 tile is pixel level 11: not a world view.
    let tokyo = tile_of(139.7, 35.7, 2);
    assert!(share(tokyo) < 0.25, "{}", share(tokyo));
    assert_eq!(
        planner.tile(ds, tokyo, 512, &agg, &filters, false),
        Source::Rows
    );
    assert_eq!(
        planner.tile(ds, tokyo, 256, &agg, &filters, false),
        Source::Cells
    );
    // Deeper than the cells' level: rows whatever is cached.
    assert_eq!(
        planner.tile(ds, tile_of(-74.0, 40.7, 5), 256, &agg, &filters, true),
        Source::Rows
    );
    // The zoom scale: cells when cached or exact, else a sample.
    assert_eq!(
        planner.scale(ds, 4, 256, &agg, &filters, false, false),
        Source::Sample
    );
    assert_eq!(
        planner.scale(ds, 4, 256, &agg, &filters, true, false),
        Source::Cells
    );
    assert_eq!(
        planner.scale(ds, 4, 256, &agg, &filters, false, true),
        Source::Cells
    );
    // No cells at all (cells_mb = 0): rows, or the sample.
    let none = Planner::new(0, 1000);
    assert_eq!(
        none.tile(ds, sparse, 256, &agg, &filters, true),
        Source::Rows
    );
    assert_eq!(
        none.scale(ds, 4, 256, &agg, &filters, false, true),
        Source::Sample
    );
}
