//! Query-string parsing into the engine's typed requests. Every parameter is
//! validated; unknown values get a 400 listing the valid choices.

use super::error::ApiError;
use super::spec::{self, Endpoint, Kind, Param};
use crate::geo::MercatorBox;
use crate::query::{Agg, Filter};
use crate::render::{Scale, Style};
use crate::shade::{self, Colormap, How, Shape};
use crate::store::Manifest;

/// The rendering parameters that tiles, TileJSON and legends share, parsed
/// and checked against a dataset by one function.
#[derive(Debug, Clone)]
pub struct RenderQuery {
    /// The reduction.
    pub agg: Agg,
    /// Filters, in canonical order.
    pub filters: Vec<Filter>,
    /// How the grid becomes pixels.
    pub style: Style,
    /// 256 or 512.
    pub tile_size: u32,
}

impl RenderQuery {
    /// Parse a raw query string held to `endpoint`'s parameters (which
    /// include [`spec::RENDER`]); the parameters are returned for the
    /// endpoint's own.
    pub fn parse(
        raw: Option<&str>,
        m: &Manifest,
        endpoint: &Endpoint,
    ) -> Result<(RenderQuery, Params), ApiError> {
        let p = Params::parse(raw)?;
        p.only(endpoint)?;
        Ok((RenderQuery::from_params(&p, m)?, p))
    }

    /// The same from parameters already decoded (the CLI's flags).
    pub fn from_params(p: &Params, m: &Manifest) -> Result<RenderQuery, ApiError> {
        let agg = p.agg(m)?;
        let filters = p.filters(m)?;
        let style = p.style(m, &agg)?;
        let tile_size = p.int(&spec::TILE_SIZE)? as u32;
        Ok(RenderQuery {
            agg,
            filters,
            style,
            tile_size,
        })
    }
}

/// Decoded query parameters, keeping repeated keys in order.
#[derive(Debug, Default, Clone)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// Parse a raw query string.
    pub fn parse(raw: Option<&str>) -> Result<Params, ApiError> {
        let raw = raw.unwrap_or("");
        serde_urlencoded::from_str::<Vec<(String, String)>>(raw)
            .map(Params)
            .map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))
    }

    /// The last value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Reject parameters `endpoint` does not take (typos would otherwise be
    /// silently ignored) and requests missing a required one. Of a
    /// parameter given twice the last counts, except `filter`, which is
    /// repeatable.
    pub fn only(&self, endpoint: &Endpoint) -> Result<(), ApiError> {
        for (k, _) in &self.0 {
            if !endpoint.params().any(|p| p.name == k) {
                let valid: Vec<&str> = endpoint.params().map(|p| p.name).collect();
                return Err(ApiError::bad_request(if valid.is_empty() {
                    format!("unknown parameter {k:?}; this endpoint takes none")
                } else {
                    format!(
                        "unknown parameter {k:?}; valid parameters: {}",
                        valid.join(", ")
                    )
                }));
            }
        }
        for p in endpoint.params() {
            if p.required() && self.get(p.name).is_none() {
                return Err(ApiError::bad_request(format!(
                    "missing parameter {}: {}",
                    p.name, p.desc
                )));
            }
        }
        Ok(())
    }

    /// An integer parameter ([`Kind::Int`] or [`Kind::IntOf`]), its default
    /// when absent.
    pub fn int(&self, p: &Param) -> Result<i64, ApiError> {
        let default = match p.kind {
            Kind::Int { default, .. } | Kind::IntOf { default, .. } => default,
            _ => unreachable!("{} is not an integer parameter", p.name),
        };
        let Some(s) = self.get(p.name) else {
            return Ok(default);
        };
        let ok = |v: i64| match p.kind {
            Kind::Int { min, max, .. } => (min..=max).contains(&v),
            Kind::IntOf { values, .. } => values.contains(&v),
            _ => false,
        };
        match s.trim().parse::<i64>() {
            Ok(v) if ok(v) => Ok(v),
            _ => {
                // The rule is only spelled out for an error.
                let rule = match p.kind {
                    Kind::Int { min, max, .. } => format!("an integer in {min}..={max}"),
                    Kind::IntOf { values, .. } => {
                        let list: Vec<String> = values.iter().map(|v| v.to_string()).collect();
                        format!("one of {}", list.join(", "))
                    }
                    _ => String::new(),
                };
                Err(ApiError::bad_request(format!(
                    "{} must be {rule}, got {s:?}",
                    p.name
                )))
            }
        }
    }

    /// A number parameter ([`Kind::Number`]): finite, in bounds.
    pub fn number(&self, p: &Param) -> Result<f64, ApiError> {
        let Kind::Number { min, max, default } = p.kind else {
            unreachable!("{} is not a number parameter", p.name)
        };
        let Some(s) = self.get(p.name) else {
            return default
                .ok_or_else(|| ApiError::bad_request(format!("missing parameter {}", p.name)));
        };
        match s.trim().parse::<f64>() {
            // NaN fails the range test, so it is refused with the rest.
            Ok(v) if (min..=max).contains(&v) => Ok(v),
            _ => Err(ApiError::bad_request(format!(
                "{} must be a number in {min}..={max}, got {s:?}",
                p.name
            ))),
        }
    }

    /// A word parameter ([`Kind::Word`]), its default when absent.
    pub fn word(&self, p: &Param) -> Result<&'static str, ApiError> {
        let Kind::Word { values, default } = p.kind else {
            unreachable!("{} is not a word parameter", p.name)
        };
        let Some(s) = self.get(p.name) else {
            return Ok(default);
        };
        values
            .iter()
            .copied()
            .find(|v| *v == s.trim())
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{} must be one of {}, got {s:?}",
                    p.name,
                    values.join(", ")
                ))
            })
    }

    /// A boolean parameter ([`Kind::Bool`]).
    pub fn flag(&self, p: &Param) -> Result<bool, ApiError> {
        let Kind::Bool { default } = p.kind else {
            unreachable!("{} is not a boolean parameter", p.name)
        };
        match self.get(p.name).map(str::trim) {
            None => Ok(default),
            Some("true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(o) => Err(ApiError::bad_request(format!(
                "{} must be true or false, got {o:?}",
                p.name
            ))),
        }
    }

    /// The aggregation (default `count`).
    pub fn agg(&self, m: &Manifest) -> Result<Agg, ApiError> {
        let agg = Agg::parse(self.get(spec::AGG.name).unwrap_or("count"))?;
        agg.validate(m)?;
        Ok(agg)
    }

    /// All `filter` parameters, parsed against the dataset.
    pub fn filters(&self, m: &Manifest) -> Result<Vec<Filter>, ApiError> {
        let raw = self.all(spec::FILTER.name);
        if raw.len() > crate::query::MAX_FILTERS {
            return Err(ApiError::bad_request(format!(
                "at most {} filters, got {}",
                crate::query::MAX_FILTERS,
                raw.len()
            )));
        }
        let mut fs: Vec<Filter> = raw
            .into_iter()
            .map(|f| Filter::parse(f, m).map_err(ApiError::from))
            .collect::<Result<_, _>>()?;
        // Canonical order, so equivalent URLs share cache entries.
        fs.sort_by_key(|f| f.to_text(m));
        Ok(fs)
    }

    /// `v`, the dataset version a tile URL names, if given: lowercase hex
    /// digits, at most [`spec::MAX_VERSION_LEN`].
    pub fn version(&self) -> Result<Option<&str>, ApiError> {
        let Some(v) = self.get(spec::VERSION.name) else {
            return Ok(None);
        };
        let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if v.is_empty() || v.len() > spec::MAX_VERSION_LEN || !v.bytes().all(hex) {
            return Err(ApiError::bad_request(format!(
                "v must be a dataset version (at most {} lowercase hex digits, as TileJSON gives), got {v:?}",
                spec::MAX_VERSION_LEN
            )));
        }
        Ok(Some(v))
    }

    /// `bbox=west,south,east,north` in degrees, if given.
    pub fn bbox(&self) -> Result<Option<MercatorBox>, ApiError> {
        let Some(s) = self.get(spec::BBOX.name) else {
            return Ok(None);
        };
        let v: Vec<f64> = s
            .split(',')
            .map(|x| x.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| {
                ApiError::bad_request(format!(
                    "bbox must be west,south,east,north in degrees, got {s:?}"
                ))
            })?;
        if v.len() != 4 || v.iter().any(|x| !x.is_finite()) || v[0] >= v[2] || v[1] >= v[3] {
            return Err(ApiError::bad_request(format!(
                "bbox must be four finite numbers west,south,east,north with west < east and south < north, got {s:?}"
            )));
        }
        if v[0] < -180.0 || v[2] > 180.0 || v[1] < -90.0 || v[3] > 90.0 {
            return Err(ApiError::bad_request(format!(
                "bbox {s:?} is outside -180..180, -90..90"
            )));
        }
        Ok(Some(MercatorBox::from_lnglat(v[0], v[1], v[2], v[3])))
    }

    /// The rendering style.
    pub fn style(&self, m: &Manifest, agg: &Agg) -> Result<Style, ApiError> {
        let mut st = Style::default();
        st.shade.how = self.word(&spec::HOW)?.parse::<How>()?;
        if let Some(c) = self.get(spec::CMAP.name) {
            st.shade.cmap = if c.contains(',') || c.starts_with('#') {
                Colormap::from_hex_list(c)?
            } else {
                Colormap::named(c)
                    .or_else(|e| shade::parse_color(c).map(Colormap::single).map_err(|_| e))?
            };
        }
        // As in Datashader, a colour key only matters to categorical
        // aggregations; others ignore it (it is still checked to parse).
        if let Some(k) = self.get(spec::COLOR_KEY.name) {
            if agg.category_column().is_some() {
                st.color_key = Some(color_key(k, m, agg)?);
            } else {
                shade::parse_color_list(k)?;
            }
        }
        if let Some(s) = self.get(spec::SPAN.name) {
            let v: Vec<f64> = s
                .split(',')
                .map(|x| x.trim().parse::<f64>())
                .collect::<Result<_, _>>()
                .map_err(|_| ApiError::bad_request(format!("span must be min,max, got {s:?}")))?;
            if v.len() != 2 || !v[0].is_finite() || !v[1].is_finite() || v[0] > v[1] {
                return Err(ApiError::bad_request(format!(
                    "span must be min,max with min <= max, got {s:?}"
                )));
            }
            st.shade.span = Some((v[0], v[1]));
        }
        st.spread = self.int(&spec::SPREAD)? as u32;
        st.shape = self
            .word(&spec::SHAPE)?
            .parse::<Shape>()
            .map_err(ApiError::bad_request)?;
        if let Some(d) = self.get(spec::DYNSPREAD.name) {
            let v: Vec<&str> = d.split(',').collect();
            let threshold: f64 = v[0].parse().map_err(|_| {
                ApiError::bad_request(format!("dynspread must be threshold[,max_px], got {d:?}"))
            })?;
            let max_px: u32 = match v.get(1) {
                Some(p) => p
                    .parse()
                    .map_err(|_| ApiError::bad_request("dynspread max_px must be an integer"))?,
                None => 3,
            };
            if !(0.0..=1.0).contains(&threshold) || max_px > 16 {
                return Err(ApiError::bad_request(
                    "dynspread threshold must be in 0..=1 and max_px <= 16",
                ));
            }
            st.dynspread = Some((threshold, max_px));
        }
        st.scale = self
            .word(&spec::SCALE)?
            .parse::<Scale>()
            .map_err(ApiError::bad_request)?;
        if let Some(b) = self.get(spec::BACKGROUND.name) {
            st.background = Some(shade::parse_color(b)?);
        }
        st.shade.alpha = self.int(&spec::ALPHA)? as u8;
        st.shade.min_alpha = self.int(&spec::MIN_ALPHA)? as u8;
        if st.shade.min_alpha > st.shade.alpha {
            return Err(ApiError::bad_request("min_alpha must not exceed alpha"));
        }
        st.shade.rescale_discrete_levels = self.flag(&spec::RESCALE_DISCRETE_LEVELS)?;
        if st.shade.how == How::EqHist && st.shade.span.is_some() {
            return Err(ApiError::bad_request(
                "span is not allowed with how=eq_hist (as in Datashader)",
            ));
        }
        Ok(st)
    }
}

/// A colour key: a list of colours in category order (`#f00,#0f0`), or
/// `LABEL:COLOUR` pairs (`LTE:#f00,NR:blue`); unnamed categories keep defaults.
pub fn color_key(s: &str, m: &Manifest, agg: &Agg) -> Result<Vec<[u8; 3]>, ApiError> {
    let Some(col) = agg.category_column().and_then(|c| m.column(c)) else {
        return Err(ApiError::bad_request(
            "color_key needs a categorical aggregation (count_cat:COL or by:COL:…)",
        ));
    };
    let labels = &col.categories;
    let mut key = shade::default_color_key(labels.len());
    if s.contains(':') {
        for pair in s.split(',') {
            let (label, colour) = pair.rsplit_once(':').ok_or_else(|| {
                ApiError::bad_request(format!("color_key entry {pair:?} must be LABEL:COLOUR"))
            })?;
            let label = percent_encoding::percent_decode_str(label).decode_utf8_lossy();
            let i = labels.iter().position(|l| *l == label).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "color_key names unknown category {label:?}; categories: {}",
                    labels.join(", ")
                ))
            })?;
            key[i] = shade::parse_color(colour)?;
        }
    } else {
        for (i, c) in s.split(',').enumerate() {
            if i < key.len() {
                key[i] = shade::parse_color(c.trim())?;
            }
        }
    }
    Ok(key)
}
