//! The embedded GeoNames city table and the samplers built on it.
//!
//! The CSV (`data/cities.csv`, made by `scripts/make_cities.py`) is compiled
//! into the binary so `gen` works from any directory. It is parsed once per
//! process; the parse takes a few milliseconds.

use std::borrow::Cow;
use std::sync::OnceLock;

use rand::Rng;

use super::GenError;

/// The raw table: `name,country,lat,lon,population`, one city per line.
const CITIES_CSV: &str = include_str!("../../data/cities.csv");

/// Mean Earth radius along a meridian and the equator, for turning km offsets
/// into degrees. An equirectangular approximation is plenty for demo data.
pub(crate) const KM_PER_DEG_LAT: f64 = 110.574;
pub(crate) const KM_PER_DEG_LON_EQ: f64 = 111.320;

/// One populated place from GeoNames.
#[derive(Debug, Clone)]
pub(crate) struct City {
    pub name: Cow<'static, str>,
    /// ISO 3166-1 alpha-2 country code.
    pub country: [u8; 2],
    pub lat: f64,
    pub lon: f64,
    pub population: u32,
}

impl City {
    /// The country code as a string slice (always ASCII).
    pub fn country_str(&self) -> &str {
        std::str::from_utf8(&self.country).unwrap_or("??")
    }
}

/// All cities, sorted by population (descending) as in the CSV.
pub(crate) fn cities() -> Result<&'static [City], GenError> {
    static TABLE: OnceLock<Result<Vec<City>, String>> = OnceLock::new();
    match TABLE.get_or_init(|| parse_cities(CITIES_CSV)) {
        Ok(v) => Ok(v.as_slice()),
        Err(e) => Err(GenError::CityTable(e.clone())),
    }
}

/// Parses the CSV. Only the `name` field may be quoted (names can contain
/// commas), so this is a minimal RFC 4180 reader rather than a dependency.
fn parse_cities(text: &'static str) -> Result<Vec<City>, String> {
    let mut lines = text.lines();
    match lines.next() {
        Some("name,country,lat,lon,population") => {}
        other => return Err(format!("unexpected header {other:?}")),
    }
    let mut out = Vec::with_capacity(34_000);
    for (i, line) in lines.enumerate() {
        if line.is_empty() {
            continue;
        }
        let lineno = i + 2;
        let (name, rest) = split_name(line).ok_or_else(|| format!("line {lineno}: bad name"))?;
        let mut f = rest.split(',');
        let (Some(cc), Some(lat), Some(lon), Some(pop), None) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            return Err(format!("line {lineno}: expected 5 fields"));
        };
        let country: [u8; 2] = cc
            .as_bytes()
            .try_into()
            .map_err(|_| format!("line {lineno}: bad country {cc:?}"))?;
        let lat: f64 = lat.parse().map_err(|_| format!("line {lineno}: bad lat"))?;
        let lon: f64 = lon.parse().map_err(|_| format!("line {lineno}: bad lon"))?;
        let population: u32 = pop
            .parse()
            .map_err(|_| format!("line {lineno}: bad population"))?;
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            return Err(format!("line {lineno}: coordinates out of range"));
        }
        out.push(City {
            name,
            country,
            lat,
            lon,
            population,
        });
    }
    if out.len() < 1000 {
        return Err(format!("only {} cities in the table", out.len()));
    }
    Ok(out)
}

/// Splits off the first field, unquoting it if needed; returns the rest of
/// the line after the separating comma.
fn split_name(line: &'static str) -> Option<(Cow<'static, str>, &'static str)> {
    if let Some(body) = line.strip_prefix('"') {
        // Find the closing quote that is not a doubled `""`.
        let bytes = body.as_bytes();
        let mut i = 0;
        let mut escaped = false;
        while i < bytes.len() {
            if bytes[i] == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    escaped = true;
                    i += 2;
                    continue;
                }
                let name = &body[..i];
                let rest = body[i + 1..].strip_prefix(',')?;
                let name = if escaped {
                    Cow::Owned(name.replace("\"\"", "\""))
                } else {
                    Cow::Borrowed(name)
                };
                return Some((name, rest));
            }
            i += 1;
        }
        None
    } else {
        let (name, rest) = line.split_once(',')?;
        Some((Cow::Borrowed(name), rest))
    }
}

/// Walker/Vose alias table: O(1) weighted sampling, which matters because
/// every generated tower row draws a city.
#[derive(Debug, Clone)]
pub(crate) struct AliasTable {
    /// (probability of keeping the slot, alias slot), packed together so a
    /// draw touches a single cache line.
    slots: Vec<(f64, u32)>,
}

impl AliasTable {
    /// Builds the table; weights must be finite and non-negative with a
    /// positive sum.
    pub fn new(weights: &[f64]) -> Result<Self, GenError> {
        let n = weights.len();
        let total: f64 = weights.iter().sum();
        if n == 0 || n > u32::MAX as usize || !total.is_finite() || total <= 0.0 {
            return Err(GenError::InvalidOptions(
                "alias table needs positive finite weights".into(),
            ));
        }
        if weights.iter().any(|w| !w.is_finite() || *w < 0.0) {
            return Err(GenError::InvalidOptions(
                "alias table weights must be finite and non-negative".into(),
            ));
        }
        let scale = n as f64 / total;
        let mut prob: Vec<f64> = weights.iter().map(|w| w * scale).collect();
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let (mut small, mut large): (Vec<u32>, Vec<u32>) =
            (0..n as u32).partition(|&i| prob[i as usize] < 1.0);
        while let (Some(s), Some(l)) = (small.pop(), large.last().copied()) {
            alias[s as usize] = l;
            prob[l as usize] -= 1.0 - prob[s as usize];
            if prob[l as usize] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // Leftovers are 1.0 up to rounding error.
        for i in small.into_iter().chain(large) {
            prob[i as usize] = 1.0;
        }
        Ok(Self {
            slots: prob.into_iter().zip(alias).collect(),
        })
    }

    /// Draws an index with probability proportional to its weight.
    #[inline]
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        let x = rng.random::<f64>() * self.slots.len() as f64;
        let i = (x as usize).min(self.slots.len() - 1);
        let (p, a) = self.slots[i];
        if x - (i as f64) < p { i } else { a as usize }
    }
}

/// Approximate distance in km between two points (equirectangular; fine for
/// the few hundred km this is used over).
#[inline]
pub(crate) fn approx_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let mid = (0.5 * (lat1 + lat2)).to_radians();
    let mut dlon = lon2 - lon1;
    if dlon > 180.0 {
        dlon -= 360.0;
    } else if dlon < -180.0 {
        dlon += 360.0;
    }
    let dx = dlon * KM_PER_DEG_LON_EQ * mid.cos();
    let dy = (lat2 - lat1) * KM_PER_DEG_LAT;
    (dx * dx + dy * dy).sqrt()
}

/// Up to `k` nearest other cities within `max_km` of every city, as a flat
/// list (`k` slots per city, `u32::MAX` where there are fewer).
///
/// Uses a 1-degree grid so the whole table takes a few milliseconds; it
/// ignores the antimeridian, which only costs a few Pacific islands their
/// neighbours.
pub(crate) fn nearest_neighbours(cities: &[City], k: usize, max_km: f64) -> Vec<u32> {
    const CELL: f64 = 1.0;
    let cols = (360.0 / CELL) as usize;
    let rows = (180.0 / CELL) as usize;
    let cell_of = |lat: f64, lon: f64| -> (usize, usize) {
        let r = (((lat + 90.0) / CELL) as usize).min(rows - 1);
        let c = (((lon + 180.0) / CELL) as usize).min(cols - 1);
        (r, c)
    };
    // Counting sort of city indices by cell.
    let mut start = vec![0u32; rows * cols + 1];
    for c in cities {
        let (r, col) = cell_of(c.lat, c.lon);
        start[r * cols + col + 1] += 1;
    }
    for i in 1..start.len() {
        start[i] += start[i - 1];
    }
    let mut fill = start.clone();
    let mut order = vec![0u32; cities.len()];
    for (i, c) in cities.iter().enumerate() {
        let (r, col) = cell_of(c.lat, c.lon);
        let slot = &mut fill[r * cols + col];
        order[*slot as usize] = i as u32;
        *slot += 1;
    }

    // Search square rings of cells outwards from each city's cell and stop
    // once the k-th best is closer than anything outside the searched
    // square can be (every unvisited cell is at least `r` cells away, and a
    // cell is at least `KM_PER_DEG_LAT * CELL` km across in both axes, since
    // the longitude extent of a ring is widened by 1/cos(lat)). In dense
    // regions this stops after a ring or two.
    let cell_km = KM_PER_DEG_LAT * CELL;
    let max_ring = (max_km / cell_km).ceil() as isize;
    let mut out = vec![u32::MAX; cities.len() * k];
    let mut best: Vec<(f64, u32)> = Vec::with_capacity(k + 1);
    for (i, c) in cities.iter().enumerate() {
        best.clear();
        let (r0, c0) = cell_of(c.lat, c.lon);
        let coslat = c.lat.to_radians().cos().max(0.05);
        let km_lon = KM_PER_DEG_LON_EQ * coslat;
        let lon_span = |r: isize| ((r as f64 / coslat).ceil() as isize).min(cols as isize / 2);
        for r in 0..=max_ring {
            let (lr, prev_lr) = (lon_span(r), if r == 0 { -1 } else { lon_span(r - 1) });
            for dr in -r..=r {
                let row = r0 as isize + dr;
                if row < 0 || row >= rows as isize {
                    continue;
                }
                for dc in -lr..=lr {
                    // Skip cells already visited in an earlier ring.
                    if dr.abs() < r && dc.abs() <= prev_lr {
                        continue;
                    }
                    let col = c0 as isize + dc;
                    if col < 0 || col >= cols as isize {
                        continue;
                    }
                    let cell = row as usize * cols + col as usize;
                    for &j in &order[start[cell] as usize..start[cell + 1] as usize] {
                        if j as usize == i {
                            continue;
                        }
                        let o = &cities[j as usize];
                        // Local flat-earth distance around city i: no
                        // trigonometry per pair.
                        let dx = (o.lon - c.lon) * km_lon;
                        let dy = (o.lat - c.lat) * KM_PER_DEG_LAT;
                        let d = (dx * dx + dy * dy).sqrt();
                        if d > max_km || (best.len() == k && d >= best[k - 1].0) {
                            continue;
                        }
                        let pos = best.partition_point(|&(bd, _)| bd <= d);
                        best.insert(pos, (d, j));
                        best.truncate(k);
                    }
                }
            }
            if best.len() == k && best[k - 1].0 <= r as f64 * cell_km {
                break;
            }
        }
        for (slot, &(_, j)) in out[i * k..(i + 1) * k].iter_mut().zip(&best) {
            *slot = j;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    #[test]
    fn table_loads_and_is_sane() {
        let c = cities().expect("embedded table parses");
        assert!(c.len() > 30_000, "{} cities", c.len());
        assert_eq!(c[0].name, "Shanghai");
        assert!(c.iter().all(|c| c.population >= 15_000));
        // A quoted name with a comma survives the round trip.
        assert!(c.iter().any(|c| c.name.contains(',')));
    }

    #[test]
    fn quoted_names() {
        let (n, rest) = split_name(r#""a ""b"", c",XX,1,2,3"#).unwrap();
        assert_eq!(n, r#"a "b", c"#);
        assert_eq!(rest, "XX,1,2,3");
        assert!(parse_cities("bad header\n").is_err());
    }

    #[test]
    fn alias_table_matches_weights() {
        let t = AliasTable::new(&[1.0, 0.0, 3.0, 6.0]).unwrap();
        let mut rng = Pcg64Mcg::seed_from_u64(7);
        let mut counts = [0u32; 4];
        for _ in 0..100_000 {
            counts[t.sample(&mut rng)] += 1;
        }
        assert_eq!(counts[1], 0);
        let f: Vec<f64> = counts.iter().map(|&c| c as f64 / 100_000.0).collect();
        assert!(
            (f[0] - 0.1).abs() < 0.01 && (f[2] - 0.3).abs() < 0.01 && (f[3] - 0.6).abs() < 0.01
        );
        assert!(AliasTable::new(&[]).is_err());
        assert!(AliasTable::new(&[0.0]).is_err());
        assert!(AliasTable::new(&[f64::NAN]).is_err());
    }

    #[test]
    fn neighbours_are_near() {
        let c = cities().unwrap();
        let nn = nearest_neighbours(c, 3, 300.0);
        let with = (0..c.len()).filter(|&i| nn[i * 3] != u32::MAX).count();
        assert!(with as f64 > 0.95 * c.len() as f64);
        for i in (0..c.len()).step_by(97) {
            for &j in &nn[i * 3..i * 3 + 3] {
                if j != u32::MAX {
                    let o = &c[j as usize];
                    assert!(approx_km(c[i].lat, c[i].lon, o.lat, o.lon) <= 310.0);
                }
            }
        }
    }
}
