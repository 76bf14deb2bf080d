//! Time strings, read the same way everywhere: by the CSV reader when it
//! infers and parses a temporal column, and by filters on one.

use chrono::{DateTime, NaiveDate, NaiveDateTime};

/// Date-time layouts accepted besides RFC 3339 (all read as UTC). `%.f`
/// also matches no fraction at all.
const LAYOUTS: [&str; 4] = [
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
];

/// Parse an ISO 8601 / RFC 3339 date or date-time as µs since the Unix
/// epoch: `2017-12-31T23:59:59Z`, `2017-12-31T23:59:59.250+01:00`,
/// `2017-12-31 23:59:59`, `2017-12-31T23:59` or `2017-12-31`. Times
/// without an offset are UTC.
pub fn parse_iso_us(s: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_micros());
    }
    for f in LAYOUTS {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_micros())
}

#[cfg(test)]
mod tests {
    use super::parse_iso_us;

    #[test]
    fn every_layout_reads_the_same_instant() {
        let midnight = 1_514_678_400_000_000; // 2017-12-31T00:00:00Z
        let last = midnight + 86_399_000_000;
        for (s, us) in [
            ("2017-12-31", midnight),
            ("2017-12-31T00:00", midnight),
            ("2017-12-31 00:00", midnight),
            ("2017-12-31T23:59:59Z", last),
            ("2017-12-31T23:59:59", last),
            ("2017-12-31 23:59:59", last),
            ("2017-12-31 23:59:59.5", last + 500_000),
            ("2017-12-31T23:59:59.5", last + 500_000),
            ("2018-01-01T00:59:59+01:00", last),
        ] {
            assert_eq!(parse_iso_us(s), Some(us), "{s}");
        }
        for s in ["", "2017", "2017-13-01", "yesterday", "2017-12-31T25:00"] {
            assert_eq!(parse_iso_us(s), None, "{s}");
        }
    }
}
