//! Query-string parsing into the engine's typed requests. Every parameter is
//! validated; unknown values get a 400 listing the valid choices.

use super::error::ApiError;
use crate::geo::MercatorBox;
use crate::query::{Agg, Filter};
use crate::render::{Scale, Style};
use crate::shade::{self, Colormap, How, Shape};
use crate::store::Manifest;

/// Parameter names each endpoint accepts, for the "unknown parameter" check.
pub const RENDER_PARAMS: &[&str] = &[
    "agg",
    "how",
    "cmap",
    "color_key",
    "span",
    "spread",
    "shape",
    "dynspread",
    "scale",
    "tile_size",
    "background",
    "alpha",
    "min_alpha",
    "rescale_discrete_levels",
    "filter",
];

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
    /// Parse a raw query string; `extra` names the endpoint's own
    /// parameters besides [`RENDER_PARAMS`], which are returned for it.
    pub fn parse(
        raw: Option<&str>,
        m: &Manifest,
        extra: &[&str],
    ) -> Result<(RenderQuery, Params), ApiError> {
        let p = Params::parse(raw)?;
        p.only(&[RENDER_PARAMS, extra])?;
        Ok((RenderQuery::from_params(&p, m)?, p))
    }

    /// The same from parameters already decoded (the CLI's flags).
    pub fn from_params(p: &Params, m: &Manifest) -> Result<RenderQuery, ApiError> {
        let agg = p.agg(m)?;
        let filters = p.filters(m)?;
        let style = p.style(m, &agg)?;
        let tile_size = p.tile_size()?;
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

    /// Reject parameters not in `allowed` (typos would otherwise be silently ignored).
    pub fn only(&self, allowed: &[&[&str]]) -> Result<(), ApiError> {
        for (k, _) in &self.0 {
            if !allowed.iter().any(|a| a.contains(&k.as_str())) {
                let valid: Vec<&str> = allowed.iter().flat_map(|a| a.iter().copied()).collect();
                return Err(ApiError::bad_request(format!(
                    "unknown parameter {k:?}; valid parameters: {}",
                    valid.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// Parse a number parameter with bounds.
    pub fn num<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
        &self,
        key: &str,
        default: T,
        min: T,
        max: T,
    ) -> Result<T, ApiError> {
        match self.get(key) {
            None => Ok(default),
            Some(s) => {
                let v: T = s.trim().parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "{key} must be a number in {min}..={max}, got {s:?}"
                    ))
                })?;
                // Written so that NaN, which compares false, fails too.
                #[allow(clippy::neg_cmp_op_on_partial_ord)]
                if !(v >= min && v <= max) {
                    return Err(ApiError::bad_request(format!(
                        "{key} must be in {min}..={max}, got {s}"
                    )));
                }
                Ok(v)
            }
        }
    }

    /// `tile_size`: 256 (default) or 512, as XYZ tiles come; every
    /// endpoint that takes it shares this one rule.
    pub fn tile_size(&self) -> Result<u32, ApiError> {
        match self.get("tile_size").map(str::trim) {
            None | Some("256") => Ok(256),
            Some("512") => Ok(512),
            Some(o) => Err(ApiError::bad_request(format!(
                "tile_size must be 256 or 512, got {o:?}"
            ))),
        }
    }

    /// Required float parameter.
    pub fn float(&self, key: &str) -> Result<f64, ApiError> {
        let s = self
            .get(key)
            .ok_or_else(|| ApiError::bad_request(format!("missing parameter {key}")))?;
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| ApiError::bad_request(format!("{key} must be a number, got {s:?}")))?;
        if !v.is_finite() {
            return Err(ApiError::bad_request(format!("{key} must be finite")));
        }
        Ok(v)
    }

    /// The aggregation (default `count`).
    pub fn agg(&self, m: &Manifest) -> Result<Agg, ApiError> {
        let agg = Agg::parse(self.get("agg").unwrap_or("count"))?;
        agg.validate(m)?;
        Ok(agg)
    }

    /// All `filter` parameters, parsed against the dataset.
    pub fn filters(&self, m: &Manifest) -> Result<Vec<Filter>, ApiError> {
        let mut fs: Vec<Filter> = self
            .all("filter")
            .into_iter()
            .map(|f| Filter::parse(f, m).map_err(ApiError::from))
            .collect::<Result<_, _>>()?;
        // Canonical order, so equivalent URLs share cache entries.
        fs.sort_by_key(|f| f.to_text(m));
        Ok(fs)
    }

    /// `bbox=west,south,east,north` in degrees, if given.
    pub fn bbox(&self) -> Result<Option<MercatorBox>, ApiError> {
        let Some(s) = self.get("bbox") else {
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
        if let Some(h) = self.get("how") {
            st.shade.how = h.parse::<How>()?;
        }
        if let Some(c) = self.get("cmap") {
            st.shade.cmap = if c.contains(',') || c.starts_with('#') {
                Colormap::from_hex_list(c)?
            } else {
                Colormap::named(c)
                    .or_else(|e| shade::parse_color(c).map(Colormap::single).map_err(|_| e))?
            };
        }
        // As in Datashader, a colour key only matters to categorical
        // aggregations; others ignore it (it is still checked to parse).
        if let Some(k) = self.get("color_key") {
            if agg.category_column().is_some() {
                st.color_key = Some(color_key(k, m, agg)?);
            } else {
                shade::parse_color_list(k)?;
            }
        }
        if let Some(s) = self.get("span") {
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
        st.spread = self.num("spread", 0u32, 0, 16)?;
        if let Some(s) = self.get("shape") {
            st.shape = s.parse::<Shape>().map_err(ApiError::bad_request)?;
        }
        if let Some(d) = self.get("dynspread") {
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
        if let Some(s) = self.get("scale") {
            st.scale = s.parse::<Scale>().map_err(ApiError::bad_request)?;
        }
        if let Some(b) = self.get("background") {
            st.background = Some(shade::parse_color(b)?);
        }
        st.shade.alpha = self.num("alpha", 255u8, 0, 255)?;
        st.shade.min_alpha = self.num("min_alpha", 40u8, 0, 255)?;
        if st.shade.min_alpha > st.shade.alpha {
            return Err(ApiError::bad_request("min_alpha must not exceed alpha"));
        }
        st.shade.rescale_discrete_levels = match self.get("rescale_discrete_levels") {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(o) => {
                return Err(ApiError::bad_request(format!(
                    "rescale_discrete_levels must be true or false, got {o:?}"
                )));
            }
        };
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
