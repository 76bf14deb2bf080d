//! Web Mercator projection, the quantized world grid, XYZ tile math and the
//! Hilbert curve that orders packed rows.
//!
//! Positions are stored as `u32` pairs on a 2^32 × 2^32 grid over the Web
//! Mercator square (≈ 9.3 mm per step at the equator). `qx` grows eastwards
//! from the antimeridian and `qy` grows *southwards* from the top edge, so the
//! top `z` bits of `(qx, qy)` are exactly the XYZ tile column and row at zoom
//! `z`, and the next 8 bits are the pixel inside a 256-pixel tile.

/// WGS 84 semi-major axis, the Web Mercator sphere radius in metres.
pub const EARTH_RADIUS: f64 = 6_378_137.0;
/// Half the width of the Web Mercator square in metres (π·R).
pub const HALF_WORLD: f64 = std::f64::consts::PI * EARTH_RADIUS;
/// Latitude at which the Web Mercator square ends (degrees).
pub const MAX_LAT: f64 = 85.051_128_779_806_59;
/// Bits per quantized coordinate.
pub const QBITS: u32 = 32;
/// Order of the Hilbert curve over the quantized grid.
pub const HILBERT_ORDER: u8 = 32;
/// Metres per quantization step.
pub const Q_STEP: f64 = 2.0 * HALF_WORLD / 4_294_967_296.0;
/// Highest zoom whose tiles still contain whole pixels of the quantized grid.
/// Name of the quantized x column of packed data (ingest writes it, the
/// store reads it).
pub const QX: &str = "_qx";
/// Name of the quantized y column.
pub const QY: &str = "_qy";

pub const MAX_ZOOM: u8 = 30;

/// Longitude/latitude (degrees) to Web Mercator metres, as Datashader's
/// `lnglat_to_meters` computes it.
#[inline]
pub fn lnglat_to_meters(lon: f64, lat: f64) -> (f64, f64) {
    let x = lon * HALF_WORLD / 180.0;
    let y = EARTH_RADIUS * ((90.0 + lat) * std::f64::consts::PI / 360.0).tan().ln();
    (x, y)
}

/// Web Mercator metres back to longitude/latitude (degrees).
#[inline]
pub fn meters_to_lnglat(x: f64, y: f64) -> (f64, f64) {
    let lon = x / HALF_WORLD * 180.0;
    let lat = (2.0 * (y / EARTH_RADIUS).exp().atan() - std::f64::consts::FRAC_PI_2).to_degrees();
    (lon, lat)
}

/// Whether a longitude/latitude pair can be placed on the Web Mercator square.
/// NaN, infinities, |lon| > 180 and |lat| > 85.0511° are rejected.
#[inline]
pub fn lnglat_in_range(lon: f64, lat: f64) -> bool {
    (-180.0..=180.0).contains(&lon) && (-MAX_LAT..=MAX_LAT).contains(&lat)
}

/// Whether Web Mercator metres lie on the square.
#[inline]
pub fn meters_in_range(x: f64, y: f64) -> bool {
    (-HALF_WORLD..=HALF_WORLD).contains(&x) && (-HALF_WORLD..=HALF_WORLD).contains(&y)
}

/// Quantize Web Mercator metres to the world grid. The caller checks
/// [`meters_in_range`]; the east and south edges clamp to the last cell.
#[inline]
pub fn quantize(x: f64, y: f64) -> (u32, u32) {
    let fx = ((x + HALF_WORLD) / Q_STEP).floor();
    let fy = ((HALF_WORLD - y) / Q_STEP).floor();
    (
        fx.clamp(0.0, u32::MAX as f64) as u32,
        fy.clamp(0.0, u32::MAX as f64) as u32,
    )
}

/// Centre of a quantized cell in Web Mercator metres.
#[inline]
pub fn dequantize(qx: u32, qy: u32) -> (f64, f64) {
    (
        (qx as f64 + 0.5) * Q_STEP - HALF_WORLD,
        HALF_WORLD - (qy as f64 + 0.5) * Q_STEP,
    )
}

/// Hilbert key of a quantized position (order 32, 64-bit key).
#[inline]
pub fn hilbert(qx: u32, qy: u32) -> u64 {
    fast_hilbert::xy2h(qx, qy, HILBERT_ORDER)
}

/// The quantized point whose [`hilbert`] key is `key` (its inverse).
pub fn hilbert_point(key: u64) -> (u32, u32) {
    fast_hilbert::h2xy(key, HILBERT_ORDER)
}

/// An XYZ tile address (`y` counted from the north, as slippy maps do).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TileId {
    /// Zoom level, 0..=[`MAX_ZOOM`].
    pub z: u8,
    /// Column, 0..2^z.
    pub x: u32,
    /// Row from the top, 0..2^z.
    pub y: u32,
}

/// Why a tile address is invalid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TileError {
    /// Zoom above [`MAX_ZOOM`].
    #[error("zoom {0} is above the maximum of {MAX_ZOOM}")]
    Zoom(u32),
    /// Column or row outside 0..2^z.
    #[error("tile {x}/{y} is outside 0..{n} at zoom {z}")]
    OutOfRange {
        /// Zoom.
        z: u32,
        /// Column.
        x: u64,
        /// Row.
        y: u64,
        /// Tiles per side.
        n: u64,
    },
}

impl TileId {
    /// Validate and build a tile address.
    pub fn new(z: u32, x: u64, y: u64) -> Result<Self, TileError> {
        if z > MAX_ZOOM as u32 {
            return Err(TileError::Zoom(z));
        }
        let n = 1u64 << z;
        if x >= n || y >= n {
            return Err(TileError::OutOfRange { z, x, y, n });
        }
        Ok(TileId {
            z: z as u8,
            x: x as u32,
            y: y as u32,
        })
    }

    /// Bits of the quantized grid below this tile's level.
    #[inline]
    pub fn shift(&self) -> u32 {
        QBITS - self.z as u32
    }

    /// Quantized extent `[x0, x1) × [y0, y1)` as u64 (the upper bound may be 2^32).
    pub fn qbounds(&self) -> (u64, u64, u64, u64) {
        let s = self.shift();
        let x0 = (self.x as u64) << s;
        let y0 = (self.y as u64) << s;
        (x0, x0 + (1u64 << s), y0, y0 + (1u64 << s))
    }

    /// The inclusive Hilbert key range holding every point of the tile: a
    /// quadtree cell is one contiguous run of the curve.
    pub fn key_range(&self) -> (u64, u64) {
        cell_key_range(self.z as u32, self.x, self.y)
    }

    /// Extent in Web Mercator metres: `(xmin, ymin, xmax, ymax)`.
    pub fn bounds_meters(&self) -> (f64, f64, f64, f64) {
        let n = (1u64 << self.z) as f64;
        let size = 2.0 * HALF_WORLD / n;
        let xmin = -HALF_WORLD + self.x as f64 * size;
        let ymax = HALF_WORLD - self.y as f64 * size;
        (xmin, ymax - size, xmin + size, ymax)
    }

    /// Extent in degrees: `(west, south, east, north)`.
    pub fn bounds_lnglat(&self) -> (f64, f64, f64, f64) {
        let (x0, y0, x1, y1) = self.bounds_meters();
        let (w, s) = meters_to_lnglat(x0, y0);
        let (e, n) = meters_to_lnglat(x1, y1);
        (w, s, e, n)
    }
}

/// Inclusive Hilbert key range of the quadtree cell `(cx, cy)` at `level`.
pub fn cell_key_range(level: u32, cx: u32, cy: u32) -> (u64, u64) {
    if level == 0 {
        return (0, u64::MAX);
    }
    let s = QBITS - level;
    let (qx, qy) = if s >= 32 {
        (0, 0)
    } else {
        ((cx as u64) << s, (cy as u64) << s)
    };
    let key = hilbert(qx as u32, qy as u32);
    let low_bits = 2 * s;
    if low_bits >= 64 {
        return (0, u64::MAX);
    }
    let lo = (key >> low_bits) << low_bits;
    (lo, lo | ((1u64 << low_bits) - 1))
}

/// A rectangle in Web Mercator metres, as Datashader's `x_range`/`y_range`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MercatorBox {
    /// West edge (metres).
    pub xmin: f64,
    /// South edge (metres).
    pub ymin: f64,
    /// East edge (metres).
    pub xmax: f64,
    /// North edge (metres).
    pub ymax: f64,
}

impl MercatorBox {
    /// From a lon/lat bounding box (degrees); latitudes are clamped to the
    /// Web Mercator square.
    pub fn from_lnglat(west: f64, south: f64, east: f64, north: f64) -> Self {
        let (xmin, ymin) = lnglat_to_meters(west, south.clamp(-MAX_LAT, MAX_LAT));
        let (xmax, ymax) = lnglat_to_meters(east, north.clamp(-MAX_LAT, MAX_LAT));
        MercatorBox {
            xmin,
            ymin,
            xmax,
            ymax,
        }
    }

    /// Whether the box is finite and has positive width and height.
    pub fn is_valid(&self) -> bool {
        [self.xmin, self.ymin, self.xmax, self.ymax]
            .iter()
            .all(|v| v.is_finite())
            && self.xmax > self.xmin
            && self.ymax > self.ymin
    }

    /// Quantized extent, inclusive, clipped to the world: `(qx0, qx1, qy0, qy1)`.
    /// Returns `None` when the box misses the world square.
    pub fn qbounds(&self) -> Option<(u32, u32, u32, u32)> {
        if self.xmax < -HALF_WORLD
            || self.xmin > HALF_WORLD
            || self.ymax < -HALF_WORLD
            || self.ymin > HALF_WORLD
        {
            return None;
        }
        let (qx0, qy1) = quantize(self.xmin.max(-HALF_WORLD), self.ymin.max(-HALF_WORLD));
        let (qx1, qy0) = quantize(self.xmax.min(HALF_WORLD), self.ymax.min(HALF_WORLD));
        Some((qx0, qx1, qy0, qy1))
    }
}

impl MercatorBox {
    /// The merged Hilbert key ranges of at most `max_cells` quadtree cells
    /// covering the box (none when it misses the world square).
    pub fn key_ranges(&self, max_cells: usize) -> Vec<(u64, u64)> {
        match self.qbounds() {
            Some((x0, x1, y0, y1)) => cover_key_ranges(x0, x1, y0, y1, max_cells),
            None => Vec::new(),
        }
    }
}

/// Cover an inclusive quantized rectangle with quadtree cells, returning their
/// merged, sorted Hilbert key ranges. `max_cells` bounds the work: coarser
/// cells are used (reading a few extra rows, filtered out later by the binner).
pub fn cover_key_ranges(
    qx0: u32,
    qx1: u32,
    qy0: u32,
    qy1: u32,
    max_cells: usize,
) -> Vec<(u64, u64)> {
    // An inverted rectangle is empty; swapping would silently widen it.
    if qx0 > qx1 || qy0 > qy1 {
        return Vec::new();
    }
    // Pick the deepest level at which the rectangle touches at most
    // max_cells cells. At level 32 a whole-world box touches 2^32 × 2^32
    // cells, which overflows u64, so the product is taken in u128; level 0
    // (one cell) always fits, so the loop below is bounded by max_cells.
    let budget = max_cells.max(1) as u128;
    let mut level = 0u32;
    for l in (0..=QBITS).rev() {
        let s = QBITS - l;
        let nx = (((qx1 as u64) >> s) - ((qx0 as u64) >> s) + 1) as u128;
        let ny = (((qy1 as u64) >> s) - ((qy0 as u64) >> s) + 1) as u128;
        if nx * ny <= budget {
            level = l;
            break;
        }
    }
    let s = QBITS - level;
    let (cx0, cx1) = ((qx0 as u64) >> s, (qx1 as u64) >> s);
    let (cy0, cy1) = ((qy0 as u64) >> s, (qy1 as u64) >> s);
    let mut ranges = Vec::new();
    for cy in cy0..=cy1 {
        for cx in cx0..=cx1 {
            ranges.push(cell_key_range(level, cx as u32, cy as u32));
        }
    }
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (lo, hi) in ranges {
        match merged.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_round_trips() {
        for &(lon, lat) in &[(0.0, 0.0), (-74.0, 40.7), (151.2, -33.9), (179.9, 85.0)] {
            let (x, y) = lnglat_to_meters(lon, lat);
            let (lo, la) = meters_to_lnglat(x, y);
            assert!((lo - lon).abs() < 1e-9 && (la - lat).abs() < 1e-9);
        }
        let (x, y) = lnglat_to_meters(180.0, MAX_LAT);
        assert!((x - HALF_WORLD).abs() < 1e-6 && (y - HALF_WORLD).abs() < 1e-3);
    }

    #[test]
    fn tile_bits_are_quantized_prefix() {
        let (x, y) = lnglat_to_meters(-73.98, 40.75);
        let (qx, qy) = quantize(x, y);
        // New York is in tile 12/1206/1539.
        assert_eq!((qx >> 20, qy >> 20), (1206, 1539));
        let t = TileId::new(12, 1206, 1539).unwrap();
        let (lo, hi) = t.key_range();
        let k = hilbert(qx, qy);
        assert!(lo <= k && k <= hi);
        assert_eq!(hi - lo + 1, 1u64 << 40);
    }

    #[test]
    fn tile_validation() {
        assert!(TileId::new(31, 0, 0).is_err());
        assert!(TileId::new(2, 4, 0).is_err());
        assert!(TileId::new(2, 3, 3).is_ok());
        assert_eq!(cell_key_range(0, 0, 0), (0, u64::MAX));
    }

    #[test]
    fn cover_of_the_whole_world_is_bounded() {
        // Once wrapped to 0 cells at level 32 and looped over 2^64 cells.
        let r = cover_key_ranges(0, u32::MAX, 0, u32::MAX, 64);
        assert_eq!(r, vec![(0, u64::MAX)]);
        assert!(cover_key_ranges(5, 4, 0, 1, 64).is_empty());
    }

    proptest::proptest! {
        #[test]
        fn cover_is_bounded_and_complete(
            a in proptest::prelude::any::<u32>(),
            b in proptest::prelude::any::<u32>(),
            c in proptest::prelude::any::<u32>(),
            d in proptest::prelude::any::<u32>(),
            max_cells in 1usize..256,
            fx in 0.0f64..=1.0,
            fy in 0.0f64..=1.0,
        ) {
            let (qx0, qx1) = (a.min(b), a.max(b));
            let (qy0, qy1) = (c.min(d), c.max(d));
            let ranges = cover_key_ranges(qx0, qx1, qy0, qy1, max_cells);
            proptest::prop_assert!(!ranges.is_empty() && ranges.len() <= max_cells);
            // Sorted and disjoint.
            for w in ranges.windows(2) {
                proptest::prop_assert!(w[0].1 < w[1].0);
            }
            let qx = qx0 + ((qx1 - qx0) as f64 * fx) as u32;
            let qy = qy0 + ((qy1 - qy0) as f64 * fy) as u32;
            for (x, y) in [(qx0, qy0), (qx1, qy1), (qx0, qy1), (qx1, qy0), (qx, qy)] {
                let k = hilbert(x, y);
                proptest::prop_assert!(ranges.iter().any(|&(lo, hi)| lo <= k && k <= hi));
            }
        }
    }

    #[test]
    fn cover_contains_every_point_in_box() {
        let (qx0, qx1, qy0, qy1) = (1_000_000u32, 90_000_000, 5_000, 77_777_777);
        let ranges = cover_key_ranges(qx0, qx1, qy0, qy1, 16);
        assert!(ranges.len() <= 16);
        for &(qx, qy) in &[
            (qx0, qy0),
            (qx1, qy1),
            (qx0, qy1),
            (qx1, qy0),
            (50_000_000, 40_000_000),
        ] {
            let k = hilbert(qx, qy);
            assert!(ranges.iter().any(|&(lo, hi)| lo <= k && k <= hi));
        }
    }
}
