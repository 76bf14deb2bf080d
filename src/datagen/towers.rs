//! OpenCelliD-shaped cell towers clustered around real cities.
//!
//! Each row picks one of four placement modes:
//! * **core** (62%): a tight normal around a population-weighted city, with
//!   a spread proportional to `sqrt(population)` (area grows with people);
//! * **sprawl** (28%): a heavy-tailed (Lomax) radius around such a city, so
//!   suburbs and satellite towns thin out gradually instead of stopping;
//! * **road** (8%): along the segment to one of the city's nearest
//!   neighbours, which draws the faint road network between towns that real
//!   coverage maps show;
//! * **rural** (2%): 30–200 km from a uniformly chosen city, which sprinkles
//!   sparsely populated land (where there are few, small cities).
//!
//! The other columns follow the OpenCelliD export: radio generation with a
//! realistic mix and plausible dates, MCC from the city's country, a
//! spatially coherent area code, log-normal range and mostly-zero signal.

use std::sync::Arc;

use arrow_array::types::Int8Type;
use arrow_array::{
    ArrayRef, DictionaryArray, Float64Array, Int8Array, Int32Array, Int64Array, RecordBatch,
    StringArray, TimestampMicrosecondArray, UInt16Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use rand_pcg::Pcg64Mcg;

use super::cities::{self, AliasTable, City, KM_PER_DEG_LAT, KM_PER_DEG_LON_EQ};
use super::{ChunkSource, GenError, micros_at, mix64};

/// Radio names in dictionary-key order.
pub(crate) const RADIOS: [&str; 5] = ["GSM", "UMTS", "LTE", "NR", "CDMA"];
const GSM: usize = 0;
const UMTS: usize = 1;
const LTE: usize = 2;
const NR: usize = 3;
const CDMA: usize = 4;

/// Cumulative share of each radio (GSM, UMTS, LTE, NR, CDMA): roughly the
/// OpenCelliD mix, LTE-dominated with a little 5G and legacy CDMA.
const RADIO_CDF: [f64; 5] = [0.24, 0.43, 0.90, 0.96, 1.0];

/// First-seen window per radio, `[start, end)` in µs since the epoch: GSM
/// and CDMA from 2003 (OpenCelliD's start), UMTS from 2005, LTE from 2010,
/// NR from April 2019 (first commercial 5G); CDMA networks were shut down
/// around 2020, so none appear after that.
const CREATED: [(i64, i64); 5] = [
    (micros_at(2003, 1, 1), micros_at(2025, 1, 1)),
    (micros_at(2005, 1, 1), micros_at(2025, 1, 1)),
    (micros_at(2010, 1, 1), micros_at(2025, 1, 1)),
    (micros_at(2019, 4, 1), micros_at(2025, 1, 1)),
    (micros_at(2003, 1, 1), micros_at(2021, 1, 1)),
];

/// Typical non-zero averageSignal (dBm) per radio.
const SIGNAL_MEAN: [f64; 5] = [-85.0, -90.0, -95.0, -92.0, -88.0];

/// Operator (MNC) codes; low numbers are by far the most common.
const NETS: [i32; 10] = [1, 2, 3, 4, 5, 7, 10, 11, 20, 30];

/// Placement-mode thresholds on a uniform draw.
const P_CORE: f64 = 0.62;
const P_SPRAWL: f64 = 0.90;
const P_ROAD: f64 = 0.98;

/// Neighbours kept per city for the road mode, and how far they may be.
const NEIGHBOURS: usize = 4;
const NEIGHBOUR_KM: f64 = 250.0;

/// Mobile country codes for common countries; others get a stable hashed
/// code in the valid range, which is all a demo needs.
const MCC: &[(&str, u16)] = &[
    ("US", 310),
    ("CA", 302),
    ("MX", 334),
    ("BR", 724),
    ("AR", 722),
    ("CL", 730),
    ("CO", 732),
    ("PE", 716),
    ("VE", 734),
    ("EC", 740),
    ("BO", 736),
    ("PY", 744),
    ("UY", 748),
    ("CU", 368),
    ("GT", 704),
    ("HN", 708),
    ("SV", 706),
    ("NI", 710),
    ("CR", 712),
    ("PA", 714),
    ("DO", 370),
    ("HT", 372),
    ("JM", 338),
    ("PR", 330),
    ("GB", 234),
    ("IE", 272),
    ("FR", 208),
    ("DE", 262),
    ("NL", 204),
    ("BE", 206),
    ("LU", 270),
    ("CH", 228),
    ("AT", 232),
    ("IT", 222),
    ("ES", 214),
    ("PT", 268),
    ("DK", 238),
    ("NO", 242),
    ("SE", 240),
    ("FI", 244),
    ("IS", 274),
    ("PL", 260),
    ("CZ", 230),
    ("SK", 231),
    ("HU", 216),
    ("RO", 226),
    ("BG", 284),
    ("GR", 202),
    ("TR", 286),
    ("RU", 250),
    ("UA", 255),
    ("BY", 257),
    ("LT", 246),
    ("LV", 247),
    ("EE", 248),
    ("RS", 220),
    ("HR", 219),
    ("SI", 293),
    ("BA", 218),
    ("AL", 276),
    ("MK", 294),
    ("MD", 259),
    ("GE", 282),
    ("AM", 283),
    ("AZ", 400),
    ("KZ", 401),
    ("UZ", 434),
    ("CN", 460),
    ("JP", 440),
    ("KR", 450),
    ("KP", 467),
    ("TW", 466),
    ("HK", 454),
    ("IN", 404),
    ("PK", 410),
    ("BD", 470),
    ("LK", 413),
    ("NP", 429),
    ("MM", 414),
    ("TH", 520),
    ("VN", 452),
    ("KH", 456),
    ("LA", 457),
    ("MY", 502),
    ("SG", 525),
    ("ID", 510),
    ("PH", 515),
    ("AU", 505),
    ("NZ", 530),
    ("IR", 432),
    ("IQ", 418),
    ("SA", 420),
    ("AE", 424),
    ("IL", 425),
    ("JO", 416),
    ("LB", 415),
    ("SY", 417),
    ("YE", 421),
    ("OM", 422),
    ("KW", 419),
    ("QA", 427),
    ("AF", 412),
    ("EG", 602),
    ("DZ", 603),
    ("MA", 604),
    ("TN", 605),
    ("LY", 606),
    ("NG", 621),
    ("GH", 620),
    ("CI", 612),
    ("SN", 608),
    ("KE", 639),
    ("TZ", 640),
    ("UG", 641),
    ("ET", 636),
    ("ZA", 655),
    ("AO", 631),
    ("CD", 630),
    ("CM", 624),
    ("SD", 634),
    ("MZ", 643),
    ("ZM", 645),
    ("ZW", 648),
    ("MG", 646),
];

/// MCC for a country code: the table above, else a stable hash in 200..=749.
pub(crate) fn mcc_for(country: [u8; 2]) -> u16 {
    MCC.iter()
        .find(|(cc, _)| cc.as_bytes() == country)
        .map(|&(_, m)| m)
        .unwrap_or_else(|| 200 + (mix64(u64::from(u16::from_le_bytes(country))) % 550) as u16)
}

/// Per-city data the hot loop needs, packed for cache friendliness.
#[derive(Debug, Clone, Copy)]
struct Site {
    lat: f64,
    lon: f64,
    /// Standard deviation of the core cluster, km.
    sigma_km: f64,
    /// 1 / (km per degree of longitude) at this latitude.
    inv_km_lon: f64,
    mcc: u16,
}

/// Everything shared by all tower chunks. Independent of the seed.
pub(crate) struct TowerModel {
    schema: SchemaRef,
    sites: Vec<Site>,
    /// City draw for core and sprawl points: population^0.85, because
    /// megacities have fewer (bigger) sites per head than towns.
    by_population: AliasTable,
    /// City draw for road points: sqrt(population), spreading roads over
    /// many towns.
    by_sqrt_population: AliasTable,
    /// `NEIGHBOURS` nearest cities per city (`u32::MAX` = none).
    neighbours: Vec<u32>,
    radio_values: ArrayRef,
}

impl TowerModel {
    /// Builds the samplers from the embedded city table.
    pub fn new() -> Result<Self, GenError> {
        let cities = cities::cities()?;
        Ok(Self {
            schema: schema(),
            sites: cities.iter().map(site).collect(),
            by_population: AliasTable::new(
                &cities
                    .iter()
                    .map(|c| f64::from(c.population).powf(0.85))
                    .collect::<Vec<_>>(),
            )?,
            by_sqrt_population: AliasTable::new(
                &cities
                    .iter()
                    .map(|c| f64::from(c.population).sqrt())
                    .collect::<Vec<_>>(),
            )?,
            neighbours: cities::nearest_neighbours(cities, NEIGHBOURS, NEIGHBOUR_KM),
            radio_values: Arc::new(StringArray::from_iter_values(RADIOS)),
        })
    }
}

fn site(c: &City) -> Site {
    let coslat = c.lat.to_radians().cos().max(0.05);
    Site {
        lat: c.lat,
        lon: c.lon,
        // 1.2 km for a 15k town, 12 km for a million, capped for megacities.
        sigma_km: (0.012 * f64::from(c.population).sqrt()).clamp(1.0, 35.0),
        inv_km_lon: 1.0 / (KM_PER_DEG_LON_EQ * coslat),
        mcc: mcc_for(c.country),
    }
}

/// The Arrow schema of the towers dataset (OpenCelliD column names).
pub(crate) fn schema() -> SchemaRef {
    let utc: Arc<str> = Arc::from("UTC");
    Arc::new(Schema::new(vec![
        Field::new("lon", DataType::Float64, false),
        Field::new("lat", DataType::Float64, false),
        Field::new(
            "radio",
            DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::Utf8)),
            false,
        ),
        Field::new("mcc", DataType::UInt16, false),
        Field::new("net", DataType::Int32, false),
        Field::new("area", DataType::Int32, false),
        Field::new("cell", DataType::Int64, false),
        Field::new("range", DataType::Int32, false),
        Field::new("samples", DataType::Int32, false),
        Field::new(
            "created",
            DataType::Timestamp(TimeUnit::Microsecond, Some(utc)),
            false,
        ),
        Field::new("averageSignal", DataType::Int32, false),
    ]))
}

/// Column buffers for one chunk, allocated once at full capacity.
struct Columns {
    lon: Vec<f64>,
    lat: Vec<f64>,
    radio: Vec<i8>,
    mcc: Vec<u16>,
    net: Vec<i32>,
    area: Vec<i32>,
    cell: Vec<i64>,
    range: Vec<i32>,
    samples: Vec<i32>,
    created: Vec<i64>,
    signal: Vec<i32>,
}

impl Columns {
    fn with_capacity(n: usize) -> Self {
        Self {
            lon: Vec::with_capacity(n),
            lat: Vec::with_capacity(n),
            radio: Vec::with_capacity(n),
            mcc: Vec::with_capacity(n),
            net: Vec::with_capacity(n),
            area: Vec::with_capacity(n),
            cell: Vec::with_capacity(n),
            range: Vec::with_capacity(n),
            samples: Vec::with_capacity(n),
            created: Vec::with_capacity(n),
            signal: Vec::with_capacity(n),
        }
    }
}

impl ChunkSource for TowerModel {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn dictionary_columns(&self) -> &'static [&'static str] {
        &["radio", "mcc", "net", "averageSignal"]
    }

    fn chunk(&self, seed: u64, rows: usize) -> Result<RecordBatch, GenError> {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let mut c = Columns::with_capacity(rows);
        for _ in 0..rows {
            self.row(&mut rng, &mut c);
        }
        let keys = Int8Array::from(c.radio);
        let radio = DictionaryArray::<Int8Type>::try_new(keys, self.radio_values.clone())?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Float64Array::from(c.lon)),
            Arc::new(Float64Array::from(c.lat)),
            Arc::new(radio),
            Arc::new(UInt16Array::from(c.mcc)),
            Arc::new(Int32Array::from(c.net)),
            Arc::new(Int32Array::from(c.area)),
            Arc::new(Int64Array::from(c.cell)),
            Arc::new(Int32Array::from(c.range)),
            Arc::new(Int32Array::from(c.samples)),
            Arc::new(TimestampMicrosecondArray::from(c.created).with_timezone("UTC")),
            Arc::new(Int32Array::from(c.signal)),
        ];
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

impl TowerModel {
    /// Generates one tower and appends it to `c`. Allocation-free.
    #[inline]
    fn row(&self, rng: &mut Pcg64Mcg, c: &mut Columns) {
        let mode: f64 = rng.random();
        // (site index, east km, north km, log-median range in metres)
        let (idx, dx, dy, range_mu) = if mode < P_SPRAWL {
            let i = self.by_population.sample(rng);
            let s = &self.sites[i];
            if mode < P_CORE {
                let nx: f64 = rng.sample(StandardNormal);
                let ny: f64 = rng.sample(StandardNormal);
                (i, nx * s.sigma_km, ny * s.sigma_km, 6.5) // ~650 m
            } else {
                // Lomax(alpha = 2.5) radius: median ~0.3 scale, long tail.
                let scale = 2.5 * s.sigma_km + 2.0;
                let u: f64 = rng.random();
                let r = (scale * ((1.0 - u).powf(-0.4) - 1.0)).min(250.0);
                let (sin, cos) = (rng.random::<f64>() * std::f64::consts::TAU).sin_cos();
                (i, r * cos, r * sin, 7.3) // ~1.5 km
            }
        } else if mode < P_ROAD {
            let i = self.by_sqrt_population.sample(rng);
            let k = rng.random_range(0..NEIGHBOURS);
            match self.neighbours[i * NEIGHBOURS + k] {
                u32::MAX => self.rural(rng, i),
                j => {
                    let (a, b) = (&self.sites[i], &self.sites[j as usize]);
                    let t: f64 = rng.random();
                    // Offsets in km from `a`, then a little jitter across
                    // the road.
                    let ex = (b.lon - a.lon) / a.inv_km_lon;
                    let ny_ = (b.lat - a.lat) * KM_PER_DEG_LAT;
                    let jitter: f64 = rng.sample::<f64, _>(StandardNormal) * 1.5;
                    let len = (ex * ex + ny_ * ny_).sqrt().max(1e-6);
                    (
                        i,
                        t * ex - jitter * ny_ / len,
                        t * ny_ + jitter * ex / len,
                        8.0, // ~3 km
                    )
                }
            }
        } else {
            let i = rng.random_range(0..self.sites.len());
            self.rural(rng, i)
        };

        let s = &self.sites[idx];
        let lat = (s.lat + dy / KM_PER_DEG_LAT).clamp(-89.9, 89.9);
        let lon = wrap_lon(s.lon + dx * s.inv_km_lon);
        c.lon.push(lon);
        c.lat.push(lat);

        let u: f64 = rng.random();
        let radio = RADIO_CDF.iter().position(|&p| u < p).unwrap_or(LTE);
        c.radio.push(radio as i8);
        c.mcc.push(s.mcc);
        // Geometric-ish operator choice.
        let net_i = ((-rng.random::<f64>().ln()) / 0.7) as usize;
        let net = NETS[net_i.min(NETS.len() - 1)];
        c.net.push(net);
        // Area (LAC/TAC) is shared by towers of one operator in one
        // ~20 km box, like real location areas.
        let qa = (lat * 5.0).floor() as i64 as u64;
        let qo = (lon * 5.0).floor() as i64 as u64;
        let h = mix64(
            qa.wrapping_mul(0x1_0000_0001)
                ^ qo.rotate_left(17)
                ^ ((net as u64) << 48)
                ^ u64::from(s.mcc),
        );
        c.area.push((h % 65_534) as i32 + 1);
        let cell = match radio {
            GSM | CDMA => rng.random_range(1..65_536),
            UMTS => (rng.random_range(0..4096i64) << 16) | rng.random_range(1..65_536),
            LTE => (rng.random_range(0..(1i64 << 20)) << 8) | rng.random_range(0..4),
            _ => (rng.random_range(0..(1i64 << 24)) << 12) | rng.random_range(0..4),
        };
        c.cell.push(cell);
        let n: f64 = rng.sample(StandardNormal);
        c.range
            .push((range_mu + 0.9 * n).exp().clamp(100.0, 50_000.0) as i32);
        let n: f64 = rng.sample(StandardNormal);
        c.samples
            .push((1.2 + 1.5 * n).exp().clamp(1.0, 100_000.0) as i32);
        let (t0, t1) = CREATED[radio];
        // u^0.6 skews first sightings towards recent years, as crowdsourced
        // data grew over time.
        let f = rng.random::<f64>().powf(0.6);
        c.created.push(t0 + ((t1 - t0 - 1) as f64 * f) as i64);
        // OpenCelliD reports 0 when no measurement carried a signal.
        let signal = if rng.random::<f64>() < 0.65 {
            0
        } else {
            let n: f64 = rng.sample(StandardNormal);
            (SIGNAL_MEAN[radio] + 12.0 * n).round().clamp(-121.0, -51.0) as i32
        };
        c.signal.push(signal);
        debug_assert!(radio != NR || c.created.last().copied().unwrap_or(0) >= CREATED[NR].0);
    }

    /// Sparse rural point 30-200 km from city `i`.
    #[inline]
    fn rural(&self, rng: &mut Pcg64Mcg, i: usize) -> (usize, f64, f64, f64) {
        let r = 30.0 + 170.0 * rng.random::<f64>();
        let (sin, cos) = (rng.random::<f64>() * std::f64::consts::TAU).sin_cos();
        (i, r * cos, r * sin, 8.3) // ~4 km
    }
}

/// Wraps a longitude into [-180, 180).
#[inline]
pub(crate) fn wrap_lon(lon: f64) -> f64 {
    if (-180.0..180.0).contains(&lon) {
        lon
    } else {
        (lon + 180.0).rem_euclid(360.0) - 180.0
    }
}
