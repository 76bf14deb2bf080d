//! AIS-like vessel position reports.
//!
//! A fleet is drawn once per run from the seed: each vessel has an MMSI, a
//! type, a length and a motion model. Cargo ships, tankers, passenger ships
//! (and some "Other") shuttle along a sea lane between two ports, dwelling
//! at anchor and at berth in between, slowing down on approach and keeping
//! to the right of the lane; fishing boats, tugs, pleasure craft (and the
//! rest of "Other") stay near a home port, working an area off its
//! approach. Each row is one report from a random vessel at a random time
//! in a 30-day window, so the same vessel's reports trace a consistent
//! track across chunks. Lanes converging on ports, slow approaches, anchor
//! and berth dwell and local traffic make ports the densest places.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use arrow_array::types::Int8Type;
use arrow_array::{
    ArrayRef, DictionaryArray, Float32Array, Float64Array, Int8Array, RecordBatch, StringArray,
    TimestampMicrosecondArray, UInt32Array,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use rand_pcg::Pcg64Mcg;

use super::cities::{AliasTable, KM_PER_DEG_LAT, KM_PER_DEG_LON_EQ};
use super::sea::{Route, SeaNet};
use super::towers::wrap_lon;
use super::{ChunkSource, GenError, derive_seed, micros_at, mix64};

/// Vessel types in dictionary-key order.
pub(crate) const VESSEL_TYPES: [&str; 7] = [
    "Cargo",
    "Tanker",
    "Passenger",
    "Fishing",
    "Tug",
    "Pleasure",
    "Other",
];
const CARGO: u8 = 0;
const TANKER: u8 = 1;
const PASSENGER: u8 = 2;
const FISHING: u8 = 3;
const TUG: u8 = 4;
const PLEASURE: u8 = 5;
const OTHER: u8 = 6;

/// Cumulative share of vessels by type.
const TYPE_CDF: [f64; 7] = [0.33, 0.48, 0.55, 0.73, 0.80, 0.93, 1.0];

/// Start of the reporting window (UTC) and its length: 30 days.
pub(crate) const WINDOW_START_US: i64 = micros_at(2024, 6, 1);
pub(crate) const WINDOW_US: i64 = 30 * 86_400_000_000;
const US_PER_HOUR: f64 = 3_600_000_000.0;
const KMH_PER_KNOT: f64 = 1.852;

/// Stream constant for the fleet seed (see [`derive_seed`]).
const FLEET_STREAM: u64 = 0x0066_6c65_6574; // "fleet"

/// Maritime identification digits (first three MMSI digits) by country;
/// others get a hashed MID in the valid 201..=775 range.
#[rustfmt::skip]
const MID: &[(&str, u32)] = &[
    ("US", 366), ("GB", 232), ("DE", 211), ("NL", 244), ("BE", 205), ("FR", 227), ("ES", 224), ("PT", 263),
    ("IT", 247), ("GR", 237), ("TR", 271), ("NO", 257), ("SE", 265), ("DK", 219), ("FI", 230), ("PL", 261),
    ("RU", 273), ("UA", 272), ("RO", 264), ("BG", 207), ("EE", 276), ("LV", 275), ("HR", 238), ("AL", 201),
    ("IE", 250), ("CN", 412), ("JP", 431), ("KR", 440), ("TW", 416), ("HK", 477), ("SG", 563), ("MY", 533),
    ("ID", 525), ("PH", 548), ("VN", 574), ("IN", 419), ("PK", 463), ("LK", 417), ("BD", 405), ("MM", 506),
    ("AU", 503), ("NZ", 512), ("CA", 316), ("MX", 345), ("BR", 710), ("AR", 701), ("CL", 725), ("PE", 760),
    ("EC", 735), ("CO", 730), ("PA", 351), ("CU", 323), ("JM", 339), ("DO", 327), ("PR", 358), ("ZA", 601),
    ("NG", 657), ("GH", 627), ("CI", 619), ("SN", 663), ("KE", 634), ("TZ", 674), ("MZ", 650), ("AO", 603),
    ("NA", 659), ("EG", 622), ("MA", 242), ("DZ", 605), ("TN", 672), ("IL", 428), ("LB", 450), ("SA", 403),
    ("AE", 470), ("QA", 466), ("KW", 447), ("OM", 461), ("IR", 422), ("YE", 473), ("DJ", 621), ("SD", 662),
    ("SO", 666), ("MU", 645), ("GN", 632), ("SL", 667), ("LR", 636), ("CM", 613), ("GE", 213), ("UY", 770),
];

/// Flags of convenience (Panama, Liberia, Marshall Islands, Hong Kong,
/// Singapore, Malta, Bahamas) carried by many ocean-going ships.
const OPEN_REGISTRY_MIDS: [u32; 10] = [351, 352, 353, 355, 370, 636, 538, 477, 563, 215];

fn mid_for(country: [u8; 2]) -> u32 {
    MID.iter()
        .find(|(cc, _)| cc.as_bytes() == country)
        .map(|&(_, m)| m)
        .unwrap_or_else(|| 201 + (mix64(u64::from(u16::from_le_bytes(country))) % 575) as u32)
}

/// A vessel shuttling along a lane between two ports.
#[derive(Debug, Clone)]
struct Lane {
    route: u32,
    /// Cruise and approach speeds, km/h.
    cruise_kmh: f64,
    slow_kmh: f64,
    /// Length of the slow approach zone at each end, km.
    approach_km: f64,
    /// Hours in port per call (first 40% at anchor, the rest at berth).
    dwell_h: f64,
    /// Hours for one leg (port to port, without dwell).
    leg_h: f64,
    /// Offset into the round-trip cycle, hours.
    phase_h: f64,
    /// Lateral offset from the lane centre line (to the right), km.
    offset_km: f64,
    /// Berth and anchorage positions relative to the port, in units of the
    /// port's approach direction: (along, across) km.
    berth: (f64, f64),
    anchor: (f64, f64),
    /// Ports at each end (for the port approach direction).
    ports: (u16, u16),
}

/// A vessel working an area near its home port.
#[derive(Debug, Clone)]
struct Local {
    port: u16,
    /// Working-area centre relative to the port, km (east, north).
    ground: (f64, f64),
    /// Mooring offset relative to the port, km (east, north).
    berth: (f64, f64),
    /// Radius of the area worked around the centre, km.
    radius_km: f64,
    /// (relative frequency, phase) of the sines tracing the work pattern:
    /// x, y, x, y.
    wave: [(f64, f64); 4],
    /// Cycle length (moored, out, working, back), hours, and phase.
    period_h: f64,
    phase_h: f64,
    /// Fraction of the cycle spent moored.
    moored: f64,
    /// Transit and working speeds, km/h.
    transit_kmh: f64,
    work_kmh: f64,
}

#[derive(Debug, Clone)]
enum Motion {
    Lane(Lane),
    Local(Local),
}

#[derive(Debug, Clone)]
struct Vessel {
    mmsi: u32,
    vtype: u8,
    length: f32,
    motion: Motion,
}

/// Everything shared by all AIS chunks: the sea net, the lanes in use and
/// the fleet. Depends on the seed and the row count (the fleet grows with
/// the dataset so each vessel has a few hundred reports at most).
pub(crate) struct AisModel {
    schema: SchemaRef,
    net: SeaNet,
    /// Unit vector (east, north) from each port towards its approach
    /// waypoint, and the distance to it in km.
    port_dir: Vec<(f64, f64, f64)>,
    routes: Vec<Route>,
    vessels: Vec<Vessel>,
    type_values: ArrayRef,
}

/// Number of vessels for a dataset of `rows` reports.
fn fleet_size(rows: u64) -> usize {
    (rows / 400).clamp(500, 100_000) as usize
}

impl AisModel {
    /// Builds the sea net and draws the fleet for `seed`.
    pub fn new(seed: u64, rows: u64) -> Result<Self, GenError> {
        let net = SeaNet::build()?;
        let port_dir = net
            .ports
            .iter()
            .map(|p| {
                let (nlat, nlon) = net.node(p.attach);
                let ex = wrap_lon(nlon - p.lon) * KM_PER_DEG_LON_EQ * p.lat.to_radians().cos();
                let ny = (nlat - p.lat) * KM_PER_DEG_LAT;
                let d = (ex * ex + ny * ny).sqrt().max(1e-6);
                (ex / d, ny / d, d)
            })
            .collect();
        let mut model = Self {
            schema: schema(),
            net,
            port_dir,
            routes: Vec::new(),
            vessels: Vec::new(),
            type_values: Arc::new(StringArray::from_iter_values(VESSEL_TYPES)),
        };
        model.draw_fleet(derive_seed(seed, FLEET_STREAM, 0), fleet_size(rows))?;
        Ok(model)
    }

    fn draw_fleet(&mut self, seed: u64, n: usize) -> Result<(), GenError> {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let ports = &self.net.ports;
        let by_traffic = AliasTable::new(&ports.iter().map(|p| p.weight).collect::<Vec<_>>())?;
        let by_size = AliasTable::new(&ports.iter().map(|p| p.local_weight).collect::<Vec<_>>())?;
        let mut route_ids: HashMap<(u16, u16), u32> = HashMap::new();
        let mut used_mmsi: HashSet<u32> = HashSet::with_capacity(n);
        let np = ports.len();
        let port_km: Vec<f64> = (0..np * np)
            .map(|i| self.net.port_km(i / np, i % np))
            .collect();
        let mut dest_w = vec![0.0; np];
        self.vessels.reserve(n);

        for _ in 0..n {
            let u: f64 = rng.random();
            let vtype = TYPE_CDF.iter().position(|&p| u < p).unwrap_or(6) as u8;
            let lane = match vtype {
                CARGO | TANKER | PASSENGER => true,
                OTHER => rng.random::<bool>(),
                _ => false,
            };
            let (motion, home) = if lane {
                let a = by_traffic.sample(&mut rng);
                // Destination by traffic and distance: ocean trade falls off
                // slowly with distance, ferries and cruises stay regional.
                for (b, w) in dest_w.iter_mut().enumerate() {
                    *w = if b == a {
                        0.0
                    } else {
                        let d = port_km[a * np + b];
                        let decay = if vtype == PASSENGER {
                            (-d / 400.0).exp()
                        } else {
                            1.0 / (1.0 + d / 4000.0)
                        };
                        ports[b].weight * decay
                    };
                }
                let b = pick_weighted(&mut rng, &dest_w).unwrap_or((a + 1) % ports.len());
                let key = (a.min(b) as u16, a.max(b) as u16);
                let route = match route_ids.get(&key) {
                    Some(&r) => r,
                    None => {
                        let r = self.routes.len() as u32;
                        self.routes
                            .push(self.net.route(key.0 as usize, key.1 as usize));
                        route_ids.insert(key, r);
                        r
                    }
                };
                (Motion::Lane(self.lane(&mut rng, vtype, route, key)), a)
            } else {
                let p = by_size.sample(&mut rng);
                (Motion::Local(self.local(&mut rng, vtype, p)), p)
            };

            let flag = if matches!(vtype, CARGO | TANKER) && rng.random::<f64>() < 0.45 {
                OPEN_REGISTRY_MIDS[rng.random_range(0..OPEN_REGISTRY_MIDS.len())]
            } else {
                mid_for(ports[home].country)
            };
            let mmsi = loop {
                let m = flag * 1_000_000 + rng.random_range(0..1_000_000);
                if used_mmsi.insert(m) {
                    break m;
                }
            };
            let (median, sigma, lo, hi) = match vtype {
                CARGO => (180.0, 0.35, 60.0, 400.0),
                TANKER => (180.0, 0.4, 50.0, 380.0),
                PASSENGER => (120.0, 0.6, 20.0, 360.0),
                FISHING => (22.0, 0.4, 8.0, 100.0),
                TUG => (28.0, 0.2, 15.0, 50.0),
                PLEASURE => (12.0, 0.4, 5.0, 60.0),
                _ => (40.0, 0.6, 10.0, 200.0),
            };
            let z: f64 = rng.sample(StandardNormal);
            let length = (median * (sigma * z).exp()).clamp(lo, hi);
            self.vessels.push(Vessel {
                mmsi,
                vtype,
                length: ((length * 10.0f64).round() / 10.0) as f32,
                motion,
            });
        }
        Ok(())
    }

    fn lane(&self, rng: &mut Pcg64Mcg, vtype: u8, route: u32, ports: (u16, u16)) -> Lane {
        let len = self.routes[route as usize].len_km;
        let n = |rng: &mut Pcg64Mcg| rng.sample::<f64, _>(StandardNormal);
        let cruise_kn = match vtype {
            CARGO => 16.0 + 2.0 * n(rng),
            TANKER => 13.0 + 1.5 * n(rng),
            PASSENGER => 18.0 + 3.0 * n(rng),
            _ => 10.0 + 1.5 * n(rng),
        }
        .clamp(7.0, 26.0);
        let slow_kn = (6.0 + n(rng)).clamp(3.0, 9.0);
        let dwell_h = if vtype == PASSENGER {
            (4.0 * (0.5 * n(rng)).exp()).clamp(1.0, 24.0)
        } else {
            (24.0 * (0.6 * n(rng)).exp()).clamp(4.0, 120.0)
        };
        let approach_km = (len / 4.0).min(25.0);
        let (cruise_kmh, slow_kmh) = (cruise_kn * KMH_PER_KNOT, slow_kn * KMH_PER_KNOT);
        let leg_h = 2.0 * approach_km / slow_kmh + (len - 2.0 * approach_km) / cruise_kmh;
        let period = 2.0 * (dwell_h + leg_h);
        Lane {
            route,
            cruise_kmh,
            slow_kmh,
            approach_km,
            dwell_h,
            leg_h,
            phase_h: rng.random::<f64>() * period,
            // Traffic spreads a few km either side of the nominal lane.
            offset_km: 0.8 + (3.0 * n(rng)).abs(),
            berth: (rng.random_range(0.3..3.0), 0.8 * n(rng)),
            anchor: (rng.random_range(4.0..14.0), 2.5 * n(rng)),
            ports,
        }
    }

    fn local(&self, rng: &mut Pcg64Mcg, vtype: u8, port: usize) -> Local {
        let (ux, uy, node_km) = self.port_dir[port];
        // (min, max) distance of the working area, its radius, cycle hours,
        // moored share, transit and working speed in knots.
        let (dmin, dmax, radius, period, moored, transit_kn, work_kn) = match vtype {
            FISHING => (
                15.0,
                120.0,
                6.0,
                rng.random_range(36.0..120.0),
                0.3,
                9.0,
                3.5,
            ),
            TUG => (1.0, 8.0, 2.0, rng.random_range(6.0..24.0), 0.45, 8.0, 5.0),
            PLEASURE => (3.0, 25.0, 4.0, rng.random_range(24.0..96.0), 0.6, 12.0, 6.0),
            _ => (
                5.0,
                40.0,
                8.0,
                rng.random_range(24.0..120.0),
                0.35,
                10.0,
                6.0,
            ),
        };
        // Stay on the sea side: along the approach direction, not much
        // further than the approach waypoint (beyond it is open water).
        let d: f64 = rng.random_range(dmin..dmax);
        let d = d.min((1.5 * node_km).max(dmin));
        let angle = rng.random_range(-0.6f64..0.6);
        let (s, c) = angle.sin_cos();
        let (gx, gy) = (ux * c - uy * s, ux * s + uy * c);
        let n = |rng: &mut Pcg64Mcg| rng.sample::<f64, _>(StandardNormal);
        Local {
            port: port as u16,
            ground: (gx * d, gy * d),
            berth: (
                ux * rng.random_range(0.2..2.5) + 0.5 * n(rng),
                uy * rng.random_range(0.2..2.5) + 0.5 * n(rng),
            ),
            radius_km: radius * rng.random_range(0.5..1.5),
            wave: std::array::from_fn(|i| {
                let f = if i < 2 {
                    rng.random_range(0.3..0.6)
                } else {
                    rng.random_range(0.8..1.7)
                };
                (f, rng.random_range(0.0..std::f64::consts::TAU))
            }),
            period_h: period,
            phase_h: rng.random::<f64>() * period,
            moored,
            transit_kmh: transit_kn * KMH_PER_KNOT,
            work_kmh: work_kn * KMH_PER_KNOT,
        }
    }
}

/// Draws an index with probability proportional to `w` (linear scan; only
/// used while building the fleet).
fn pick_weighted(rng: &mut Pcg64Mcg, w: &[f64]) -> Option<usize> {
    let total: f64 = w.iter().sum();
    if total.is_nan() || total <= 0.0 {
        return None;
    }
    let mut x = rng.random::<f64>() * total;
    for (i, &wi) in w.iter().enumerate() {
        if x < wi {
            return Some(i);
        }
        x -= wi;
    }
    w.iter().rposition(|&wi| wi > 0.0)
}

/// The Arrow schema of the AIS dataset.
pub(crate) fn schema() -> SchemaRef {
    let utc: Arc<str> = Arc::from("UTC");
    Arc::new(Schema::new(vec![
        Field::new("lon", DataType::Float64, false),
        Field::new("lat", DataType::Float64, false),
        Field::new("mmsi", DataType::UInt32, false),
        Field::new(
            "vessel_type",
            DataType::Dictionary(Box::new(DataType::Int8), Box::new(DataType::Utf8)),
            false,
        ),
        Field::new("sog", DataType::Float32, false),
        Field::new("cog", DataType::Float32, false),
        Field::new("length", DataType::Float32, false),
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Microsecond, Some(utc)),
            false,
        ),
    ]))
}

/// One position fix: (lon, lat, sog knots, cog degrees).
type Fix = (f64, f64, f64, f64);

impl ChunkSource for AisModel {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn dictionary_columns(&self) -> &'static [&'static str] {
        &["mmsi", "vessel_type", "length"]
    }

    fn chunk(&self, seed: u64, rows: usize) -> Result<RecordBatch, GenError> {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let mut lon = Vec::with_capacity(rows);
        let mut lat = Vec::with_capacity(rows);
        let mut mmsi = Vec::with_capacity(rows);
        let mut vtype = Vec::with_capacity(rows);
        let mut sog = Vec::with_capacity(rows);
        let mut cog = Vec::with_capacity(rows);
        let mut length = Vec::with_capacity(rows);
        let mut ts = Vec::with_capacity(rows);
        // Every vessel reports equally often (the remainder goes to a
        // random run of vessels), grouped by vessel and in time order like
        // a real AIS extract; walking the fleet in order also keeps the
        // vessel and route tables cache-friendly.
        let n = self.vessels.len();
        let (base, extra) = (rows / n, rows % n);
        let first_extra = rng.random_range(0..n);
        let mut times: Vec<i64> = Vec::with_capacity(base + 1);
        for (i, v) in self.vessels.iter().enumerate() {
            let k = base + usize::from((i + n - first_extra) % n < extra);
            times.clear();
            times.extend((0..k).map(|_| rng.random_range(0..WINDOW_US)));
            times.sort_unstable();
            for &t_us in &times {
                let t_h = t_us as f64 / US_PER_HOUR;
                let (x, y, s, c) = match &v.motion {
                    Motion::Lane(l) => self.lane_fix(&mut rng, l, t_h),
                    Motion::Local(l) => self.local_fix(&mut rng, l, t_h),
                };
                lon.push(wrap_lon(x));
                lat.push(y.clamp(-89.9, 89.9));
                mmsi.push(v.mmsi);
                vtype.push(v.vtype as i8);
                sog.push(((s.max(0.0) * 10.0).round() / 10.0) as f32);
                cog.push(((c.rem_euclid(360.0) * 10.0).round() / 10.0 % 360.0) as f32);
                length.push(v.length);
                ts.push(WINDOW_START_US + t_us);
            }
        }
        let vessel_type =
            DictionaryArray::<Int8Type>::try_new(Int8Array::from(vtype), self.type_values.clone())?;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Float64Array::from(lon)),
            Arc::new(Float64Array::from(lat)),
            Arc::new(UInt32Array::from(mmsi)),
            Arc::new(vessel_type),
            Arc::new(Float32Array::from(sog)),
            Arc::new(Float32Array::from(cog)),
            Arc::new(Float32Array::from(length)),
            Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("UTC")),
        ];
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

impl AisModel {
    /// Position `(east, north)` km from port `p`, plus jitter, as lon/lat.
    #[inline]
    fn near_port(&self, p: u16, east: f64, north: f64) -> (f64, f64) {
        let port = &self.net.ports[p as usize];
        let lat = port.lat + north / KM_PER_DEG_LAT;
        let lon = port.lon + east / (KM_PER_DEG_LON_EQ * lat.to_radians().cos().max(0.05));
        (lon, lat)
    }

    /// Fix for a lane vessel at `t_h` hours into the window.
    #[inline]
    fn lane_fix(&self, rng: &mut Pcg64Mcg, l: &Lane, t_h: f64) -> Fix {
        let half = l.dwell_h + l.leg_h;
        let mut tau = (t_h + l.phase_h) % (2.0 * half);
        let reverse = tau >= half;
        if reverse {
            tau -= half;
        }
        // The port this leg starts from.
        let from = if reverse { l.ports.1 } else { l.ports.0 };
        let jx: f64 = rng.sample(StandardNormal);
        let jy: f64 = rng.sample(StandardNormal);
        if tau < l.dwell_h {
            let (ux, uy, _) = self.port_dir[from as usize];
            let ((along, across), sog) = if tau < 0.4 * l.dwell_h {
                (l.anchor, 0.1 + 0.1 * jx.abs())
            } else {
                (l.berth, 0.05 * jx.abs())
            };
            let east = ux * along + uy * across + 0.05 * jx;
            let north = uy * along - ux * across + 0.05 * jy;
            let (lon, lat) = self.near_port(from, east, north);
            return (lon, lat, sog, rng.random::<f64>() * 360.0);
        }

        let route = &self.routes[l.route as usize];
        let len = route.len_km;
        let u = tau - l.dwell_h;
        let a = l.approach_km;
        let t_app = a / l.slow_kmh;
        let t_cruise = (len - 2.0 * a).max(0.0) / l.cruise_kmh;
        let (s, kmh) = if u < t_app {
            (u * l.slow_kmh, l.slow_kmh)
        } else if u < t_app + t_cruise {
            (a + (u - t_app) * l.cruise_kmh, l.cruise_kmh)
        } else {
            (
                (len - a + (u - t_app - t_cruise) * l.slow_kmh).min(len),
                l.slow_kmh,
            )
        };
        let along = if reverse { len - s } else { s };
        let (lon, lat, k) = route.at(along);
        let (mut dx, mut dy) = route.dir[k.min(route.dir.len().saturating_sub(1))];
        if reverse {
            dx = -dx;
            dy = -dy;
        }
        // Keep right; lanes merge into the port entrance.
        let taper = (s.min(len - s) / 40.0).clamp(0.0, 1.0);
        let off = l.offset_km * taper;
        let east = dy * off + 0.4 * jx;
        let north = -dx * off + 0.4 * jy;
        let lat2 = lat + north / KM_PER_DEG_LAT;
        let lon2 = lon + east / (KM_PER_DEG_LON_EQ * lat2.to_radians().cos().max(0.05));
        let heading = dx.atan2(dy).to_degrees() + 2.0 * jy;
        let sog = kmh / KMH_PER_KNOT + 0.4 * jx;
        (lon2, lat2, sog, heading)
    }

    /// Fix for a local vessel at `t_h` hours into the window.
    #[inline]
    fn local_fix(&self, rng: &mut Pcg64Mcg, l: &Local, t_h: f64) -> Fix {
        let jx: f64 = rng.sample(StandardNormal);
        let jy: f64 = rng.sample(StandardNormal);
        let phase = ((t_h + l.phase_h) / l.period_h).fract();
        let (gx, gy) = l.ground;
        let dist = (gx * gx + gy * gy).sqrt().max(1e-6);
        let transit_h = dist / l.transit_kmh;
        let transit = (transit_h / l.period_h).min(0.2);
        let work_end = 1.0 - transit;
        let (east, north, sog, cog) = if phase < l.moored {
            let (x, y) = (l.berth.0 + 0.02 * jx, l.berth.1 + 0.02 * jy);
            let (lon, lat) = self.near_port(l.port, x, y);
            return (lon, lat, 0.05 * jx.abs(), rng.random::<f64>() * 360.0);
        } else if phase < l.moored + transit {
            let f = (phase - l.moored) / transit;
            (
                gx * f,
                gy * f,
                l.transit_kmh / KMH_PER_KNOT,
                gx.atan2(gy).to_degrees(),
            )
        } else if phase < work_end {
            // Wander over the working area: two incommensurate sine
            // pairs per axis give a track that never quite repeats.
            let hours = (phase - l.moored - transit) * l.period_h;
            let w = l.work_kmh / l.radius_km.max(0.1);
            let (mut x, mut y, mut vx, mut vy) = (0.0, 0.0, 0.0, 0.0);
            for (i, &(f, p)) in l.wave.iter().enumerate() {
                let amp = if i < 2 { 0.7 } else { 0.3 } * l.radius_km;
                let (sn, cs) = (f * w * hours + p).sin_cos();
                if i % 2 == 0 {
                    x += amp * sn;
                    vx += amp * f * cs;
                } else {
                    y += amp * sn;
                    vy += amp * f * cs;
                }
            }
            (
                gx + x,
                gy + y,
                l.work_kmh / KMH_PER_KNOT,
                vx.atan2(vy).to_degrees(),
            )
        } else {
            let f = (1.0 - phase) / transit.max(1e-9);
            (
                gx * f,
                gy * f,
                l.transit_kmh / KMH_PER_KNOT,
                (-gx).atan2(-gy).to_degrees(),
            )
        };
        let (lon, lat) = self.near_port(l.port, east + 0.1 * jx, north + 0.1 * jy);
        (lon, lat, sog + 0.3 * jy, cog + 3.0 * jx)
    }
}

/// Test helper: km from (lat, lon) to the nearest port city.
#[cfg(test)]
pub(crate) fn km_to_nearest_port(model: &AisModel, lat: f64, lon: f64) -> f64 {
    use super::cities::approx_km;
    model
        .net
        .ports
        .iter()
        .map(|p| approx_km(lat, lon, p.lat, p.lon))
        .fold(f64::INFINITY, f64::min)
}
