//! PNG encoding of shaded tiles.

use png::{BitDepth, ColorType, Compression, Encoder, Filter};

use super::{Rgba, ShadeError};

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

/// Encodes an image as 8-bit RGBA PNG (`Compression::Fast`, the Sub filter).
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
        // alphas: the Sub filter alone beats the adaptive choice of five
        // filters a row on both time (0.37 against 0.49 ms) and size
        // (222 against 233 KB) on a dense 40M count_cat tile.
        enc.set_filter(Filter::Sub);
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

/// The palette (non-opaque entries first, so `tRNS` can stop early) and
/// per-pixel indices, or `None` past 256 colours.
fn palette_of(img: &Rgba) -> Option<(Vec<[u8; 4]>, Vec<u8>)> {
    // At most 256 colours in a 1024-slot open-addressing table keyed by the
    // packed pixel: far cheaper per pixel than a SipHash map.
    const SLOTS: usize = 1024;
    let mut table: Vec<(u32, u16)> = vec![(0, u16::MAX); SLOTS];
    let mut palette: Vec<[u8; 4]> = Vec::new();
    let mut indices = Vec::with_capacity(img.width * img.height);
    // Neighbouring pixels usually repeat; skip the lookup for runs.
    let mut last: Option<(u32, u8)> = None;
    for p in img.data.chunks_exact(4) {
        let key = u32::from_le_bytes([p[0], p[1], p[2], p[3]]);
        let idx = match last {
            Some((c, i)) if c == key => i,
            _ => {
                let mut slot = (key.wrapping_mul(0x9E37_79B1) >> 22) as usize;
                let i = loop {
                    let (k, i) = table[slot];
                    if i == u16::MAX {
                        if palette.len() == 256 {
                            return None;
                        }
                        let i = palette.len() as u8;
                        table[slot] = (key, i as u16);
                        palette.push([p[0], p[1], p[2], p[3]]);
                        break i;
                    }
                    if k == key {
                        break i as u8;
                    }
                    slot = (slot + 1) % SLOTS;
                };
                last = Some((key, i));
                i
            }
        };
        indices.push(idx);
    }
    let mut order: Vec<usize> = (0..palette.len()).collect();
    order.sort_by_key(|&i| palette[i][3] == 255);
    let mut remap = vec![0u8; palette.len()];
    for (new, &old) in order.iter().enumerate() {
        remap[old] = new as u8;
    }
    let sorted = order.iter().map(|&i| palette[i]).collect();
    for i in &mut indices {
        *i = remap[*i as usize];
    }
    Some((sorted, indices))
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
            for (group, d) in row.chunks(per_byte).zip(dst.iter_mut()) {
                // PNG packs the leftmost pixel into the high bits.
                let mut b = 0u8;
                for &i in group {
                    b = (b << bits) | i;
                }
                *d = b << (bits as usize * (per_byte - group.len()));
            }
        }
        std::borrow::Cow::Owned(packed)
    };
    let plte: Vec<u8> = palette.iter().flat_map(|c| [c[0], c[1], c[2]]).collect();
    let trns: Vec<u8> = palette
        .iter()
        .take_while(|c| c[3] != 255)
        .map(|c| c[3])
        .collect();
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
