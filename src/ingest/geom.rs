//! Point geometries: WKB (GeoParquet's default encoding) and GeoArrow points
//! (struct of x/y, or fixed-size list of two).

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{Array, ArrayRef};
use arrow_schema::DataType;

/// X and Y of every row; NaN for nulls, empty points and non-point geometries.
pub fn points(a: &ArrayRef) -> Result<(Vec<f64>, Vec<f64>), String> {
    let n = a.len();
    let mut xs = vec![f64::NAN; n];
    let mut ys = vec![f64::NAN; n];
    match a.data_type() {
        DataType::Binary => fill_wkb(a.as_binary::<i32>().iter(), &mut xs, &mut ys),
        DataType::LargeBinary => fill_wkb(a.as_binary::<i64>().iter(), &mut xs, &mut ys),
        DataType::BinaryView => fill_wkb(a.as_binary_view().iter(), &mut xs, &mut ys),
        DataType::Struct(fields) => {
            let s = a.as_struct();
            let pick = |names: &[&str]| {
                fields
                    .iter()
                    .position(|f| names.contains(&f.name().as_str()))
                    .ok_or_else(|| format!("point struct has no {} field", names[0]))
            };
            let xi = pick(&["x", "lon", "longitude"])?;
            let yi = pick(&["y", "lat", "latitude"])?;
            let xa =
                arrow_cast::cast(s.column(xi), &DataType::Float64).map_err(|e| e.to_string())?;
            let ya =
                arrow_cast::cast(s.column(yi), &DataType::Float64).map_err(|e| e.to_string())?;
            let (xa, ya) = (
                xa.as_primitive::<Float64Type>(),
                ya.as_primitive::<Float64Type>(),
            );
            for i in 0..n {
                if s.is_valid(i) && xa.is_valid(i) && ya.is_valid(i) {
                    xs[i] = xa.value(i);
                    ys[i] = ya.value(i);
                }
            }
        }
        DataType::FixedSizeList(_, size) if *size >= 2 => {
            let l = a.as_fixed_size_list();
            let v = arrow_cast::cast(l.values(), &DataType::Float64).map_err(|e| e.to_string())?;
            let v = v.as_primitive::<Float64Type>();
            let size = *size as usize;
            for i in 0..n {
                if l.is_valid(i) {
                    xs[i] = v.value(i * size);
                    ys[i] = v.value(i * size + 1);
                }
            }
        }
        DataType::Utf8 => fill_text(a.as_string::<i32>().iter(), &mut xs, &mut ys),
        DataType::LargeUtf8 => fill_text(a.as_string::<i64>().iter(), &mut xs, &mut ys),
        DataType::Utf8View => fill_text(a.as_string_view().iter(), &mut xs, &mut ys),
        other => return Err(format!("unsupported geometry encoding {other}")),
    }
    Ok((xs, ys))
}

/// Text geometries, as CSV exports hold them: WKT or EWKT (`POINT (x y)`,
/// `SRID=4326;POINT Z (x y z)`) or hex WKB/EWKB (PostGIS's output).
fn fill_text<'a>(it: impl Iterator<Item = Option<&'a str>>, xs: &mut [f64], ys: &mut [f64]) {
    let mut buf = Vec::new();
    for (i, v) in it.enumerate() {
        let Some(v) = v.map(str::trim) else { continue };
        let p = if v.bytes().next().is_some_and(|b| b.is_ascii_hexdigit())
            && v.bytes().all(|b| b.is_ascii_hexdigit())
        {
            buf.clear();
            buf.resize(v.len() / 2, 0);
            hex::decode_to_slice(v, &mut buf)
                .ok()
                .and_then(|_| wkb_point(&buf))
        } else {
            wkt_point(v)
        };
        if let Some((x, y)) = p {
            xs[i] = x;
            ys[i] = y;
        }
    }
}

/// X and Y of a WKT / EWKT point (2D, Z, M or ZM); `None` for anything
/// else (other geometry types, `POINT EMPTY`, malformed text).
pub fn wkt_point(s: &str) -> Option<(f64, f64)> {
    let s = s.trim();
    // EWKT's `SRID=n;` prefix: the CRS is the column's, not the row's.
    let s = match s.split_once(';') {
        Some((srid, rest)) if srid.trim().to_ascii_uppercase().starts_with("SRID=") => rest,
        _ => s,
    };
    let (head, rest) = s.split_once('(')?;
    let mut words = head.split_whitespace();
    if !words.next()?.eq_ignore_ascii_case("POINT") {
        return None;
    }
    // At most one dimension word (Z, M or ZM).
    if let Some(w) = words.next() {
        if !["Z", "M", "ZM"].iter().any(|d| w.eq_ignore_ascii_case(d)) || words.next().is_some() {
            return None;
        }
    }
    let body = rest.trim_end().strip_suffix(')')?;
    let mut nums = body.split_whitespace().map(str::parse::<f64>);
    let x = nums.next()?.ok()?;
    let y = nums.next()?.ok()?;
    // Z and M, if any, must be numbers too, and at most two of them.
    let extra: Vec<_> = nums.collect();
    (extra.len() <= 2 && extra.iter().all(Result::is_ok)).then_some((x, y))
}

fn fill_wkb<'a>(it: impl Iterator<Item = Option<&'a [u8]>>, xs: &mut [f64], ys: &mut [f64]) {
    for (i, v) in it.enumerate() {
        if let Some((x, y)) = v.and_then(wkb_point) {
            xs[i] = x;
            ys[i] = y;
        }
    }
}

/// Decode a WKB / EWKB / ISO WKB point (2D, Z, M or ZM); `None` for anything else.
pub fn wkb_point(b: &[u8]) -> Option<(f64, f64)> {
    let le = match *b.first()? {
        0 => false,
        1 => true,
        _ => return None,
    };
    let u32_at = |o: usize| -> Option<u32> {
        let s: [u8; 4] = b.get(o..o + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(s)
        } else {
            u32::from_be_bytes(s)
        })
    };
    let f64_at = |o: usize| -> Option<f64> {
        let s: [u8; 8] = b.get(o..o + 8)?.try_into().ok()?;
        Some(if le {
            f64::from_le_bytes(s)
        } else {
            f64::from_be_bytes(s)
        })
    };
    let ty = u32_at(1)?;
    let mut off = 5;
    // EWKB sets a flag bit for an embedded SRID and for Z/M; ISO WKB adds 1000s.
    if ty & 0x2000_0000 != 0 {
        off += 4;
    }
    let base = (ty & 0x0FFF_FFFF) % 1000;
    if base != 1 {
        return None;
    }
    Some((f64_at(off)?, f64_at(off + 8)?))
}

/// The geometry type a WKB value holds (`"LineString"`, …), if readable.
pub fn wkb_type_name(b: &[u8]) -> Option<&'static str> {
    let le = match *b.first()? {
        0 => false,
        1 => true,
        _ => return None,
    };
    let s: [u8; 4] = b.get(1..5)?.try_into().ok()?;
    let ty = if le {
        u32::from_le_bytes(s)
    } else {
        u32::from_be_bytes(s)
    };
    const NAMES: [&str; 8] = [
        "Geometry",
        "Point",
        "LineString",
        "Polygon",
        "MultiPoint",
        "MultiLineString",
        "MultiPolygon",
        "GeometryCollection",
    ];
    NAMES.get(((ty & 0x0FFF_FFFF) % 1000) as usize).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_geometries_read_as_points() {
        use std::sync::Arc;
        assert_eq!(wkt_point("POINT (1.5 -2)"), Some((1.5, -2.0)));
        assert_eq!(wkt_point("point z(1 2 3)"), Some((1.0, 2.0)));
        assert_eq!(wkt_point("SRID=4326;POINT ZM (1 2 3 4)"), Some((1.0, 2.0)));
        assert_eq!(wkt_point("POINT EMPTY"), None);
        assert_eq!(wkt_point("LINESTRING (1 2, 3 4)"), None);
        assert_eq!(wkt_point("POINT (1 x)"), None);
        assert_eq!(wkt_point("POINT (1 2"), None);
        // PostGIS EWKB hex of SRID=4326;POINT(1 2), and plain WKB hex.
        let a: ArrayRef = Arc::new(arrow_array::StringArray::from(vec![
            Some("0101000020E6100000000000000000F03F0000000000000040"),
            Some("0101000000000000000000F03F0000000000000040"),
            Some("POINT(3 4)"),
            Some("nonsense"),
            None,
        ]));
        let (xs, ys) = points(&a).unwrap();
        assert_eq!((xs[0], ys[0]), (1.0, 2.0));
        assert_eq!((xs[1], ys[1]), (1.0, 2.0));
        assert_eq!((xs[2], ys[2]), (3.0, 4.0));
        assert!(xs[3].is_nan() && xs[4].is_nan());
        assert_eq!(
            wkb_type_name(&hex::decode("010200000000000000").unwrap()),
            Some("LineString")
        );
    }

    fn wkb(le: bool, ty: u32, x: f64, y: f64) -> Vec<u8> {
        let mut v = vec![u8::from(le)];
        if le {
            v.extend(ty.to_le_bytes());
            v.extend(x.to_le_bytes());
            v.extend(y.to_le_bytes());
        } else {
            v.extend(ty.to_be_bytes());
            v.extend(x.to_be_bytes());
            v.extend(y.to_be_bytes());
        }
        v
    }

    #[test]
    fn decodes_point_variants() {
        assert_eq!(wkb_point(&wkb(true, 1, 2.5, -3.0)), Some((2.5, -3.0)));
        assert_eq!(wkb_point(&wkb(false, 1, 2.5, -3.0)), Some((2.5, -3.0)));
        assert_eq!(wkb_point(&wkb(true, 1001, 1.0, 2.0)), Some((1.0, 2.0)));
        assert_eq!(wkb_point(&wkb(true, 3, 1.0, 2.0)), None);
        assert_eq!(wkb_point(&[1, 1, 0]), None);
    }
}
