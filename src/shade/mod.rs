//! Shading: aggregate grids to RGBA images and PNG tiles, following
//! Datashader 0.19's `transfer_functions` (`shade`, `spread`, `dynspread`,
//! `set_background`) byte for byte where NumPy's arithmetic allows.
//!
//! Grids are row-major with row 0 at the *top* of the image (Datashader's
//! aggregates have row 0 at the bottom and flip on export); per-pixel
//! shading does not care, and [`spread`] visits rows bottom-up so its
//! compositing order matches Datashader's.
//!
//! Seamless tiles: pass one [`Normalization`] built from a whole zoom level
//! to [`shade`] / [`shade_categorical`] for every tile instead of letting
//! each tile autorange.
//!
//! Known, deliberate differences from Datashader are listed on the
//! functions concerned; the remaining ones are floating-point: `log1p` and
//! `pow` come from the platform libm (NumPy may use SVML on AVX-512
//! machines), and categorical colour mixing follows OpenBLAS's FMA `sgemm`
//! kernels (a BLAS without FMA can differ in rare float-valued pixels).

mod color;
mod composite;
mod encode;
mod mpl_tables;
mod norm;
mod numpy;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use color::{Colormap, SETS1TO3, default_color_key, parse_color, parse_color_list};
pub use composite::{Shape, crop, dynspread, dynspread_radius, set_background, spread};
pub use encode::{ImageFormat, encode_png, encode_png_rgba, encode_webp};
pub use norm::Normalization;

use norm::nan_to_u8;

/// Errors from shading, colour parsing and PNG encoding.
#[derive(Debug, thiserror::Error)]
pub enum ShadeError {
    /// A colormap name that is not known.
    #[error("unknown colormap {name:?}; known colormaps: {known}")]
    UnknownColormap {
        /// The name asked for.
        name: String,
        /// Comma-separated known names.
        known: String,
    },
    /// A colour that is neither `#rrggbb`/`#rgb` hex nor a known name.
    #[error("invalid colour {0:?} (expected #rrggbb, #rgb or a web colour name)")]
    InvalidColor(String),
    /// A colormap or colour list with no colours.
    #[error("colormap has no colours")]
    EmptyColormap,
    /// An interpolation method other than linear, log, cbrt, eq_hist.
    #[error("unknown interpolation method {0:?} (expected linear, log, cbrt or eq_hist)")]
    UnknownHow(String),
    /// Datashader does not support an explicit span with eq_hist.
    #[error("span is not (yet) valid to use with eq_hist")]
    SpanWithEqHist,
    /// A span that is not finite or has `lo > hi`.
    #[error("invalid span ({0}, {1}): bounds must be finite with lo <= hi")]
    InvalidSpan(f64, f64),
    /// An infinite value among the unmasked data (NumPy's histogram
    /// rejects it; other methods would produce an unusable span).
    #[error("data contains a non-finite value ({0})")]
    NonFiniteValue(f64),
    /// A single-colour colormap with `min_alpha > alpha` has no alpha ramp
    /// (NumPy: "array of sample points is empty").
    #[error("min_alpha ({min_alpha}) exceeds alpha ({alpha}): empty alpha ramp")]
    EmptyAlphaRamp {
        /// The requested minimum alpha.
        min_alpha: u8,
        /// The requested maximum alpha.
        alpha: u8,
    },
    /// Fewer colours in the colour key than categories.
    #[error("insufficient colors provided ({got}) for the categorical fields available ({need})")]
    InsufficientColors {
        /// Colours given.
        got: usize,
        /// Categories in the grid.
        need: usize,
    },
    /// A grid or image whose buffer length does not match its dimensions.
    #[error("buffer holds {got} values but the dimensions need {expected}")]
    ShapeMismatch {
        /// Length implied by the dimensions.
        expected: usize,
        /// Actual buffer length.
        got: usize,
    },
    /// A normalisation built for another interpolation method.
    #[error("normalization was built for how={norm} but the options ask for how={opts}")]
    NormalizationMismatch {
        /// The normalisation's method.
        norm: How,
        /// The options' method.
        opts: How,
    },
    /// An image with zero width or height cannot be encoded as PNG.
    #[error("cannot encode an empty ({0}x{1}) image")]
    EmptyImage(usize, usize),
    /// dynspread's threshold outside `[0, 1]`.
    #[error("threshold must be in [0, 1], got {0}")]
    InvalidThreshold(f64),
    /// The PNG encoder failed.
    #[error("PNG encoding failed: {0}")]
    Png(#[from] png::EncodingError),
    /// VP8L stores each side in 14 bits.
    #[error("WebP holds at most 16384 pixels a side, not {0}x{1}")]
    TooLargeForWebp(usize, usize),
    /// The WebP encoder failed.
    #[error("WebP encoding failed: {0}")]
    Webp(#[from] image_webp::EncodingError),
}

/// How aggregate values are mapped onto the colormap (Datashader's `how`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum How {
    /// Linear in the value.
    Linear,
    /// `log1p(value - offset)`.
    Log,
    /// Cube root of `value - offset`.
    Cbrt,
    /// Histogram equalisation (Datashader's default).
    #[default]
    EqHist,
}

impl How {
    /// Every value's name, as [`FromStr`] takes them.
    pub const NAMES: [&'static str; 4] = ["linear", "log", "cbrt", "eq_hist"];
}

impl FromStr for How {
    type Err = ShadeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "linear" => Ok(How::Linear),
            "log" => Ok(How::Log),
            "cbrt" => Ok(How::Cbrt),
            "eq_hist" => Ok(How::EqHist),
            _ => Err(ShadeError::UnknownHow(s.to_string())),
        }
    }
}

impl fmt::Display for How {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            How::Linear => "linear",
            How::Log => "log",
            How::Cbrt => "cbrt",
            How::EqHist => "eq_hist",
        })
    }
}

/// Parameters of [`shade`] and [`shade_categorical`], defaulting to
/// Datashader's `shade` defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ShadeOptions {
    /// Value-to-colour mapping; default [`How::EqHist`].
    pub how: How,
    /// Colormap for scalar grids; default `["lightblue", "darkblue"]`.
    pub cmap: Colormap,
    /// Alpha of coloured pixels, and the top of alpha ramps; default 255.
    pub alpha: u8,
    /// Bottom of alpha ramps (single-colour cmaps, categorical); default 40.
    pub min_alpha: u8,
    /// Fixed data range instead of autoranging; not allowed with eq_hist.
    pub span: Option<(f64, f64)>,
    /// With eq_hist, lower the span start when there are few distinct
    /// values so they use the visible top of the colormap; default false.
    pub rescale_discrete_levels: bool,
    /// Categorical only: value subtracted from each category before colour
    /// mixing. `None` (Datashader's default) uses the grid minimum, which
    /// varies per tile; `Some(0.0)` is the seamless choice for counts.
    pub color_baseline: Option<f64>,
}

impl Default for ShadeOptions {
    fn default() -> Self {
        ShadeOptions {
            how: How::EqHist,
            cmap: Colormap::default(),
            alpha: 255,
            min_alpha: 40,
            span: None,
            rescale_discrete_levels: false,
            color_baseline: None,
        }
    }
}

/// A scalar aggregate: `values[row * width + col]`, row 0 at the top.
#[derive(Debug, Clone, Copy)]
pub struct ScalarGrid<'a> {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Row-major values.
    pub values: &'a [f64],
    /// A count grid (Datashader's unsigned aggregates): 0 is empty, and
    /// eq_hist may use its exact per-value histogram. Otherwise a float
    /// grid, where NaN is empty and 0 is a value.
    pub integer: bool,
}

/// A categorical aggregate laid out pixel-major:
/// `counts[(row * width + col) * ncat + k]`, row 0 at the top.
#[derive(Debug, Clone, Copy)]
pub struct CategoricalGrid<'a> {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Categories per pixel.
    pub ncat: usize,
    /// Pixel-major per-category values.
    pub counts: &'a [f64],
    /// Unsigned counts (zero totals are empty) rather than float values
    /// (NaN is missing; a pixel is empty when all its categories are NaN).
    pub integer: bool,
}

impl CategoricalGrid<'_> {
    fn check(&self) -> Result<(), ShadeError> {
        check_categorical_shape(self.width, self.height, self.ncat, self.counts.len())
    }
}

fn check_categorical_shape(
    width: usize,
    height: usize,
    ncat: usize,
    got: usize,
) -> Result<(), ShadeError> {
    let expected = width * height * ncat;
    if got != expected {
        return Err(ShadeError::ShapeMismatch { expected, got });
    }
    Ok(())
}

/// The first `ncat` colours of a colour key, or an error when it is short.
fn category_colors(color_key: &[[u8; 3]], ncat: usize) -> Result<&[[u8; 3]], ShadeError> {
    color_key.get(..ncat).ok_or(ShadeError::InsufficientColors {
        got: color_key.len(),
        need: ncat,
    })
}

/// Painted pixels by a 64-bit key of what decides their bytes (a value's
/// bits, or a pixel's packed counts): a direct-mapped table of 4,096 slots,
/// far cheaper than painting again when values repeat. `vacant` is a key no
/// looked-up pixel has, which marks a slot never filled.
struct PaintMemo {
    slots: Vec<(u64, [u8; 4])>,
}

impl PaintMemo {
    const SLOTS: usize = 1 << 12;

    fn new(vacant: u64) -> PaintMemo {
        PaintMemo {
            slots: vec![(vacant, [0; 4]); Self::SLOTS],
        }
    }

    fn slot(key: u64) -> usize {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 52) as usize
    }

    /// The bytes painted for `key`, if they are still held.
    fn get(&self, key: u64) -> Option<[u8; 4]> {
        let (k, c) = self.slots[Self::slot(key)];
        (k == key).then_some(c)
    }

    fn put(&mut self, key: u64, c: [u8; 4]) {
        self.slots[Self::slot(key)] = (key, c);
    }
}

/// Alpha from a categorical pixel total, computed once per distinct integer
/// total below 2^16 (totals repeat a lot); float totals are not memoized.
struct AlphaMemo(Vec<u16>);

impl AlphaMemo {
    fn new(integer: bool) -> AlphaMemo {
        AlphaMemo(if integer {
            vec![0; 1 << 16]
        } else {
            Vec::new()
        })
    }

    /// `nm`'s alpha for `total` (0 in the memo = not yet computed, else
    /// alpha + 1).
    fn alpha(&mut self, total: f64, nm: &Normalization, opts: &ShadeOptions) -> u8 {
        let compute = || nm.alpha_for(nm.transform(total), opts.min_alpha, opts.alpha);
        match self.0.get_mut(total as usize) {
            Some(m) => {
                if *m == 0 {
                    *m = u16::from(compute()) + 1;
                }
                (*m - 1) as u8
            }
            None => compute(),
        }
    }
}

/// An RGBA8 image with straight (not premultiplied) alpha, row 0 at the top:
/// the byte layout of Datashader's `uint32` images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgba {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// `4 * width * height` bytes, R, G, B, A per pixel.
    pub data: Vec<u8>,
}

impl Rgba {
    /// A fully transparent (all-zero) image.
    pub fn new(width: usize, height: usize) -> Rgba {
        Rgba {
            width,
            height,
            data: vec![0; width * height * 4],
        }
    }

    /// Wraps existing RGBA bytes, checking the length.
    pub fn from_data(width: usize, height: usize, data: Vec<u8>) -> Result<Rgba, ShadeError> {
        if data.len() != width * height * 4 {
            return Err(ShadeError::ShapeMismatch {
                expected: width * height * 4,
                got: data.len(),
            });
        }
        Ok(Rgba {
            width,
            height,
            data,
        })
    }

    /// The pixel at column `x`, row `y` (row 0 at the top).
    pub fn pixel(&self, x: usize, y: usize) -> [u8; 4] {
        let i = (y * self.width + x) * 4;
        [
            self.data[i],
            self.data[i + 1],
            self.data[i + 2],
            self.data[i + 3],
        ]
    }
}

/// Colours transformed values for a scalar grid: Datashader's list and
/// single-colour branches of `_interpolate`.
enum Painter {
    List {
        xp: Vec<f64>,
        guide: numpy::Guide,
        channels: [Vec<f64>; 3],
        alpha: u8,
    },
    Single {
        rgb: [u8; 3],
        xp: Vec<f64>,
        ap: Vec<f64>,
    },
}

impl Painter {
    fn new(
        cmap: &Colormap,
        span: (f64, f64),
        alpha: u8,
        min_alpha: u8,
    ) -> Result<Self, ShadeError> {
        let colors = cmap.colors();
        if cmap.is_single_color() {
            if min_alpha > alpha {
                return Err(ShadeError::EmptyAlphaRamp { min_alpha, alpha });
            }
            let ap: Vec<f64> = (min_alpha..=alpha).map(f64::from).collect();
            Ok(Painter::Single {
                rgb: colors[0],
                xp: numpy::linspace(span.0, span.1, ap.len()),
                ap,
            })
        } else {
            let ch = |k: usize| colors.iter().map(|c| f64::from(c[k])).collect();
            let xp = numpy::linspace(span.0, span.1, colors.len());
            Ok(Painter::List {
                guide: numpy::Guide::new(&xp),
                xp,
                channels: [ch(0), ch(1), ch(2)],
                alpha,
            })
        }
    }

    /// `t` is NaN for masked pixels, which reproduces Datashader's bytes for
    /// them too (usually 0; see the single-point quirks in `numpy::locate`).
    fn paint(&self, t: f64) -> [u8; 4] {
        match self {
            Painter::List {
                xp,
                guide,
                channels,
                alpha,
            } => {
                let pos = numpy::locate_with(t, xp, guide);
                let c = |k: usize| {
                    let fp = &channels[k];
                    nan_to_u8(numpy::eval(pos, t, xp, fp, 255.0, fp[fp.len() - 1]))
                };
                let a = if t.is_nan() { 0 } else { *alpha };
                [c(0), c(1), c(2), a]
            }
            Painter::Single { rgb, xp, ap } => {
                // With min_alpha == alpha there is one sample point and
                // np.interp maps NaN to it: Datashader then paints empty
                // pixels with full alpha. Reproduced, not endorsed.
                let a = nan_to_u8(numpy::interp(t, xp, ap, 0.0, 255.0));
                [rgb[0], rgb[1], rgb[2], a]
            }
        }
    }
}

/// Shades a scalar grid like Datashader's `shade(agg, cmap, how=..., ...)`
/// for a 2-D aggregate.
///
/// With `norm == None` the grid autoranges on its own pixels (Datashader's
/// behaviour); with a [`Normalization`] built from a whole zoom level every
/// tile shares one scale. `opts.how` must match the normalisation; its
/// span and rescaling were fixed when it was built. A grid with no
/// unmasked pixel gives an all-zero image.
///
/// Empty pixels get alpha 0 with RGB 0 for list colormaps and the cmap's
/// RGB for single-colour ones, as in Datashader, with one Datashader quirk
/// kept for exactness: a single-colour cmap with `min_alpha == alpha` has a
/// one-point alpha ramp, and NumPy's `interp` maps NaN to it, so empty
/// pixels come out with alpha `alpha`. Avoid that combination for tiles.
pub fn shade(
    grid: &ScalarGrid,
    opts: &ShadeOptions,
    norm: Option<&Normalization>,
) -> Result<Rgba, ShadeError> {
    let n = grid.width * grid.height;
    if grid.values.len() != n {
        return Err(ShadeError::ShapeMismatch {
            expected: n,
            got: grid.values.len(),
        });
    }
    let integer = grid.integer;
    let masked = |v: f64| v.is_nan() || (integer && v == 0.0);
    if grid.values.iter().all(|&v| masked(v)) {
        return Ok(Rgba::new(grid.width, grid.height));
    }
    let owned;
    let norm = match norm {
        Some(nm) => {
            check_how(nm, opts)?;
            nm
        }
        None => {
            owned = Normalization::from_grid(grid, opts)?
                .expect("a grid with an unmasked pixel has a normalisation");
            &owned
        }
    };
    let painter = Painter::new(&opts.cmap, norm.span(), opts.alpha, opts.min_alpha)?;
    // Every masked pixel paints the same bytes; most of a sparse tile is masked.
    let empty = painter.paint(f64::NAN);
    // Pixels repeat values (counts always; means of a few distinct values
    // often: a z10 mean tile of 10M towers has 5,373 values over 15,312
    // pixels): paint each once, in a direct-mapped memo keyed by the
    // value's bits (a transform is a search and a few divisions). The
    // colour follows from the value alone, so the memo is exact.
    // No pixel value has NaN's bits as its key: NaN is masked.
    let mut memo = PaintMemo::new(f64::NAN.to_bits());
    let mut data = Vec::with_capacity(n * 4);
    for &v in grid.values {
        if masked(v) {
            data.extend_from_slice(&empty);
            continue;
        }
        let key = v.to_bits();
        let c = memo.get(key).unwrap_or_else(|| {
            let c = painter.paint(norm.transform(v));
            memo.put(key, c);
            c
        });
        data.extend_from_slice(&c);
    }
    Ok(Rgba {
        width: grid.width,
        height: grid.height,
        data,
    })
}

fn check_how(norm: &Normalization, opts: &ShadeOptions) -> Result<(), ShadeError> {
    if norm.how() != opts.how {
        return Err(ShadeError::NormalizationMismatch {
            norm: norm.how(),
            opts: opts.how,
        });
    }
    Ok(())
}

/// Per-pixel totals over categories: Datashader's `nansum_missing`
/// (NaN only where every category is NaN), summed pairwise like `np.sum`.
/// The smallest non-NaN value (NaN when there is none), with independent
/// lanes so the comparisons do not form one long dependency chain.
fn nan_min(values: &[f64]) -> f64 {
    let mut lanes = [f64::INFINITY; 8];
    let mut any = false;
    let chunks = values.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            // NaN compares false and leaves the lane as it was.
            if v < *l {
                *l = v;
            }
            any |= !v.is_nan();
        }
    }
    for &v in rest {
        if v < lanes[0] {
            lanes[0] = v;
        }
        any |= !v.is_nan();
    }
    if any {
        lanes.iter().copied().fold(f64::INFINITY, f64::min)
    } else {
        f64::NAN
    }
}

pub(crate) fn category_totals(grid: &CategoricalGrid) -> Vec<f64> {
    let mut buf = Vec::with_capacity(grid.ncat);
    grid.counts
        .chunks_exact(grid.ncat.max(1))
        .map(|px| {
            if px.iter().all(|v| v.is_nan()) {
                return f64::NAN;
            }
            buf.clear();
            buf.extend(px.iter().map(|&v| if v.is_nan() { 0.0 } else { v }));
            numpy::pairwise_sum(&buf, 0.0)
        })
        .collect()
}

/// Shades a categorical grid like Datashader's `shade` for a 3-D aggregate
/// (`_colorize`): each pixel's colour is the average of `color_key`
/// colours weighted by the category values above the baseline, and its
/// alpha comes from the pixel total through `how`, between `min_alpha`
/// and `alpha`.
///
/// `norm` (see [`Normalization::from_category_totals`]) fixes the
/// alpha-from-total scale across tiles. Empty pixels are transparent but,
/// as in Datashader, carry the mean of the colours present (all categories
/// for count grids) in their RGB bytes.
pub fn shade_categorical(
    grid: &CategoricalGrid,
    color_key: &[[u8; 3]],
    opts: &ShadeOptions,
    norm: Option<&Normalization>,
) -> Result<Rgba, ShadeError> {
    grid.check()?;
    let (w, h, ncat) = (grid.width, grid.height, grid.ncat);
    if ncat == 0 {
        return Ok(Rgba::new(w, h));
    }
    let colors = category_colors(color_key, ncat)?;
    let explicit = opts.color_baseline.is_some();
    let baseline = opts.color_baseline.unwrap_or_else(|| nan_min(grid.counts));

    let totals = category_totals(grid);
    let integer = grid.integer;
    let owned;
    let norm = match norm {
        Some(nm) => {
            check_how(nm, opts)?;
            Some(nm)
        }
        None => {
            let pairs: Vec<(f64, u64)> = totals.iter().map(|&t| (t, 1)).collect();
            owned = Normalization::from_category_totals_with_empty(&pairs, integer, false, opts)?;
            owned.as_ref()
        }
    };

    let mut data = Vec::with_capacity(w * h * 4);
    let mut cdata = vec![0f32; ncat];
    // Pixels with no data all mix to the same colour: compute it once.
    let blank = |px: &[f64]| {
        if integer {
            px.iter().all(|&c| c == 0.0)
        } else {
            px.iter().all(|c| c.is_nan())
        }
    };
    let mut blank_rgb: Option<[u8; 3]> = None;
    let mut alpha_memo = AlphaMemo::new(integer);
    for (px, &total) in grid.counts.chunks_exact(ncat).zip(&totals) {
        let rgb = if blank(px) {
            *blank_rgb.get_or_insert_with(|| {
                mix_colors(px, colors, baseline, explicit, &mut cdata, integer)
            })
        } else {
            mix_colors(px, colors, baseline, explicit, &mut cdata, integer)
        };
        let empty = total.is_nan() || (integer && total == 0.0);
        let a = match norm {
            Some(nm) if !empty => alpha_memo.alpha(total, nm, opts),
            _ => 0,
        };
        data.extend_from_slice(&[rgb[0], rgb[1], rgb[2], a]);
    }
    Ok(Rgba {
        width: w,
        height: h,
        data,
    })
}

/// [`shade_categorical`] for integer counts, without widening the grid to
/// `f64`: totals are exact integer sums, the per-image normalisation is
/// built from the distinct totals, empty pixels share one colour and only
/// non-empty pixels are mixed. The output is byte-identical to
/// `shade_categorical` on the same counts as `f64` with `integer: true`.
pub fn shade_categorical_counts(
    width: usize,
    height: usize,
    ncat: usize,
    counts: &[u32],
    color_key: &[[u8; 3]],
    opts: &ShadeOptions,
    norm: Option<&Normalization>,
) -> Result<Rgba, ShadeError> {
    check_categorical_shape(width, height, ncat, counts.len())?;
    if ncat == 0 {
        return Ok(Rgba::new(width, height));
    }
    let colors = category_colors(color_key, ncat)?;
    let explicit = opts.color_baseline.is_some();
    let baseline = opts
        .color_baseline
        .unwrap_or_else(|| counts.iter().copied().min().map_or(f64::NAN, f64::from));
    let total_of = |px: &[u32]| -> u64 { px.iter().map(|&c| u64::from(c)).sum() };
    let owned;
    let norm = match norm {
        Some(nm) => {
            check_how(nm, opts)?;
            Some(nm)
        }
        None => {
            // Distinct totals with their pixel counts, ascending.
            let mut tally = crate::tally::Tally::default();
            for px in counts.chunks_exact(ncat) {
                tally.add(total_of(px));
            }
            let pairs: Vec<(f64, u64)> = tally
                .sorted()
                .into_iter()
                .map(|(t, n)| (t as f64, n))
                .collect();
            owned = Normalization::from_category_totals_with_empty(&pairs, true, false, opts)?;
            owned.as_ref()
        }
    };
    let mut px64 = vec![0f64; ncat];
    let mut cdata = vec![0f32; ncat];
    let blank_rgb = mix_colors(&px64, colors, baseline, explicit, &mut cdata, true);
    let blank = [blank_rgb[0], blank_rgb[1], blank_rgb[2], 0];
    let mut alpha_memo = AlphaMemo::new(true);
    // Integer mixing: with an integral baseline, `mix_colors` computes on
    // integers that f32 and f64 hold exactly as long as every colour sum is
    // below 2^24 (all its partial sums are smaller), so summing in integers
    // and dividing once in f32 gives the same bytes. Pixels past that, or
    // with no colour mass left after the baseline, take `mix_colors`.
    let int_base = (baseline.fract() == 0.0 && baseline >= 0.0 && baseline <= f64::from(u32::MAX))
        .then_some(baseline as u32);
    const LANE: u64 = (1 << 21) - 1;
    // 255 × mass stays below 2^21 in each lane.
    const LANE_MASS: u64 = LANE / 255 + 1;
    let packed: Vec<u64> = colors
        .iter()
        .map(|c| u64::from(c[0]) | u64::from(c[1]) << 21 | u64::from(c[2]) << 42)
        .collect();
    // A pixel's bytes follow from its counts alone, and sparse tiles repeat
    // a few count vectors (one point of one category, mostly): up to eight
    // categories with counts below 2^(64 / ncat) (at most 2^32: counts are
    // u32) pack into one u64 key of the memo; 0 is never a key, the pixel
    // would be empty.
    let key_bits = if ncat <= 8 {
        (64 / ncat as u32).min(32)
    } else {
        0
    };
    let mut pixel_memo = PaintMemo::new(0);
    let key_of = |px: &[u32]| -> Option<u64> {
        if key_bits == 0 {
            return None;
        }
        let mut key = 0u64;
        for &c in px {
            if u64::from(c) >> key_bits != 0 {
                return None;
            }
            key = key << key_bits | u64::from(c);
        }
        Some(key)
    };
    let mut data = Vec::with_capacity(width * height * 4);
    for px in counts.chunks_exact(ncat) {
        let total = total_of(px);
        if total == 0 {
            data.extend_from_slice(&blank);
            continue;
        }
        let key = key_of(px);
        if let Some(c) = key.and_then(|k| pixel_memo.get(k)) {
            data.extend_from_slice(&c);
            continue;
        }
        let fast = int_base.and_then(|b| {
            // The three colour sums in 21-bit lanes of one u64: one
            // multiply-add per category while the mass keeps each lane
            // below 2^21; heavier pixels sum each channel apart.
            let mut mass = 0u64;
            let mut lanes = 0u64;
            for (&c, &col) in px.iter().zip(&packed) {
                let d = u64::from(c.saturating_sub(b));
                mass += d;
                lanes = lanes.wrapping_add(d.wrapping_mul(col));
            }
            let sum = if mass < LANE_MASS {
                [lanes & LANE, (lanes >> 21) & LANE, lanes >> 42]
            } else {
                let mut sum = [0u64; 3];
                for (&c, col) in px.iter().zip(colors) {
                    let d = u64::from(c.saturating_sub(b));
                    for k in 0..3 {
                        sum[k] += d * u64::from(col[k]);
                    }
                }
                sum
            };
            const EXACT: u64 = 1 << 24;
            (mass > 0 && mass < EXACT && sum.iter().all(|&s| s < EXACT)).then(|| {
                let m = mass as f32;
                // `as u8` saturates, as `f32_to_u8` does; no NaN here.
                sum.map(|s| (s as f32 / m) as u8)
            })
        });
        let rgb = match fast {
            Some(rgb) => rgb,
            None => {
                for (d, &c) in px64.iter_mut().zip(px) {
                    *d = f64::from(c);
                }
                mix_colors(&px64, colors, baseline, explicit, &mut cdata, true)
            }
        };
        let a = match norm {
            Some(nm) => alpha_memo.alpha(total as f64, nm, opts),
            None => 0,
        };
        let rgba = [rgb[0], rgb[1], rgb[2], a];
        if let Some(k) = key {
            pixel_memo.put(k, rgba);
        }
        data.extend_from_slice(&rgba);
    }
    Ok(Rgba {
        width,
        height,
        data,
    })
}

/// One pixel of `_colorize`'s colour mixing, in `float32` like Datashader.
fn mix_colors(
    px: &[f64],
    colors: &[[u8; 3]],
    baseline: f64,
    explicit: bool,
    cdata: &mut [f32],
    integer: bool,
) -> [u8; 3] {
    for (c, &v) in cdata.iter_mut().zip(px) {
        *c = if v.is_nan() {
            0.0
        } else {
            let mut d = v - baseline;
            // Datashader clips below-baseline values only for an explicit
            // baseline on signed data; for unsigned counts it would wrap
            // around, so clip those too.
            if explicit && d < 0.0 {
                d = 0.0;
            }
            d as f32
        };
    }
    let total = numpy::pairwise_sum(cdata, 0.0f32);
    if total == 0.0 {
        // No colour mass: the plain mean of the colours present.
        let mut sum = [0f32; 3];
        let mut present = 0f32;
        for (c, &v) in colors.iter().zip(px) {
            if !v.is_nan() {
                present += 1.0;
                for k in 0..3 {
                    sum[k] += f32::from(c[k]);
                }
            }
        }
        return sum.map(|s| f32_to_u8(s / present));
    }
    // NumPy forms this as float32 `color_data @ RGB`, which NumPy's wheels
    // hand to OpenBLAS `sgemm`; its x86-64 kernels accumulate each output
    // with a fused multiply-add chain over the categories, in order. A
    // correctly rounded sum differs in rare pixels whose ratio lands on an
    // integer (checked against Datashader on 220k float pixels).
    let mut rgb = [0f32; 3];
    if integer && baseline.fract() == 0.0 {
        // Integer weights times 8-bit colours, summed: every intermediate
        // is an integer below 2^53, so f64 arithmetic is exact and rounding
        // it once to f32 gives the fused multiply-add's result, without
        // `fmaf`'s software fallback on CPUs built for without FMA.
        for (c, &d) in colors.iter().zip(cdata.iter()) {
            for k in 0..3 {
                rgb[k] = (f64::from(d) * f64::from(c[k]) + f64::from(rgb[k])) as f32;
            }
        }
    } else {
        for (c, &d) in colors.iter().zip(cdata.iter()) {
            for k in 0..3 {
                rgb[k] = d.mul_add(f32::from(c[k]), rgb[k]);
            }
        }
    }
    rgb.map(|s| f32_to_u8(s / total))
}

/// `float32.astype(uint8)` (NaN becomes 0, as on x86).
fn f32_to_u8(x: f32) -> u8 {
    if x.is_nan() { 0 } else { x as u8 }
}
