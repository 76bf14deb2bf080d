//! Coordinates in any EPSG CRS, reprojected to longitude/latitude at
//! ingest with `proj4rs` (a pure-Rust port of PROJ.4) and the EPSG
//! definitions of `crs-definitions`: UTM zones, national grids (British
//! National Grid EPSG:27700, Lambert-93 EPSG:2154, ETRS89-LAEA EPSG:3035,
//! RD New EPSG:28992, …) and other geographic CRSs. Datum shifts use the
//! definitions' 7-parameter `towgs84` (metre-level, as PROJ without grids).

use proj4rs::Proj;

/// A source CRS and the transformation from it to WGS 84 degrees.
pub struct Reprojector {
    code: u16,
    src: Proj,
    dst: Proj,
}

impl std::fmt::Debug for Reprojector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Reprojector(EPSG:{})", self.code)
    }
}

impl Reprojector {
    /// The transformation from EPSG `code`; an error names an unknown code.
    pub fn new(code: u16) -> Result<Self, String> {
        let src = Proj::from_epsg_code(code)
            .map_err(|e| format!("unknown or unsupported CRS EPSG:{code} ({e})"))?;
        let dst = Proj::from_epsg_code(4326).map_err(|e| format!("EPSG:4326: {e}"))?;
        Ok(Reprojector { code, src, dst })
    }

    /// `(x, y)` in the source CRS (degrees for a geographic one, else its
    /// projected units) as longitude/latitude in degrees; `None` when the
    /// point is outside the projection's domain.
    pub fn to_lnglat(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        if !(x.is_finite() && y.is_finite()) {
            return None;
        }
        let mut p = if self.src.is_latlong() {
            (x.to_radians(), y.to_radians(), 0.0)
        } else {
            (x, y, 0.0)
        };
        proj4rs::transform::transform(&self.src, &self.dst, &mut p).ok()?;
        let (lon, lat) = (p.0.to_degrees(), p.1.to_degrees());
        (lon.is_finite() && lat.is_finite()).then_some((lon, lat))
    }
}

/// An EPSG code from `EPSG:NNNN`, `epsg:NNNN`, `NNNN`, an
/// `urn:ogc:def:crs:EPSG::NNNN` URN, or `OGC:CRS84` (as 4326).
pub fn parse_code(s: &str) -> Result<u16, String> {
    let t = s.trim();
    // OGC:CRS84, CRS84, urn:ogc:def:crs:OGC:1.3:CRS84 (GDAL's GeoJSON).
    if t.to_ascii_uppercase().ends_with("CRS84") {
        return Ok(4326);
    }
    let digits = t
        .rsplit(':')
        .next()
        .filter(|_| {
            let lower = t.to_ascii_lowercase();
            !t.contains(':')
                || lower.starts_with("epsg:")
                || lower.starts_with("urn:ogc:def:crs:epsg:")
        })
        .unwrap_or("");
    if digits == "900913" {
        return Ok(3857);
    }
    digits
        .parse::<u16>()
        .map_err(|_| format!("bad CRS {s:?}: expected EPSG:NNNN (for example EPSG:27700)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Published coordinates: each CRS's own origin (false easting and
    /// northing at the natural origin, by definition in the EPSG registry),
    /// the Ordnance Survey's transverse Mercator worked example ("A guide
    /// to coordinate systems in Great Britain", in OSGB36) and the RD
    /// origin (Amersfoort) in WGS 84 from the RDNAPTRANS approximation.
    #[test]
    fn known_points_reproject_to_published_coordinates() {
        let dms = |d: f64, m: f64, s: f64| d + m / 60.0 + s / 3600.0;
        // (EPSG code, projected x/y, published lon/lat, tolerance in degrees)
        type Case = (u16, (f64, f64), (f64, f64), f64);
        let cases: [Case; 6] = [
            // UTM 32N: the central meridian on the equator.
            (32632, (500_000.0, 0.0), (9.0, 0.0), 1e-9),
            // Lambert-93 (RGF93): origin 3°E 46.5°N.
            (2154, (700_000.0, 6_600_000.0), (3.0, 46.5), 1e-7),
            // ETRS89-LAEA Europe: centre 10°E 52°N.
            (3035, (4_321_000.0, 3_210_000.0), (10.0, 52.0), 1e-7),
            // British National Grid: the OS worked example's OSGB36
            // latitude and longitude, taken to WGS 84 below through the
            // same datum shift, so the projection itself is checked to mm.
            (
                27700,
                (651_409.903, 313_177.270),
                (dms(1.0, 43.0, 4.5177), dms(52.0, 39.0, 27.2531)),
                1e-8,
            ),
            // RD New: (155000, 463000) is Amersfoort, 52.15517440°N 5.38720621°E.
            (
                28992,
                (155_000.0, 463_000.0),
                (5.387_206_21, 52.155_174_40),
                1e-4,
            ),
            // A geographic CRS on another datum (ETRS89): near-identical.
            (4258, (2.35, 48.85), (2.35, 48.85), 1e-6),
        ];
        for (code, (x, y), (lon, lat), tol) in cases {
            let r = Reprojector::new(code).unwrap();
            let (got_lon, got_lat) = r.to_lnglat(x, y).unwrap();
            let (lon, lat) = if code == 27700 {
                Reprojector::new(4277).unwrap().to_lnglat(lon, lat).unwrap()
            } else {
                (lon, lat)
            };
            assert!(
                (got_lon - lon).abs() < tol && (got_lat - lat).abs() < tol,
                "EPSG:{code} ({x}, {y}) -> ({got_lon}, {got_lat}), published ({lon}, {lat})"
            );
        }
    }

    #[test]
    fn codes_parse_and_unknown_ones_are_refused() {
        assert_eq!(parse_code("EPSG:27700"), Ok(27700));
        assert_eq!(parse_code("epsg:2154"), Ok(2154));
        assert_eq!(parse_code("3857"), Ok(3857));
        assert_eq!(parse_code("urn:ogc:def:crs:EPSG::28992"), Ok(28992));
        assert_eq!(parse_code("OGC:CRS84"), Ok(4326));
        assert_eq!(parse_code("urn:ogc:def:crs:OGC:1.3:CRS84"), Ok(4326));
        assert_eq!(parse_code("urn:ogc:def:crs:EPSG:9.8:27700"), Ok(27700));
        assert!(parse_code("ESRI:102100").is_err());
        assert!(parse_code("EPSG:abc").is_err());
        let e = Reprojector::new(1).unwrap_err();
        assert!(e.contains("EPSG:1"), "{e}");
    }
}
