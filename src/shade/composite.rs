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

/// Components scaled to `[0, 1]` like `composite.extract_scaled`.
#[inline]
fn extract(p: [u8; 4]) -> [f64; 4] {
    p.map(|c| f64::from(c) / 255.0)
}

/// `composite.combine_scaled`: truncate `x * 255`, capped at 255.
#[inline]
fn combine(c: f64) -> u8 {
    // `np.uint32(x)` truncates; `as u32` does the same for x >= 0.
    ((c * 255.0) as u32).min(255) as u8
}

/// Datashader's `over` operator: `src` composited over `dst`, straight alpha.
pub(crate) fn over(src: [u8; 4], dst: [u8; 4]) -> [u8; 4] {
    let [sr, sg, sb, sa] = extract(src);
    let [dr, dg, db, da] = extract(dst);
    let factor = 1.0 - sa;
    let a = sa + da * factor;
    if a == 0.0 {
        return [0; 4];
    }
    let r = (sr * sa + dr * da * factor) / a;
    let g = (sg * sa + dg * da * factor) / a;
    let b = (sb * sa + db * da * factor) / a;
    [combine(r), combine(g), combine(b), combine(a)]
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
    let offsets = mask_offsets(px, shape);
    let mut out = vec![[0u8; 4]; img.width * img.height];
    for y in (0..h).rev() {
        for x in 0..w {
            let i = (y * w + x) as usize * 4;
            let el = [
                img.data[i],
                img.data[i + 1],
                img.data[i + 2],
                img.data[i + 3],
            ];
            if el[3] == 0 {
                continue;
            }
            for &(dy, dx) in &offsets {
                let (ty, tx) = (y + dy, x + dx);
                if ty < 0 || ty >= h || tx < 0 || tx >= w {
                    continue;
                }
                let t = &mut out[(ty * w + tx) as usize];
                *t = if *t == [0; 4] { el } else { over(el, *t) };
            }
        }
    }
    Rgba {
        width: img.width,
        height: img.height,
        data: out.into_iter().flatten().collect(),
    }
}

/// Datashader's `_rgb_density`: the fraction of non-transparent pixels that
/// have another non-transparent pixel within `px` (Chebyshev distance);
/// infinite for an empty image.
fn density(img: &Rgba, px: usize) -> f64 {
    let (w, h) = (img.width, img.height);
    // Summed-area table of the occupancy: each window count in O(1) instead
    // of the O(px²) scan, same integer result.
    let mut sat = vec![0u32; (w + 1) * (h + 1)];
    for y in 0..h {
        let mut row = 0u32;
        for x in 0..w {
            row += u32::from(img.data[(y * w + x) * 4 + 3] != 0);
            sat[(y + 1) * (w + 1) + x + 1] = sat[y * (w + 1) + x + 1] + row;
        }
    }
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
    let mut chosen = 0;
    for px in 1..=max_px {
        chosen = px;
        if density(img, px as usize * 2) > threshold {
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
