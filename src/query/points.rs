//! The points under a cursor: the nearest rows within a radius in screen
//! pixels, with their attributes.

use super::{Budget, Filter, QueryError, bind_filters, plan_rows};
use crate::geo;
use crate::store::column::{CatColumn, NumColumn};
use crate::store::{ColumnKind, Dataset};
use std::collections::BinaryHeap;

/// Most points one search returns.
pub const MAX_POINTS: usize = 100;
/// Largest search radius, in screen pixels.
pub const MAX_RADIUS_PX: f64 = 64.0;

/// Where and how wide to look.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cursor {
    /// Longitude, degrees.
    pub lon: f64,
    /// Latitude, degrees (clamped to the Web Mercator square).
    pub lat: f64,
    /// Zoom of the map the cursor is on.
    pub z: u32,
    /// Tile side of that map, in pixels.
    pub tile_size: u32,
    /// Search radius in screen pixels, 0..=[`MAX_RADIUS_PX`].
    pub radius_px: f64,
    /// Most points returned, 1..=[`MAX_POINTS`].
    pub limit: usize,
}

impl Cursor {
    /// The cursor's quantized position, quantized units per screen pixel,
    /// and the Hilbert key ranges covering the search disc.
    fn search(&self) -> (u32, u32, f64, Vec<(u64, u64)>) {
        let (mx, my) = geo::lnglat_to_meters(self.lon, self.lat.clamp(-geo::MAX_LAT, geo::MAX_LAT));
        let (cx, cy) = geo::quantize(mx, my);
        let px =
            2f64.powi(32 - self.z.min(geo::MAX_ZOOM as u32) as i32) / self.tile_size.max(1) as f64;
        let r = (self.radius_px * px).max(1.0);
        let lo = |c: u32| (c as f64 - r).max(0.0) as u32;
        let hi = |c: u32| (c as f64 + r).min(u32::MAX as f64) as u32;
        let ranges = geo::cover_key_ranges(lo(cx), hi(cx), lo(cy), hi(cy), 16);
        (cx, cy, px, ranges)
    }

    /// Rows a search reads at most (see [`super::rows_in`]).
    pub fn rows_to_read(&self, ds: &Dataset) -> u64 {
        super::rows_in(ds, &self.search().3)
    }
}

/// One attribute value of a row, as a client shows it.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    /// No value (null or NaN).
    Null,
    /// A floating-point number.
    Number(f64),
    /// A signed integer, exactly.
    Int(i64),
    /// An unsigned integer, exactly.
    UInt(u64),
    /// A time, in epoch microseconds (UTC).
    Time(i64),
    /// A category label or a string.
    Text(String),
    /// A nested value (struct, list, map, ...) as JSON.
    Json(serde_json::Value),
}

/// A point found near the cursor.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    /// Longitude of the point (the centre of its quantized cell).
    pub lon: f64,
    /// Latitude.
    pub lat: f64,
    /// Distance from the cursor in screen pixels.
    pub distance_px: f64,
    /// Every column's value, in manifest order.
    pub attributes: Vec<(String, Attr)>,
}

/// A candidate: distance, partition, row; ordered by distance, then
/// position, so results are deterministic.
#[derive(PartialEq)]
struct Hit(f64, usize, usize);

impl Eq for Hit {}

impl PartialOrd for Hit {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Hit {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0
            .total_cmp(&other.0)
            .then(self.1.cmp(&other.1))
            .then(self.2.cmp(&other.2))
    }
}

/// The points within `cursor.radius_px` of the cursor that pass `filters`,
/// nearest first, at most `cursor.limit`. Memory is bounded by the limit
/// however many rows lie under the cursor, and `budget`'s cancel flag is
/// polled between row spans.
pub fn nearest(
    ds: &Dataset,
    cursor: &Cursor,
    filters: &[Filter],
    budget: Budget<'_>,
) -> Result<Vec<Found>, QueryError> {
    let valid = cursor.lon.is_finite()
        && cursor.lat.is_finite()
        && (0.0..=MAX_RADIUS_PX).contains(&cursor.radius_px)
        && (1..=MAX_POINTS).contains(&cursor.limit)
        && cursor.z <= geo::MAX_ZOOM as u32
        && matches!(cursor.tile_size, 256 | 512);
    if !valid {
        return Err(QueryError::BadView(format!(
            "a point search needs finite lon/lat, z 0..={}, tile_size 256 or 512, radius_px 0..={MAX_RADIUS_PX} and limit 1..={MAX_POINTS}",
            geo::MAX_ZOOM
        )));
    }
    let (cx, cy, px, ranges) = cursor.search();
    // The `limit` nearest so far, farthest on top.
    let mut hits: BinaryHeap<Hit> = BinaryHeap::with_capacity(cursor.limit + 1);
    for span in plan_rows(ds, &ranges, 1 << 16) {
        if budget.cancelled() {
            return Err(QueryError::Cancelled);
        }
        let part = &ds.partitions[span.partition];
        let Some(f) = bind_filters(&ds.manifest, part, filters) else {
            continue;
        };
        for row in span.rows {
            let dx = part.qx()[row] as f64 - cx as f64;
            let dy = part.qy()[row] as f64 - cy as f64;
            let d = (dx * dx + dy * dy).sqrt() / px;
            if d <= cursor.radius_px && f.test(row) {
                hits.push(Hit(d, span.partition, row));
                if hits.len() > cursor.limit {
                    hits.pop();
                }
            }
        }
    }
    Ok(hits
        .into_sorted_vec()
        .into_iter()
        .map(|Hit(d, part, row)| {
            let p = &ds.partitions[part];
            let (x, y) = geo::dequantize(p.qx()[row], p.qy()[row]);
            let (lon, lat) = geo::meters_to_lnglat(x, y);
            Found {
                lon,
                lat,
                distance_px: d,
                attributes: attributes(ds, part, row),
            }
        })
        .collect())
}

/// Every column's value at `row` of partition `part`.
pub fn attributes(ds: &Dataset, part: usize, row: usize) -> Vec<(String, Attr)> {
    let p = &ds.partitions[part];
    let number = |v: f64| (!v.is_nan()).then_some(v);
    ds.manifest
        .columns
        .iter()
        .filter_map(|c| {
            let array = p.column(&c.name)?;
            let v = match c.kind {
                ColumnKind::Numeric => exact_integer(array, row).or_else(|| {
                    NumColumn::new(array)
                        .and_then(|n| number(n.get(row)))
                        .map(Attr::Number)
                }),
                ColumnKind::Temporal => NumColumn::new(array)
                    .and_then(|n| number(n.get(row)))
                    .map(|us| Attr::Time(us.round() as i64)),
                ColumnKind::Categorical => CatColumn::new(array)
                    .and_then(|k| k.get(row))
                    .and_then(|k| c.categories.get(k))
                    .map(|l| Attr::Text(l.clone())),
                ColumnKind::String => {
                    use arrow_array::Array;
                    use arrow_array::cast::AsArray;
                    array
                        .as_string_opt::<i32>()
                        .filter(|s| s.is_valid(row))
                        .map(|s| Attr::Text(s.value(row).to_string()))
                }
                ColumnKind::Other => nested_json(array, row),
            };
            Some((c.name.clone(), v.unwrap_or(Attr::Null)))
        })
        .collect()
}

/// An integer column's value at `row`, exactly (a float would round
/// int64 and uint64 values past 2^53).
fn exact_integer(array: &arrow_array::ArrayRef, row: usize) -> Option<Attr> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    use arrow_array::types::*;
    use arrow_schema::DataType as T;
    if row >= array.len() || array.is_null(row) {
        return None;
    }
    Some(match array.data_type() {
        T::Int8 => Attr::Int(array.as_primitive::<Int8Type>().value(row).into()),
        T::Int16 => Attr::Int(array.as_primitive::<Int16Type>().value(row).into()),
        T::Int32 => Attr::Int(array.as_primitive::<Int32Type>().value(row).into()),
        T::Int64 => Attr::Int(array.as_primitive::<Int64Type>().value(row)),
        T::UInt8 => Attr::UInt(array.as_primitive::<UInt8Type>().value(row).into()),
        T::UInt16 => Attr::UInt(array.as_primitive::<UInt16Type>().value(row).into()),
        T::UInt32 => Attr::UInt(array.as_primitive::<UInt32Type>().value(row).into()),
        T::UInt64 => Attr::UInt(array.as_primitive::<UInt64Type>().value(row)),
        _ => return None,
    })
}

/// A nested column's value at `row` as JSON, by Arrow's JSON writer.
fn nested_json(array: &arrow_array::ArrayRef, row: usize) -> Option<Attr> {
    use arrow_array::Array;
    if row >= array.len() || array.is_null(row) {
        return None;
    }
    let one = array.slice(row, 1);
    let field = arrow_schema::Field::new("v", one.data_type().clone(), true);
    let batch = arrow_array::RecordBatch::try_new(
        std::sync::Arc::new(arrow_schema::Schema::new(vec![field])),
        vec![one],
    )
    .ok()?;
    let mut w = arrow_json::ArrayWriter::new(Vec::new());
    w.write(&batch).ok()?;
    w.finish().ok()?;
    let rows: serde_json::Value = serde_json::from_slice(&w.into_inner()).ok()?;
    rows.get(0)?.get("v").cloned().map(Attr::Json)
}
