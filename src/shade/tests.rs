//! Module-level tests: Datashader reference outputs, hand-derived values,
//! and properties.

use super::*;

/// Cases produced by running Datashader 0.19.1 itself
/// (`testdata/gen_reference.py`): scalar and categorical shading over all
/// `how`s, colormap kinds, spans, alpha settings and rescaling, plus
/// spread, dynspread and set_background on random images.
mod reference {
    use super::*;
    use serde_json::Value;

    fn f64s(v: &Value) -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap_or(f64::NAN))
            .collect()
    }

    fn bytes(v: &Value) -> Vec<u8> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u8)
            .collect()
    }

    fn usize_of(c: &Value, k: &str) -> usize {
        c[k].as_u64().unwrap() as usize
    }

    fn options(c: &Value) -> ShadeOptions {
        let cmap = match c["cmap"].as_str() {
            None | Some("default") => Colormap::default(),
            Some("three") => Colormap::from_hex_list("#ff0000,#00ff00,#0000ff").unwrap(),
            Some("one") => Colormap::from_hex_list("#336699").unwrap(),
            Some(other) => other.parse().unwrap(),
        };
        ShadeOptions {
            how: c["how"].as_str().unwrap().parse().unwrap(),
            cmap,
            alpha: c["alpha"].as_u64().unwrap() as u8,
            min_alpha: c["min_alpha"].as_u64().unwrap() as u8,
            span: c["span"]
                .as_array()
                .map(|s| (s[0].as_f64().unwrap(), s[1].as_f64().unwrap())),
            rescale_discrete_levels: c["rescale"].as_bool().unwrap(),
            color_baseline: c.get("color_baseline").and_then(Value::as_f64),
        }
    }

    fn image(c: &Value) -> Rgba {
        Rgba::from_data(
            usize_of(c, "width"),
            usize_of(c, "height"),
            bytes(&c["image"]),
        )
        .unwrap()
    }

    fn shape(c: &Value) -> Shape {
        c["shape"].as_str().unwrap().parse().unwrap()
    }

    fn run(c: &Value) -> Rgba {
        let (w, h) = (usize_of(c, "width"), usize_of(c, "height"));
        match c["kind"].as_str().unwrap() {
            "scalar" => {
                let values = f64s(&c["values"]);
                let grid = ScalarGrid {
                    width: w,
                    height: h,
                    values: &values,
                    integer: c["integer"].as_bool().unwrap(),
                };
                let opts = options(c);
                let img = shade(&grid, &opts, None).unwrap();
                // Seamless path: the same image from an explicit
                // normalisation of the grid's own values.
                if let Some(n) = Normalization::from_values(&values, grid.integer, &opts).unwrap() {
                    assert_eq!(shade(&grid, &opts, Some(&n)).unwrap(), img);
                }
                img
            }
            "categorical" => {
                let counts = f64s(&c["counts"]);
                let grid = CategoricalGrid {
                    width: w,
                    height: h,
                    ncat: usize_of(c, "ncat"),
                    counts: &counts,
                    integer: c["integer"].as_bool().unwrap(),
                };
                let opts = options(c);
                let key = default_color_key(grid.ncat);
                let img = shade_categorical(&grid, &key, &opts, None).unwrap();
                let n = Normalization::from_categorical_grid(&grid, &opts).unwrap();
                assert_eq!(
                    shade_categorical(&grid, &key, &opts, n.as_ref()).unwrap(),
                    img
                );
                // Integer grids: the u32 fast path gives the same bytes.
                if grid.integer && counts.iter().all(|&v| v >= 0.0 && v.fract() == 0.0) {
                    let u: Vec<u32> = counts.iter().map(|&v| v as u32).collect();
                    for nm in [None, n.as_ref()] {
                        let fast =
                            shade_categorical_counts(w, h, grid.ncat, &u, &key, &opts, nm).unwrap();
                        assert_eq!(fast, img, "u32 path, norm given: {}", nm.is_some());
                    }
                }
                img
            }
            "spread" => spread(&image(c), c["px"].as_u64().unwrap() as u32, shape(c)),
            "dynspread" => dynspread(
                &image(c),
                c["threshold"].as_f64().unwrap(),
                c["max_px"].as_u64().unwrap() as u32,
                shape(c),
            )
            .unwrap(),
            "background" => {
                let mut img = image(c);
                set_background(&mut img, parse_color(c["color"].as_str().unwrap()).unwrap());
                img
            }
            k => panic!("unknown case kind {k}"),
        }
    }

    fn check(json: &str) -> usize {
        let doc: Value = serde_json::from_str(json).unwrap();
        let cases = doc["cases"].as_array().unwrap();
        let mut failures = Vec::new();
        for (i, c) in cases.iter().enumerate() {
            let got = run(c);
            let want = bytes(&c["expected"]);
            if got.data != want {
                let px = got
                    .data
                    .chunks(4)
                    .zip(want.chunks(4))
                    .position(|(a, b)| a != b)
                    .unwrap();
                failures.push(format!(
                    "case {i} ({} how={} cmap={}): pixel {px} got {:?} want {:?}",
                    c["kind"],
                    c["how"],
                    c["cmap"],
                    &got.data[px * 4..px * 4 + 4],
                    &want[px * 4..px * 4 + 4]
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} cases differ:\n{}",
            failures.len(),
            cases.len(),
            failures.join("\n")
        );
        cases.len()
    }

    #[test]
    fn matches_datashader_0_19() {
        assert!(check(include_str!("testdata/reference.json")) > 300);
    }

    /// A larger generated file (see `testdata/gen_reference.py`).
    #[test]
    #[ignore = "needs SHADE_REFERENCE_JSON pointing at a generated file"]
    fn matches_external_reference() {
        let path = std::env::var("SHADE_REFERENCE_JSON").expect("SHADE_REFERENCE_JSON");
        let n = check(&std::fs::read_to_string(path).unwrap());
        println!("{n} cases match");
    }
}

/// Small cases derived by hand from Datashader's source (each also checked
/// against Datashader 0.19.1).
mod hand {
    use super::*;

    /// The 3×2 count grid (top row first)
    /// ```text
    /// 0 1 2
    /// 4 0 8
    /// ```
    /// Zeros are masked; offset = min(1, 2, 4, 8) = 1, so d = 0, 1, 3, 7.
    const GRID: [f64; 6] = [0.0, 1.0, 2.0, 4.0, 0.0, 8.0];
    const EMPTY: [u8; 4] = [0, 0, 0, 0];
    const LIGHTBLUE: [u8; 4] = [173, 216, 230, 255];
    const DARKBLUE: [u8; 4] = [0, 0, 139, 255];

    fn counts() -> ScalarGrid<'static> {
        ScalarGrid {
            width: 3,
            height: 2,
            values: &GRID,
            integer: true,
        }
    }

    fn opts(how: How) -> ShadeOptions {
        ShadeOptions {
            how,
            ..ShadeOptions::default()
        }
    }

    pub(super) fn pixels(img: &Rgba) -> Vec<[u8; 4]> {
        img.data
            .chunks(4)
            .map(|p| [p[0], p[1], p[2], p[3]])
            .collect()
    }

    fn shade_counts(o: &ShadeOptions) -> Vec<[u8; 4]> {
        pixels(&shade(&counts(), o, None).unwrap())
    }

    #[test]
    fn linear() {
        // span = (0, 7); xp = linspace(0, 7, 2) = [0, 7]; channels go from
        // lightblue (173,216,230) to darkblue (0,0,139), truncated:
        // d=1: r = -173/7 + 173 = 148.29, g = -216/7 + 216 = 185.14,
        //      b = -91/7 + 230 = 217;  d=3: 98.86, 123.43, 191.
        // Masked pixels: interp(NaN) = NaN -> 0, alpha 0.
        assert_eq!(
            shade_counts(&opts(How::Linear)),
            vec![
                EMPTY,
                LIGHTBLUE,
                [148, 185, 217, 255],
                [98, 123, 191, 255],
                EMPTY,
                DARKBLUE
            ]
        );
    }

    #[test]
    fn log() {
        // t = log1p(d) = 0, ln 2, ln 4, ln 8: positions 0, 1/3, 2/3, 1 of the
        // span (0, ln 8). d=1: r = 173 - 173/3 = 115.3, g = 216 - 72 = 144,
        // b = 230 - 91/3 = 199.7; d=3: 57.7, 72, 169.3.
        assert_eq!(
            shade_counts(&opts(How::Log)),
            vec![
                EMPTY,
                LIGHTBLUE,
                [115, 144, 199, 255],
                [57, 72, 169, 255],
                EMPTY,
                DARKBLUE
            ]
        );
    }

    #[test]
    fn cbrt() {
        // t = d^(1/3) = 0, 1, 1.44225, 1.91293; positions 0.52276, 0.75395.
        // d=1: r = 173 * (1 - 0.52276) = 82.6, g = 103.1, b = 230 - 91*0.52276
        // = 182.4; d=3: 42.6, 53.1, 161.4.
        assert_eq!(
            shade_counts(&opts(How::Cbrt)),
            vec![
                EMPTY,
                LIGHTBLUE,
                [82, 103, 182, 255],
                [42, 53, 161, 255],
                EMPTY,
                DARKBLUE
            ]
        );
    }

    #[test]
    fn eq_hist_exact_integer_path() {
        // Integer data, range 7 < 65536: exact histogram over d = 0..=7:
        // counts 1,1,0,1,0,0,0,1 -> cdf .25,.5,.5,.75,.75,.75,.75,1.
        // t = .25, .5, .75, 1; span = (.25, 1): positions 0, 1/3, 2/3, 1,
        // the same bytes as log here.
        let o = opts(How::EqHist);
        let n = Normalization::from_grid(&counts(), &o).unwrap().unwrap();
        assert_eq!(n.discrete_levels(), Some(4));
        assert_eq!(n.span(), (0.25, 1.0));
        assert_eq!(
            shade_counts(&o),
            vec![
                EMPTY,
                LIGHTBLUE,
                [115, 144, 199, 255],
                [57, 72, 169, 255],
                EMPTY,
                DARKBLUE
            ]
        );
    }

    #[test]
    fn rescale_discrete_levels_lowers_the_low_end() {
        // 4 levels: multiple = 1.5 - 0.5/98 * 2 = 1.4898; lower =
        // max(1 - 1.4898 * 0.75, 0) = 0, so span (0, 1) and the lowest value
        // (t = .25) is no longer lightblue: r = 173 * .75 = 129.75,
        // g = 162, b = 230 - 91 * .25 = 207.25.
        let o = ShadeOptions {
            rescale_discrete_levels: true,
            ..opts(How::EqHist)
        };
        let px = shade_counts(&o);
        assert_eq!(px[1], [129, 162, 207, 255]);
        assert_eq!(px[2], [86, 108, 184, 255]);
        assert_eq!(px[5], DARKBLUE);
        // Ignored for other methods, as in Datashader.
        let lin = ShadeOptions {
            rescale_discrete_levels: true,
            ..opts(How::Linear)
        };
        assert_eq!(shade_counts(&lin), shade_counts(&opts(How::Linear)));
    }

    #[test]
    fn span_clips_and_fixes_the_scale() {
        // span (2, 6): offset 2, values clipped to [2, 6] (1 -> 2, 8 -> 6),
        // transformed span [0, 4]: 1 and 2 -> lightblue, 4 -> midpoint
        // (86.5, 108, 184.5), 8 -> darkblue.
        let o = ShadeOptions {
            span: Some((2.0, 6.0)),
            ..opts(How::Linear)
        };
        assert_eq!(
            shade_counts(&o),
            vec![
                EMPTY,
                LIGHTBLUE,
                LIGHTBLUE,
                [86, 108, 184, 255],
                EMPTY,
                DARKBLUE
            ]
        );
        let e = ShadeOptions {
            span: Some((2.0, 6.0)),
            ..opts(How::EqHist)
        };
        assert!(matches!(
            shade(&counts(), &e, None),
            Err(ShadeError::SpanWithEqHist)
        ));
    }

    #[test]
    fn single_colour_ramps_alpha() {
        // cmap "red": RGB fixed, alpha = interp(t, linspace(span, 216),
        // arange(40, 256)); log positions 0, 1/3, 2/3, 1 -> 40, 111.7,
        // 183.3, 255. Masked pixels keep the RGB with alpha 0.
        let o = ShadeOptions {
            cmap: "red".parse().unwrap(),
            ..opts(How::Log)
        };
        assert_eq!(
            shade_counts(&o),
            vec![
                [255, 0, 0, 0],
                [255, 0, 0, 40],
                [255, 0, 0, 111],
                [255, 0, 0, 183],
                [255, 0, 0, 0],
                [255, 0, 0, 255]
            ]
        );
    }

    #[test]
    fn empty_pixels_are_transparent() {
        let nan = f64::NAN;
        let values = [nan, 3.0, nan, -1.0];
        let grid = ScalarGrid {
            width: 2,
            height: 2,
            values: &values,
            integer: false,
        };
        for how in [How::Linear, How::Log, How::Cbrt, How::EqHist] {
            let px = pixels(&shade(&grid, &opts(how), None).unwrap());
            assert_eq!(px[0], EMPTY);
            assert_eq!(px[2], EMPTY);
            assert_eq!(px[1][3], 255);
            assert_eq!(px[3], LIGHTBLUE, "{how}: the minimum maps to the bottom");
        }
        // In a float grid zero is a value, not empty.
        let zeros = [0.0, 1.0];
        let g = ScalarGrid {
            width: 2,
            height: 1,
            values: &zeros,
            integer: false,
        };
        assert_eq!(
            pixels(&shade(&g, &opts(How::Linear), None).unwrap())[0],
            LIGHTBLUE
        );
        // Nothing unmasked: an all-zero image (and no span/eq_hist error).
        let all = [0.0; 4];
        let g = ScalarGrid {
            width: 2,
            height: 2,
            values: &all,
            integer: true,
        };
        assert_eq!(
            shade(&g, &opts(How::EqHist), None).unwrap(),
            Rgba::new(2, 2)
        );
    }

    #[test]
    fn eq_hist_float_grid_uses_65536_bins() {
        // Float data, range 250000.5: 65536 bins of width 3.8147. 0 and 1
        // share bin 0 (cdf .5) and both lie left of its centre -> t = .5 =
        // span start -> black. 100000 sits just below its bin centre
        // (100001.6), so it interpolates from .5 towards .75 and lands a
        // hair under the middle: 127.49 -> 127. 250000.5 -> 1 -> white.
        let nan = f64::NAN;
        let values = [nan, 0.0, 1.0, 100000.0, 250000.5, nan];
        let grid = ScalarGrid {
            width: 3,
            height: 2,
            values: &values,
            integer: false,
        };
        let o = ShadeOptions {
            cmap: Colormap::from_hex_list("black,white").unwrap(),
            ..opts(How::EqHist)
        };
        let px = pixels(&shade(&grid, &o, None).unwrap());
        assert_eq!(
            px,
            vec![
                EMPTY,
                [0, 0, 0, 255],
                [0, 0, 0, 255],
                [127, 127, 127, 255],
                [255, 255, 255, 255],
                EMPTY
            ]
        );
        let n = Normalization::from_grid(&grid, &o).unwrap().unwrap();
        assert_eq!(n.discrete_levels(), Some(3));
        // The same values as counts take the exact path only below 65536.
        let ints = [0.0, 1.0, 2.0, 100000.0];
        let g = ScalarGrid {
            width: 4,
            height: 1,
            values: &ints,
            integer: true,
        };
        let n = Normalization::from_grid(&g, &o).unwrap().unwrap();
        assert_eq!(n.discrete_levels(), Some(2), "1 and 2 share a bin");
    }

    #[test]
    fn categorical_mixes_by_weight() {
        // Pixel 0: red ×1 + blue ×3 -> (255/4, 0, 3*255/4) = (63.75, 0,
        // 191.25) -> (63, 0, 191). Pixel 1: red ×2 -> red. Pixel 2: empty,
        // transparent, RGB = mean of all colours (127.5, 0, 127.5).
        // Alpha: totals 4, 2, 0; zeros masked, offset 2, linear span (0, 2):
        // total 4 -> 255, total 2 -> min_alpha 40.
        let counts = [1.0, 3.0, 2.0, 0.0, 0.0, 0.0];
        let grid = CategoricalGrid {
            width: 3,
            height: 1,
            ncat: 2,
            counts: &counts,
            integer: true,
        };
        let key = parse_color_list("#ff0000,#0000ff").unwrap();
        let img = shade_categorical(&grid, &key, &opts(How::Linear), None).unwrap();
        assert_eq!(
            pixels(&img),
            vec![[63, 0, 191, 255], [255, 0, 0, 40], [127, 0, 127, 0]]
        );
        assert!(matches!(
            shade_categorical(&grid, &key[..1], &opts(How::Linear), None),
            Err(ShadeError::InsufficientColors { got: 1, need: 2 })
        ));
    }

    #[test]
    fn categorical_u32_path_equals_f64_path() {
        // Random integer grids (mostly empty, some large totals), every
        // `how`, per-image and given normalisations, implicit and explicit
        // baselines: the u32 path must give the f64 path's bytes.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut rnd = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        for case in 0..60 {
            let (w, h, ncat) = (
                1 + rnd(40) as usize,
                1 + rnd(30) as usize,
                1 + rnd(7) as usize,
            );
            let counts: Vec<u32> = (0..w * h * ncat)
                .map(|_| match rnd(10) {
                    0..=5 => 0,
                    6..=8 => rnd(20) as u32,
                    _ => rnd(200_000) as u32,
                })
                // Some grids have no empty category anywhere: the implicit
                // baseline (their minimum) is then above 0.
                .map(|c| if case % 5 == 1 { c + 7 } else { c })
                .collect();
            let f: Vec<f64> = counts.iter().map(|&c| c as f64).collect();
            let grid = CategoricalGrid {
                width: w,
                height: h,
                ncat,
                counts: &f,
                integer: true,
            };
            let key = default_color_key(ncat);
            for how in [How::Linear, How::Log, How::Cbrt, How::EqHist] {
                let mut o = opts(how);
                match case % 3 {
                    0 => o.color_baseline = Some(0.0),
                    // An explicit baseline above some counts clips them.
                    1 => o.color_baseline = Some(3.0),
                    _ => {}
                }
                let slow = shade_categorical(&grid, &key, &o, None).unwrap();
                let fast = shade_categorical_counts(w, h, ncat, &counts, &key, &o, None).unwrap();
                assert_eq!(fast, slow, "case {case} {how:?}");
                let n = Normalization::from_categorical_grid(&grid, &o).unwrap();
                let slow = shade_categorical(&grid, &key, &o, n.as_ref()).unwrap();
                let fast =
                    shade_categorical_counts(w, h, ncat, &counts, &key, &o, n.as_ref()).unwrap();
                assert_eq!(fast, slow, "case {case} {how:?} with a normalisation");
            }
        }
    }

    fn image(px: &[[u8; 4]], w: usize) -> Rgba {
        Rgba::from_data(w, px.len() / w, px.concat()).unwrap()
    }

    const RED_HALF: [u8; 4] = [255, 0, 0, 128];
    const BLUE: [u8; 4] = [0, 0, 255, 255];

    #[test]
    fn spread_square_and_circle() {
        // px=1: the circle mask keeps offsets with sqrt(dx²+dy²) <= 1.5,
        // which includes the diagonals (1.414): identical to the square.
        let mut px = vec![EMPTY; 25];
        px[12] = BLUE;
        let img = image(&px, 5);
        let sq = spread(&img, 1, Shape::Square);
        assert_eq!(spread(&img, 1, Shape::Circle), sq);
        for y in 0..5 {
            for x in 0..5 {
                let inside = (1..=3).contains(&x) && (1..=3).contains(&y);
                assert_eq!(sq.pixel(x, y), if inside { BLUE } else { EMPTY });
            }
        }
        // px=2: the circle drops the corners (sqrt 8 = 2.83 > 2.5) but keeps
        // (2, 1) (sqrt 5 = 2.24).
        let c2 = spread(&img, 2, Shape::Circle);
        assert_eq!(c2.pixel(0, 0), EMPTY);
        assert_eq!(c2.pixel(4, 4), EMPTY);
        assert_eq!(c2.pixel(0, 1), BLUE);
        assert_eq!(spread(&img, 2, Shape::Square).pixel(0, 0), BLUE);
        assert_eq!(spread(&img, 0, Shape::Square), img);
    }

    #[test]
    fn spread_composites_in_datashader_row_order() {
        // Datashader's row 0 is our bottom row, so the bottom pixel is
        // stamped first and the top one goes `over` it: half-alpha red over
        // blue = (128, 0, 127, 255) in both pixels.
        let vertical = image(&[RED_HALF, BLUE], 1);
        let out = spread(&vertical, 1, Shape::Square);
        assert_eq!(pixels(&out), vec![[128, 0, 127, 255]; 2]);
        // Left to right within a row: opaque blue ends on top.
        let horizontal = image(&[RED_HALF, BLUE], 2);
        assert_eq!(
            pixels(&spread(&horizontal, 1, Shape::Square)),
            vec![BLUE; 2]
        );
    }

    #[test]
    fn an_opaque_source_over_anything_is_itself() {
        // The fast spread writes opaque sources without compositing.
        for c in 0..=255u8 {
            for d in 0..=255u8 {
                let src = [c, 255 - c, c / 2, 255];
                let dst = [d, 255 - d, d / 3, d];
                assert_eq!(super::super::composite::over(src, dst), src, "{c} over {d}");
            }
        }
    }

    #[test]
    fn dynspread_stops_at_first_dense_radius() {
        // Two pixels 3 apart: at px=1 the density is measured within radius
        // 2 (no neighbours: 0), at px=2 within radius 4 (both: 1.0).
        let mut px = vec![EMPTY; 10];
        px[2] = BLUE;
        px[5] = BLUE;
        let img = image(&px, 10);
        // 1.0 > 0.5 at px=2, so Datashader uses px - 1 = 1.
        let out = dynspread(&img, 0.5, 3, Shape::Square).unwrap();
        assert_eq!(out, spread(&img, 1, Shape::Square));
        assert_eq!(out.pixel(0, 0), EMPTY);
        assert_eq!(out.pixel(6, 0), BLUE);
        // Density never exceeds 1.0: spreads the full max_px.
        let full = dynspread(&img, 1.0, 3, Shape::Square).unwrap();
        assert_eq!(full, spread(&img, 3, Shape::Square));
        assert_eq!(dynspread(&img, 0.5, 0, Shape::Square).unwrap(), img);
        // Empty image: density is infinite, unchanged.
        let empty = Rgba::new(4, 4);
        assert_eq!(dynspread(&empty, 0.5, 3, Shape::Circle).unwrap(), empty);
        assert!(dynspread(&img, 1.5, 3, Shape::Circle).is_err());
    }

    #[test]
    fn background_composites_under() {
        // Half red over white: sa = 128/255, r = 1, g = b = 0.498 -> 127.
        let mut img = image(&[RED_HALF, EMPTY, BLUE], 3);
        set_background(&mut img, parse_color("white").unwrap());
        assert_eq!(
            pixels(&img),
            vec![[255, 127, 127, 255], [255, 255, 255, 255], BLUE]
        );
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn how() -> impl Strategy<Value = How> {
        prop_oneof![
            Just(How::Linear),
            Just(How::Log),
            Just(How::Cbrt),
            Just(How::EqHist)
        ]
    }

    /// Values typical of both grid kinds: small counts, big counts past the
    /// exact eq_hist range, fractional and negative floats, and empties.
    fn value(integer: bool) -> BoxedStrategy<f64> {
        if integer {
            prop_oneof![
                3 => Just(0.0),
                4 => (1u32..20).prop_map(f64::from),
                1 => (1u32..200_000).prop_map(f64::from),
            ]
            .boxed()
        } else {
            prop_oneof![
                2 => Just(f64::NAN),
                4 => -1e3f64..1e3,
                1 => -1e7f64..1e7,
                1 => (0u32..5).prop_map(f64::from),
            ]
            .boxed()
        }
    }

    fn grid() -> impl Strategy<Value = (usize, bool, Vec<f64>)> {
        (1usize..7, 1usize..7, any::<bool>()).prop_flat_map(|(w, h, integer)| {
            (
                Just(w),
                Just(integer),
                prop::collection::vec(value(integer), w * h),
            )
        })
    }

    fn histogram(values: &[f64]) -> Vec<(f64, u64)> {
        let mut m: HashMap<u64, u64> = HashMap::new();
        for v in values {
            *m.entry(v.to_bits()).or_default() += 1;
        }
        m.into_iter().map(|(b, c)| (f64::from_bits(b), c)).collect()
    }

    /// Datashader's spread as it reads, every stamp through `over`: the
    /// reference the fast [`spread`] must equal byte for byte.
    fn spread_reference(img: &Rgba, px: u32, shape: Shape) -> Rgba {
        let (w, h, r) = (img.width as isize, img.height as isize, px as isize);
        let mut out = vec![[0u8; 4]; img.width * img.height];
        for y in (0..h).rev() {
            for x in 0..w {
                let el = img.pixel(x as usize, y as usize);
                if el[3] == 0 {
                    continue;
                }
                for dy in -r..=r {
                    for dx in -r..=r {
                        let inside = shape == Shape::Square
                            || (((dx * dx + dy * dy) as f64).sqrt()) <= r as f64 + 0.5;
                        let (ty, tx) = (y + dy, x + dx);
                        if !inside || ty < 0 || ty >= h || tx < 0 || tx >= w {
                            continue;
                        }
                        let t = &mut out[(ty * w + tx) as usize];
                        *t = if *t == [0; 4] {
                            el
                        } else {
                            super::super::composite::over(el, *t)
                        };
                    }
                }
            }
        }
        Rgba::from_data(img.width, img.height, out.concat()).unwrap()
    }

    /// Pixels as shaded tiles have them: empty, opaque colormap colours,
    /// and category mixes at any alpha.
    fn spread_image() -> impl Strategy<Value = Rgba> {
        let px = prop_oneof![
            4 => Just([0u8; 4]),
            2 => (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(r, g, b)| [r, g, b, 255]),
            2 => any::<[u8; 4]>(),
            1 => Just([10, 20, 30, 0]),
        ];
        (1usize..12, 1usize..12).prop_flat_map(move |(w, h)| {
            prop::collection::vec(px.clone(), w * h)
                .prop_map(move |p| Rgba::from_data(w, h, p.concat()).unwrap())
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn spread_equals_datashaders_kernel(
            img in spread_image(),
            px in 1u32..4,
            square in any::<bool>(),
        ) {
            let shape = if square { Shape::Square } else { Shape::Circle };
            prop_assert_eq!(spread(&img, px, shape), spread_reference(&img, px, shape));
        }

        #[test]
        fn own_normalization_reproduces_per_image_shading(
            (w, integer, values) in grid(),
            how in how(),
            rescale in any::<bool>(),
            single in any::<bool>(),
        ) {
            let grid = ScalarGrid { width: w, height: values.len() / w, values: &values, integer };
            let opts = ShadeOptions {
                how,
                rescale_discrete_levels: rescale,
                cmap: if single { Colormap::single([255, 0, 0]) } else { Colormap::named("fire").unwrap() },
                ..ShadeOptions::default()
            };
            let direct = shade(&grid, &opts, None).unwrap();
            let from_values = Normalization::from_values(&values, integer, &opts).unwrap();
            let from_hist = Normalization::from_histogram(&histogram(&values), integer, &opts).unwrap();
            prop_assert_eq!(&from_values, &from_hist);
            if let Some(n) = from_values {
                prop_assert_eq!(shade(&grid, &opts, Some(&n)).unwrap(), direct);
            } else {
                prop_assert_eq!(direct, Rgba::new(w, values.len() / w));
            }
        }

        #[test]
        fn categorical_own_normalization_reproduces_shading(
            (w, integer, values) in grid(),
            how in how(),
        ) {
            // Two categories: the grid's values and a shifted copy.
            let counts: Vec<f64> = values.iter().flat_map(|&v| [v, if integer { (v * 2.0) % 7.0 } else { v / 3.0 }]).collect();
            let grid = CategoricalGrid { width: w, height: values.len() / w, ncat: 2, counts: &counts, integer };
            let opts = ShadeOptions { how, ..ShadeOptions::default() };
            let key = default_color_key(2);
            let direct = shade_categorical(&grid, &key, &opts, None).unwrap();
            let totals = category_totals(&grid);
            let any_empty = totals.iter().any(|&t| t.is_nan() || (integer && t == 0.0));
            let non_empty: Vec<f64> = totals.iter().copied().filter(|&t| !(t.is_nan() || (integer && t == 0.0))).collect();
            let n = Normalization::from_category_totals_with_empty(&histogram(&non_empty), integer, any_empty, &opts).unwrap();
            prop_assert_eq!(&n, &Normalization::from_categorical_grid(&grid, &opts).unwrap());
            prop_assert_eq!(shade_categorical(&grid, &key, &opts, n.as_ref()).unwrap(), direct);
            if any_empty {
                // A map-wide histogram of non-empty totals assumes empties.
                prop_assert_eq!(&n, &Normalization::from_category_totals(&histogram(&non_empty), integer, &opts).unwrap());
            }
        }

        #[test]
        fn png_round_trips(w in 1usize..40, h in 1usize..12, ncolors in 1usize..400, seed in any::<u64>()) {
            // A palette of `ncolors` pseudo-random RGBA values covers the 1,
            // 2, 4 and 8-bit indexed encodings and the RGBA fallback.
            let mut s = seed | 1;
            let mut next = || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s };
            let palette: Vec<[u8; 4]> = (0..ncolors).map(|_| next().to_le_bytes()[..4].try_into().unwrap()).collect();
            let data: Vec<u8> = (0..w * h).flat_map(|_| palette[next() as usize % ncolors]).collect();
            let img = Rgba::from_data(w, h, data).unwrap();
            prop_assert_eq!(decode(&encode_png(&img).unwrap()), img.clone());
            prop_assert_eq!(decode(&encode_png_rgba(&img).unwrap()), img.clone());
            prop_assert_eq!(decode_webp(&encode_webp(&img).unwrap()), img);
        }
    }

    /// Decodes a WebP this module writes back to RGBA8.
    pub(super) fn decode_webp(bytes: &[u8]) -> Rgba {
        let mut dec = image_webp::WebPDecoder::new(std::io::Cursor::new(bytes)).unwrap();
        assert!(dec.has_alpha());
        let (w, h) = dec.dimensions();
        let mut buf = vec![0; dec.output_buffer_size().unwrap()];
        dec.read_image(&mut buf).unwrap();
        Rgba::from_data(w as usize, h as usize, buf).unwrap()
    }

    /// Decodes any PNG this module writes back to straight RGBA8.
    pub(super) fn decode(bytes: &[u8]) -> Rgba {
        let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
        dec.set_transformations(png::Transformations::EXPAND);
        let mut reader = dec.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        let data = match info.color_type {
            png::ColorType::Rgba => buf,
            png::ColorType::Rgb => buf
                .chunks(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect(),
            other => panic!("unexpected colour type {other:?}"),
        };
        Rgba::from_data(info.width as usize, info.height as usize, data).unwrap()
    }
}

mod api {
    use super::*;

    #[test]
    fn png_of_a_shaded_tile_is_indexed_and_exact() {
        let values: Vec<f64> = (0..256 * 256).map(|i| ((i * 7919) % 97) as f64).collect();
        let grid = ScalarGrid {
            width: 256,
            height: 256,
            values: &values,
            integer: true,
        };
        let img = shade(&grid, &ShadeOptions::default(), None).unwrap();
        let indexed = encode_png(&img).unwrap();
        let rgba = encode_png_rgba(&img).unwrap();
        assert!(
            indexed.len() < rgba.len(),
            "{} vs {}",
            indexed.len(),
            rgba.len()
        );
        assert_eq!(props::decode(&indexed), img);
        assert_eq!(props::decode(&rgba), img);
        assert_eq!(props::decode_webp(&encode_webp(&img).unwrap()), img);
        assert!(
            encode_png(&Rgba {
                width: 2,
                height: 2,
                data: vec![0; 3]
            })
            .is_err()
        );
    }

    #[test]
    fn seamless_tiles_share_a_scale() {
        // Two tiles of one map: alone, each autoranges its maximum to
        // darkblue; with the map's normalisation the value 5 gets the same
        // colour in both and only the true maximum is darkblue.
        let a = [1.0, 5.0];
        let b = [5.0, 50.0];
        let o = ShadeOptions {
            how: How::Linear,
            ..ShadeOptions::default()
        };
        let tile = |v: &[f64], n: Option<&Normalization>| {
            let g = ScalarGrid {
                width: 2,
                height: 1,
                values: v,
                integer: true,
            };
            shade(&g, &o, n).unwrap()
        };
        assert_eq!(tile(&a, None).pixel(1, 0), [0, 0, 139, 255]);
        let all: Vec<f64> = a.iter().chain(&b).copied().collect();
        let n = Normalization::from_values(&all, true, &o).unwrap().unwrap();
        assert_eq!(
            tile(&a, Some(&n)).pixel(1, 0),
            tile(&b, Some(&n)).pixel(0, 0)
        );
        assert_ne!(tile(&a, Some(&n)).pixel(1, 0), [0, 0, 139, 255]);
        assert_eq!(tile(&b, Some(&n)).pixel(1, 0), [0, 0, 139, 255]);
        assert_eq!(n.position(50.0), 1.0);
        assert_eq!(n.position(1.0), 0.0);
        let eq = ShadeOptions::default();
        assert!(matches!(
            shade(
                &ScalarGrid {
                    width: 2,
                    height: 1,
                    values: &a,
                    integer: true
                },
                &eq,
                Some(&n)
            ),
            Err(ShadeError::NormalizationMismatch { .. })
        ));
        // Normalisations can be cached as JSON.
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(serde_json::from_str::<Normalization>(&json).unwrap(), n);
    }

    #[test]
    fn colours_and_colormaps() {
        assert_eq!(parse_color("#ADD8E6").unwrap(), [173, 216, 230]);
        assert_eq!(parse_color("#f80").unwrap(), [255, 136, 0]);
        assert_eq!(parse_color("lightblue").unwrap(), [173, 216, 230]);
        assert_eq!(parse_color(" DarkBlue ").unwrap(), [0, 0, 139]);
        for bad in ["", "#12345", "#gggggg", "notacolour", "#ééé"] {
            assert!(parse_color(bad).is_err(), "{bad}");
        }
        for name in Colormap::names() {
            let c = Colormap::named(name).unwrap();
            assert!(!c.is_single_color());
            assert!(c.colors().len() == 256 || name == "default", "{name}");
        }
        // colorcet.fire[:3] == ['#000000', '#060000', '#0d0000'] in Python.
        let fire = Colormap::named("fire").unwrap();
        assert_eq!(fire.colors()[..3], [[0, 0, 0], [6, 0, 0], [13, 0, 0]]);
        assert_eq!(*fire.colors().last().unwrap(), [255, 255, 255]);
        let rev = Colormap::named("fire_r").unwrap();
        assert_eq!(rev.colors()[0], [255, 255, 255]);
        // Bokeh's Viridis256 starts '#440154', '#440255' and ends '#FDE724'.
        let v = Colormap::named("Viridis").unwrap();
        assert_eq!(v.colors()[..2], [[0x44, 0x01, 0x54], [0x44, 0x02, 0x55]]);
        assert_eq!(v.colors()[255], [0xfd, 0xe7, 0x24]);
        assert!(Colormap::named("linear_kryw_0_100_c71").is_ok());
        let err = Colormap::named("nope").unwrap_err().to_string();
        assert!(err.contains("fire") && err.contains("viridis"), "{err}");
        assert!(
            Colormap::named("red").is_err(),
            "colour names are not colormaps"
        );

        let single: Colormap = "red".parse().unwrap();
        assert!(single.is_single_color());
        let list: Colormap = "#ff0000,#00ff00".parse().unwrap();
        assert_eq!(list.colors(), &[[255, 0, 0], [0, 255, 0]]);
        assert_eq!(list.to_string(), "#ff0000,#00ff00");
        assert_eq!(
            "kbc".parse::<Colormap>().unwrap(),
            Colormap::named("kbc").unwrap()
        );
        assert_eq!(
            Colormap::default().colors(),
            &[[173, 216, 230], [0, 0, 139]]
        );
        assert_eq!(Colormap::named("default").unwrap(), Colormap::default());
        assert!(Colormap::from_colors(vec![]).is_err());
    }

    #[test]
    fn how_options_and_keys() {
        for (s, h) in [
            ("linear", How::Linear),
            ("log", How::Log),
            ("cbrt", How::Cbrt),
            ("eq_hist", How::EqHist),
        ] {
            assert_eq!(s.parse::<How>().unwrap(), h);
            assert_eq!(h.to_string(), s);
        }
        assert!("sqrt".parse::<How>().is_err());
        let d = ShadeOptions::default();
        assert_eq!(
            (
                d.how,
                d.alpha,
                d.min_alpha,
                d.span,
                d.rescale_discrete_levels
            ),
            (How::EqHist, 255, 40, None, false)
        );
        let k = default_color_key(24);
        assert_eq!(k[0], [0xe4, 0x1a, 0x1c]);
        assert_eq!(k[21], [0xff, 0xed, 0x6f]);
        assert_eq!(k[22], k[0]);
        assert_eq!(
            parse_color_list("red, #00ff00").unwrap(),
            vec![[255, 0, 0], [0, 255, 0]]
        );
        assert!(parse_color_list(" , ").is_err());
        let bad = ScalarGrid {
            width: 2,
            height: 2,
            values: &[1.0],
            integer: true,
        };
        assert!(matches!(
            shade(&bad, &d, None),
            Err(ShadeError::ShapeMismatch { .. })
        ));
        let ramp = ShadeOptions {
            cmap: Colormap::single([1, 2, 3]),
            alpha: 10,
            min_alpha: 20,
            ..d
        };
        let g = ScalarGrid {
            width: 1,
            height: 1,
            values: &[1.0],
            integer: true,
        };
        assert!(matches!(
            shade(&g, &ramp, None),
            Err(ShadeError::EmptyAlphaRamp { .. })
        ));
    }
}
