//! PNG and WebP (lossless) encoding of shaded tiles.

use png::{BitDepth, ColorType, Compression, Encoder, Filter};

use super::{Rgba, ShadeError};

/// The lossless image formats a tile is written in. Both decode to exactly
/// the shaded RGBA bytes, transparent pixels included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ImageFormat {
    /// PNG: indexed when the tile has at most 256 colours, else RGBA.
    #[default]
    Png,
    /// WebP lossless (VP8L).
    Webp,
}

impl ImageFormat {
    /// The format named by a file extension, exactly as
    /// [`ImageFormat::extension`] writes it (`png`, `webp`; lower case, so
    /// a tile has one URL).
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext {
            "png" => Some(Self::Png),
            "webp" => Some(Self::Webp),
            _ => None,
        }
    }

    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Webp => "webp",
        }
    }

    /// The media type of an HTTP response.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Webp => "image/webp",
        }
    }

    /// Encodes `img` in this format.
    pub fn encode(self, img: &Rgba) -> Result<Vec<u8>, ShadeError> {
        match self {
            Self::Png => encode_png(img),
            Self::Webp => encode_webp(img),
        }
    }
}

/// Encodes an image as lossless WebP (VP8L, with the subtract-green and
/// predictor transforms): no colour is changed, and transparent pixels keep
/// their RGB bytes, so a decoder recovers the exact RGBA image.
pub fn encode_webp(img: &Rgba) -> Result<Vec<u8>, ShadeError> {
    check(img)?;
    let (w, h) = (dim(img.width)?, dim(img.height)?);
    // VP8L stores each side in 14 bits; the encoder's own check returns an
    // error, but its size assertion panics, so both are checked here first.
    if w > 16384 || h > 16384 {
        return Err(ShadeError::TooLargeForWebp(img.width, img.height));
    }
    let mut out = Vec::with_capacity(img.data.len() / 4 + 1024);
    image_webp::WebPEncoder::new(&mut out).encode(&img.data, w, h, image_webp::ColorType::Rgba8)?;
    Ok(out)
}

/// Encodes an image as PNG, choosing the smaller representation cheaply:
/// an indexed PNG (palette + `tRNS`, 1/2/4/8-bit) when it has at most 256
/// distinct RGBA values — typical for shaded tiles — else 8-bit RGBA.
/// Always uses `Compression::Fast`: the default level costs 10-40x the
/// time for a few percent of size. Decoders expanding palettes (and
/// `tRNS`) recover the exact RGBA bytes.
pub fn encode_png(img: &Rgba) -> Result<Vec<u8>, ShadeError> {
    check(img)?;
    match palette_of(img) {
        Some((palette, indices)) => encode_indexed(img, &palette, &indices),
        None => encode_png_rgba(img),
    }
}

/// Encodes an image as 8-bit RGBA PNG (`Compression::Fast`; the Sub filter
/// when alphas vary, else none).
pub fn encode_png_rgba(img: &Rgba) -> Result<Vec<u8>, ShadeError> {
    check(img)?;
    // Room for an incompressible tile: no reallocation while writing.
    let mut out = Vec::with_capacity(img.data.len() + img.height + 1024);
    {
        let mut enc = Encoder::new(&mut out, dim(img.width)?, dim(img.height)?);
        enc.set_color(ColorType::Rgba);
        enc.set_depth(BitDepth::Eight);
        enc.set_compression(Compression::Fast);
        // Tiles with more than 256 colours are category mixes at many
        // alphas, or scalar tiles (one alpha over the empty pixels) whose
        // values run through a colormap. Timing each filter on the same
        // tiles of 10M towers (median of 41, 2026-12-03), the Sub
        // filter is the best for the mixes (z8 count_cat: 0.28 ms, 162 KB,
        // against 0.40 ms, 175 KB adaptive and 0.44 ms, 262 KB unfiltered),
        // and no filter the best for scalar tiles, faster and smaller
        // (z4 count 0.40 ms, 90 KB against Sub's 0.45 ms, 104 KB; z10 mean
        // 0.44 ms, 59 KB against 0.50 ms, 85 KB): their neighbouring
        // colours repeat, which deflate finds unfiltered.
        let mixes = img.data.chunks_exact(4).any(|p| p[3] != 0 && p[3] != 255);
        enc.set_filter(if mixes { Filter::Sub } else { Filter::NoFilter });
        let mut writer = enc.write_header()?;
        writer.write_image_data(&img.data)?;
        writer.finish()?;
    }
    Ok(out)
}

fn check(img: &Rgba) -> Result<(), ShadeError> {
    let expected = img.width * img.height * 4;
    if img.data.len() != expected {
        return Err(ShadeError::ShapeMismatch {
            expected,
            got: img.data.len(),
        });
    }
    if expected == 0 {
        return Err(ShadeError::EmptyImage(img.width, img.height));
    }
    Ok(())
}

fn dim(n: usize) -> Result<u32, ShadeError> {
    u32::try_from(n).map_err(|_| ShadeError::ShapeMismatch {
        expected: u32::MAX as usize,
        got: n,
    })
}

/// The palette, in order of first appearance, and per-pixel indices, or
/// `None` past 256 colours.
fn palette_of(img: &Rgba) -> Option<(Vec<[u8; 4]>, Vec<u8>)> {
    // At most 256 colours in a 1024-slot open-addressing table keyed by the
    // packed pixel: far cheaper per pixel than a SipHash map.
    const SLOTS: usize = 1024;
    let mut table: Vec<(u32, u16)> = vec![(0, u16::MAX); SLOTS];
    let mut palette: Vec<[u8; 4]> = Vec::new();
    let mut indices = vec![0u8; img.width * img.height];
    let mut lookup = |key: u32| -> Option<u8> {
        let mut slot = (key.wrapping_mul(0x9E37_79B1) >> 22) as usize;
        loop {
            let (k, i) = table[slot];
            if i == u16::MAX {
                if palette.len() == 256 {
                    return None;
                }
                let i = palette.len() as u8;
                table[slot] = (key, u16::from(i));
                palette.push(key.to_le_bytes());
                return Some(i);
            }
            if k == key {
                return Some(i as u8);
            }
            slot = (slot + 1) % SLOTS;
        }
    };
    // Neighbouring pixels usually repeat (most of a sparse tile is one
    // empty colour): eight pixels equal to the last one are one compare of
    // 32 bytes, and any other pixel equal to its left neighbour skips the
    // lookup.
    let (mut last_key, mut last_idx) = (None::<u32>, 0u8);
    // Two 16-byte loads straight from the image (an array built on the
    // stack first would stall on store forwarding, most of this loop's time
    // on a sparse tile).
    let halves = |b: &[u8]| -> (u128, u128) {
        let (lo, hi) = b.split_at(16);
        (
            u128::from_le_bytes(lo.try_into().expect("16")),
            u128::from_le_bytes(hi.try_into().expect("16")),
        )
    };
    let blocks = img.data.chunks_exact(32).zip(indices.chunks_exact_mut(8));
    let mut done = 0;
    for (px, out) in blocks {
        if let Some(k) = last_key {
            let four = u128::from(k) * 0x0000_0001_0000_0001_0000_0001_0000_0001;
            if halves(px) == (four, four) {
                out.fill(last_idx);
                done += 8;
                continue;
            }
        }
        for (p, o) in px.chunks_exact(4).zip(out.iter_mut()) {
            let key = u32::from_le_bytes([p[0], p[1], p[2], p[3]]);
            if last_key != Some(key) {
                last_idx = lookup(key)?;
                last_key = Some(key);
            }
            *o = last_idx;
        }
        done += 8;
    }
    for (p, o) in img.data[done * 4..]
        .chunks_exact(4)
        .zip(indices[done..].iter_mut())
    {
        let key = u32::from_le_bytes([p[0], p[1], p[2], p[3]]);
        if last_key != Some(key) {
            last_idx = lookup(key)?;
            last_key = Some(key);
        }
        *o = last_idx;
    }
    Some((palette, indices))
}

fn encode_indexed(img: &Rgba, palette: &[[u8; 4]], indices: &[u8]) -> Result<Vec<u8>, ShadeError> {
    let bits: u8 = match palette.len() {
        0..=2 => 1,
        3..=4 => 2,
        5..=16 => 4,
        _ => 8,
    };
    let per_byte = 8 / bits as usize;
    let row_bytes = img.width.div_ceil(per_byte);
    // 8-bit indices are the image data as they are; smaller ones are packed
    // a byte at a time (no division by the runtime `per_byte` per pixel).
    let packed = if bits == 8 {
        std::borrow::Cow::Borrowed(indices)
    } else {
        let mut packed = vec![0u8; row_bytes * img.height];
        for (row, dst) in indices
            .chunks_exact(img.width)
            .zip(packed.chunks_exact_mut(row_bytes))
        {
            match bits {
                1 => pack_row::<1>(row, dst),
                2 => pack_row::<2>(row, dst),
                _ => pack_row::<4>(row, dst),
            }
        }
        std::borrow::Cow::Owned(packed)
    };
    let plte: Vec<u8> = palette.iter().flat_map(|c| [c[0], c[1], c[2]]).collect();
    // `tRNS` runs up to the last entry that is not opaque (the rest
    // default to opaque); entries stay in order of first appearance, which
    // for shaded tiles puts the transparent empty colour first.
    let trns_len = palette
        .iter()
        .rposition(|c| c[3] != 255)
        .map_or(0, |i| i + 1);
    let trns: Vec<u8> = palette[..trns_len].iter().map(|c| c[3]).collect();
    let depth = match bits {
        1 => BitDepth::One,
        2 => BitDepth::Two,
        4 => BitDepth::Four,
        _ => BitDepth::Eight,
    };
    let mut out = Vec::new();
    {
        let mut enc = Encoder::new(&mut out, dim(img.width)?, dim(img.height)?);
        enc.set_color(ColorType::Indexed);
        enc.set_depth(depth);
        enc.set_palette(plte);
        if !trns.is_empty() {
            enc.set_trns(trns);
        }
        enc.set_compression(Compression::Fast);
        // Palette indices are not a continuous signal; filtering rarely
        // helps them (the PNG spec's own recommendation).
        enc.set_filter(Filter::NoFilter);
        let mut writer = enc.write_header()?;
        writer.write_image_data(&packed)?;
        writer.finish()?;
    }
    Ok(out)
}

/// Packs a row of `BITS`-bit palette indices, the leftmost pixel in the high
/// bits, as PNG does; a compile-time width lets each byte's group unroll.
fn pack_row<const BITS: usize>(row: &[u8], dst: &mut [u8]) {
    let per_byte = 8 / BITS;
    for (group, d) in row.chunks(per_byte).zip(dst.iter_mut()) {
        let mut b = 0u8;
        for &i in group {
            b = (b << BITS) | i;
        }
        *d = b << (BITS * (per_byte - group.len()));
    }
}
