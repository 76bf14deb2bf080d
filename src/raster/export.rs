//! Raw grid export: NumPy `.npy` (format 1.0) and JSON.

use super::{Grid, GridValues};

/// Encode a grid as a `.npy` file: `height × width` for scalar grids,
/// `height × width × categories` for categorical ones, row 0 at the top.
/// Types: count → `<u4`, any → `|b1`, float reductions → `<f8`.
pub fn to_npy(g: &Grid) -> Vec<u8> {
    let (descr, body): (&str, Vec<u8>) = match &g.values {
        GridValues::Count(v) | GridValues::CatCount(v) => {
            ("<u4", v.iter().flat_map(|x| x.to_le_bytes()).collect())
        }
        GridValues::Any(v) => ("|b1", v.iter().map(|&b| b as u8).collect()),
        GridValues::Float(v) | GridValues::CatFloat(v) => {
            ("<f8", v.iter().flat_map(|x| x.to_le_bytes()).collect())
        }
    };
    let shape = match &g.values {
        GridValues::CatCount(_) | GridValues::CatFloat(_) => {
            format!("({}, {}, {})", g.height, g.width, g.ncat())
        }
        _ => format!("({}, {})", g.height, g.width),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n' is padded to 64 bytes.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + body.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&body);
    out
}

/// Encode a grid as JSON: `{"width", "height", "categories", "values"}` with
/// `values[row][col]` (or `[row][col][cat]`); NaN becomes `null`.
pub fn to_json(g: &Grid) -> serde_json::Value {
    use serde_json::{Value, json};
    let num = |x: f64| if x.is_finite() { json!(x) } else { Value::Null };
    let ncat = g.ncat();
    let cell = |i: usize| -> Value {
        match &g.values {
            GridValues::Count(v) => json!(v[i]),
            GridValues::Any(v) => json!(v[i]),
            GridValues::Float(v) => num(v[i]),
            GridValues::CatCount(v) => json!(&v[i * ncat..(i + 1) * ncat]),
            GridValues::CatFloat(v) => Value::Array(
                v[i * ncat..(i + 1) * ncat]
                    .iter()
                    .map(|&x| num(x))
                    .collect(),
            ),
        }
    };
    let rows: Vec<Value> = (0..g.height)
        .map(|r| Value::Array((0..g.width).map(|c| cell(r * g.width + c)).collect()))
        .collect();
    json!({"width": g.width, "height": g.height, "categories": g.categories, "values": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_aligned_and_parsable() {
        let g = Grid {
            width: 3,
            height: 2,
            categories: vec![],
            values: GridValues::Count(vec![1, 2, 3, 4, 5, 6]),
        };
        let b = to_npy(&g);
        assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
        let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hl) % 64, 0);
        let h = std::str::from_utf8(&b[10..10 + hl]).unwrap();
        assert!(h.contains("'shape': (2, 3)") && h.contains("<u4"));
        assert_eq!(b.len(), 10 + hl + 24);
        assert_eq!(u32::from_le_bytes(b[10 + hl + 20..].try_into().unwrap()), 6);
    }
}
