//! Datashader's image compositing: `over`, `spread`, `dynspread` and
//! `set_background`.

use super::{Rgba, ShadeError};

/// The footprint [`spread`] stamps around each pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shape {
    /// Offsets with `sqrt(dx² + dy²) <= px + 0.5` (Datashader's default).
    #[default]
    Circle,
    /// The full `(2px + 1)²` square.
    Square,
}

impl Shape {
    /// Every value's name, as `FromStr` takes them.
    pub const NAMES: [&'static str; 2] = ["circle", "square"];
}

impl std::str::FromStr for Shape {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "circle" => Ok(Shape::Circle),
            "square" => Ok(Shape::Square),
            _ => Err(format!(
                "unknown spread shape {s:?} (expected circle or square)"
            )),
        }
    }
}

/// Datashader's `_circle_mask` / `_square_mask` as the list of `(dy, dx)`
/// offsets where the mask is true.
fn mask_offsets(px: u32, shape: Shape) -> Vec<(isize, isize)> {
    let r = px as isize;
    let mut out = Vec::new();
    for dy in -r..=r {
        for dx in -r..=r {
            let inside = match shape {
                Shape::Square => true,
                // The mask uses int32 squares and float64 sqrt.
                Shape::Circle => (((dx * dx + dy * dy) as f64).sqrt()) <= r as f64 + 0.5,
            };
            if inside {
                out.push((dy, dx));
            }
        }
    }
    out
}

/// `c / 255` for every byte, as `composite.extract_scaled` divides: a
/// look-up instead of four divisions each time a pixel is composited.
static SCALED: [f64; 256] = {
    let mut t = [0.0; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = c as f64 / 255.0;
        c += 1;
    }
    t
};

/// Components scaled to `[0, 1]` like `composite.extract_scaled`.
#[inline]
fn extract(p: [u8; 4]) -> [f64; 4] {
    p.map(|c| SCALED[c as usize])
}

/// `composite.combine_scaled`: truncate `x * 255`, capped at 255.
#[inline]
fn combine(c: f64) -> u8 {
    // `np.uint32(x)` truncates; `as u32` does the same for x >= 0.
    ((c * 255.0) as u32).min(255) as u8
}

/// Datashader's `over` operator: `src` composited over `dst`, straight alpha.
pub(crate) fn over(src: [u8; 4], dst: [u8; 4]) -> [u8; 4] {
    Over::new(src).over(dst)
}

/// Spreads every non-transparent pixel over a `px`-radius footprint,
/// compositing overlaps with `over`, like Datashader's `spread(img, px,
/// shape)` on an `Image`. `px == 0` returns a copy.
///
/// Matches Datashader's kernel: only pixels with alpha > 0 are sources;
/// a target still all-zero takes the source as is, otherwise the source
/// goes over it; sources are visited in Datashader's row order (bottom row
/// first for our top-down rows), left to right.
pub fn spread(img: &Rgba, px: u32, shape: Shape) -> Rgba {
    if px == 0 {
        return img.clone();
    }
    let (w, h) = (img.width as isize, img.height as isize);
    let r = px as isize;
    let offsets = mask_offsets(px, shape);
    // The footprint as index steps, for sources whose footprint lies inside
    // the image (all but a `px`-wide border): no bounds test per target.
    let steps: Vec<isize> = offsets.iter().map(|&(dy, dx)| dy * w + dx).collect();
    let mut out = vec![[0u8; 4]; img.width * img.height];
    for y in (0..h).rev() {
        let row = &img.data[(y * w) as usize * 4..((y + 1) * w) as usize * 4];
        for (x, p) in row.chunks_exact(4).enumerate() {
            if p[3] == 0 {
                continue;
            }
            let el = [p[0], p[1], p[2], p[3]];
            let x = x as isize;
            let at = y * w + x;
            let interior = y >= r && y + r < h && x >= r && x + r < w;
            // An opaque source `over` anything is the source itself (factor
            // 0, alpha 1, and `c / 255 * 255` truncates back to `c` for
            // every byte; a test checks all of them), so its stamp is a
            // plain write; others composite over a non-empty target.
            let src = (el[3] != 255).then(|| Over::new(el));
            let stamp = |t: &mut [u8; 4]| {
                *t = match &src {
                    Some(s) if *t != [0; 4] => s.over(*t),
                    _ => el,
                };
            };
            if interior {
                for &d in &steps {
                    stamp(&mut out[(at + d) as usize]);
                }
            } else {
                for &(dy, dx) in &offsets {
                    let (ty, tx) = (y + dy, x + dx);
                    if (0..h).contains(&ty) && (0..w).contains(&tx) {
                        stamp(&mut out[(ty * w + tx) as usize]);
                    }
                }
            }
        }
    }
    Rgba {
        width: img.width,
        height: img.height,
        data: out.into_flattened(),
    }
}

/// Datashader's `over` with its source's terms computed once, for a source
/// stamped over many targets ([`over`] is one such stamp). (Memoising the
/// last target made each stamp wait for the one before; without it, a
/// source's stamps overlap.)
struct Over {
    sa: f64,
    factor: f64,
    /// `sr * sa`, `sg * sa`, `sb * sa`.
    premul: [f64; 3],
}

impl Over {
    fn new(src: [u8; 4]) -> Self {
        let [sr, sg, sb, sa] = extract(src);
        Over {
            sa,
            factor: 1.0 - sa,
            premul: [sr * sa, sg * sa, sb * sa],
        }
    }

    #[inline]
    fn over(&self, dst: [u8; 4]) -> [u8; 4] {
        let [dr, dg, db, da] = extract(dst);
        let a = self.sa + da * self.factor;
        if a == 0.0 {
            return [0; 4];
        }
        let [pr, pg, pb] = self.premul;
        [
            combine((pr + dr * da * self.factor) / a),
            combine((pg + dg * da * self.factor) / a),
            combine((pb + db * da * self.factor) / a),
            combine(a),
        ]
    }
}

/// Summed-area table of an image's occupancy (alpha > 0): each window's
/// count in O(1) instead of an O(px²) scan, the same integers. It does not
/// depend on the radius, so [`dynspread_radius`] builds it once for all the
/// radii it tries.
struct Occupancy<'a> {
    img: &'a Rgba,
    sat: Vec<u32>,
}

impl<'a> Occupancy<'a> {
    fn of(img: &'a Rgba) -> Occupancy<'a> {
        let (w, h) = (img.width, img.height);
        let mut sat = vec![0u32; (w + 1) * (h + 1)];
        for y in 0..h {
            let mut row = 0u32;
            for x in 0..w {
                row += u32::from(img.data[(y * w + x) * 4 + 3] != 0);
                sat[(y + 1) * (w + 1) + x + 1] = sat[y * (w + 1) + x + 1] + row;
            }
        }
        Occupancy { img, sat }
    }

    /// Datashader's `_rgb_density`: the fraction of non-transparent pixels
    /// that have another non-transparent pixel within `px` (Chebyshev
    /// distance); infinite for an empty image.
    fn density(&self, px: usize) -> f64 {
        let (img, sat) = (self.img, &self.sat);
        let (w, h) = (img.width, img.height);
        let (mut cnt, mut has_neighbors) = (0u64, 0u64);
        for y in 0..h {
            for x in 0..w {
                if img.data[(y * w + x) * 4 + 3] == 0 {
                    continue;
                }
                cnt += 1;
                let (y0, y1) = (y.saturating_sub(px), (y + px + 1).min(h));
                let (x0, x1) = (x.saturating_sub(px), (x + px + 1).min(w));
                let n = sat[y1 * (w + 1) + x1] + sat[y0 * (w + 1) + x0]
                    - sat[y0 * (w + 1) + x1]
                    - sat[y1 * (w + 1) + x0];
                // The window includes the pixel itself.
                if n > 1 {
                    has_neighbors += 1;
                }
            }
        }
        if cnt == 0 {
            f64::INFINITY
        } else {
            has_neighbors as f64 / cnt as f64
        }
    }
}

/// Datashader's `dynspread`: spreads by the largest `px <= max_px` such that
/// for every `p` in `1..=px` the density at radius `2p` is at most
/// `threshold` (the search stops at the first `p` whose density exceeds it
/// and uses `p - 1`). An empty image is returned unchanged.
pub fn dynspread(
    img: &Rgba,
    threshold: f64,
    max_px: u32,
    shape: Shape,
) -> Result<Rgba, ShadeError> {
    let chosen = dynspread_radius(img, threshold, max_px)?;
    Ok(if chosen >= 1 {
        spread(img, chosen, shape)
    } else {
        img.clone()
    })
}

/// The radius [`dynspread`] spreads `img` by: the largest `px <= max_px`
/// before the image's density passes `threshold` (Datashader's rule).
pub fn dynspread_radius(img: &Rgba, threshold: f64, max_px: u32) -> Result<u32, ShadeError> {
    if !(0.0..=1.0).contains(&threshold) {
        return Err(ShadeError::InvalidThreshold(threshold));
    }
    if max_px == 0 {
        return Ok(0);
    }
    let occupancy = Occupancy::of(img);
    let mut chosen = 0;
    for px in 1..=max_px {
        chosen = px;
        if occupancy.density(px as usize * 2) > threshold {
            chosen = px - 1;
            break;
        }
    }
    Ok(chosen)
}

/// The `width` × `height` window of `img` whose top-left pixel is
/// `(x0, y0)`; the window must lie inside the image.
pub fn crop(img: &Rgba, x0: usize, y0: usize, width: usize, height: usize) -> Rgba {
    assert!(x0 + width <= img.width && y0 + height <= img.height);
    let mut data = Vec::with_capacity(width * height * 4);
    for y in y0..y0 + height {
        let start = (y * img.width + x0) * 4;
        data.extend_from_slice(&img.data[start..start + width * 4]);
    }
    Rgba {
        width,
        height,
        data,
    }
}

/// Datashader's `set_background`: composites the image `over` an opaque
/// colour, in place.
pub fn set_background(img: &mut Rgba, color: [u8; 3]) {
    let bg = [color[0], color[1], color[2], 255];
    for p in img.data.chunks_exact_mut(4) {
        let o = over([p[0], p[1], p[2], p[3]], bg);
        p.copy_from_slice(&o);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_scaled_table_divides_as_at_run_time() {
        for c in 0..=255u8 {
            let run_time = f64::from(std::hint::black_box(c)) / 255.0;
            assert_eq!(super::SCALED[c as usize].to_bits(), run_time.to_bits());
        }
    }
}
