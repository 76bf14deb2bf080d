//! Every query parameter of the HTTP API, declared once.
//!
//! A [`Param`] carries a parameter's name, description, default and bounds.
//! The handlers parse with it ([`super::params::Params`] reads the bounds
//! and the default from it), the unknown-parameter check lists the
//! endpoint's [`Param`]s, and `/openapi.json` is generated from the same
//! values, so the three cannot drift apart. Grammars whose valid values
//! follow from the served datasets (aggregations, filters) are named by a
//! [`Grammar`], which the OpenAPI generator turns into an enumeration or a
//! pattern of exactly what the catalog accepts.

use crate::geo::MAX_ZOOM;
use crate::query::histogram::MAX_BINS;
use crate::query::points::{MAX_POINTS, MAX_RADIUS_PX};
use crate::render::Scale;
use crate::shade::{How, Shape};

/// Longest side of a `/aggregate` grid.
pub const MAX_AGGREGATE_SIDE: u32 = 4096;

/// How a parameter's value is checked.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// An integer in `min..=max`.
    Int {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
        /// When absent.
        default: i64,
    },
    /// One of a few integers.
    IntOf {
        /// The values.
        values: &'static [i64],
        /// When absent.
        default: i64,
    },
    /// A finite number in `min..=max`; required when there is no default.
    Number {
        /// Smallest value.
        min: f64,
        /// Largest value.
        max: f64,
        /// When absent (`None`: the parameter is required).
        default: Option<f64>,
    },
    /// One of a few words.
    Word {
        /// The words.
        values: &'static [&'static str],
        /// When absent.
        default: &'static str,
    },
    /// `true`/`false` (or `1`/`0`).
    Bool {
        /// When absent.
        default: bool,
    },
    /// Text with a grammar of its own.
    Text {
        /// Its grammar.
        grammar: Grammar,
        /// When absent, if anything.
        default: Option<&'static str>,
        /// Whether a request must give it.
        required: bool,
    },
}

/// Grammars of text parameters; the OpenAPI generator writes each as an
/// enumeration or a pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grammar {
    /// `count`, `sum:COL`, `count_cat:CAT`, `by:CAT:sum:COL`, …
    Agg,
    /// `COL:MIN..MAX` or `COL:in:A,B` (repeatable).
    Filter,
    /// A colormap name (optionally `_r`) or a list of hex colours.
    Cmap,
    /// Hex colours in category order, or `LABEL:COLOUR` pairs.
    ColorKey,
    /// `min,max`.
    Span,
    /// `threshold[,max_px]`.
    Dynspread,
    /// One colour.
    Colour,
    /// `west,south,east,north` in degrees.
    Bbox,
    /// A dataset version: hex digits.
    Version,
    /// `COL:STEP`: the numeric or temporal column being brushed, and the
    /// decimal step its bounds are rounded to.
    Brush,
}

/// One query parameter.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Its name in the query string.
    pub name: &'static str,
    /// What it means (the OpenAPI description).
    pub desc: &'static str,
    /// Its values.
    pub kind: Kind,
}

impl Param {
    /// Whether a request must give it.
    pub fn required(&self) -> bool {
        match self.kind {
            Kind::Number { default, .. } => default.is_none(),
            Kind::Text { required, .. } => required,
            _ => false,
        }
    }

    /// Whether it may be given more than once (all values count).
    pub fn repeated(&self) -> bool {
        matches!(
            self.kind,
            Kind::Text {
                grammar: Grammar::Filter,
                ..
            }
        )
    }
}

const fn text(name: &'static str, desc: &'static str, grammar: Grammar) -> Param {
    Param {
        name,
        desc,
        kind: Kind::Text {
            grammar,
            default: None,
            required: false,
        },
    }
}

const fn int(name: &'static str, desc: &'static str, min: i64, max: i64, default: i64) -> Param {
    Param {
        name,
        desc,
        kind: Kind::Int { min, max, default },
    }
}

/// `agg`.
pub const AGG: Param = Param {
    name: "agg",
    desc: "Reduction: count, any, sum:COL, mean:COL, min:COL, max:COL, std:COL, var:COL, count_cat:CAT, by:CAT:sum:COL or by:CAT:mean:COL",
    kind: Kind::Text {
        grammar: Grammar::Agg,
        default: Some("count"),
        required: false,
    },
};
/// `how`.
pub const HOW: Param = Param {
    name: "how",
    desc: "Normalization",
    kind: Kind::Word {
        values: &How::NAMES,
        default: "eq_hist",
    },
};
/// `cmap`.
pub const CMAP: Param = Param {
    name: "cmap",
    desc: "Colormap name (optionally reversed with _r), or a comma-separated list of hex colours",
    kind: Kind::Text {
        grammar: Grammar::Cmap,
        default: Some("fire"),
        required: false,
    },
};
/// `color_key`.
pub const COLOR_KEY: Param = text(
    "color_key",
    "Category colours with count_cat/by aggregations: hex colours in category order, or LABEL:COLOUR pairs",
    Grammar::ColorKey,
);
/// `span`.
pub const SPAN: Param = text(
    "span",
    "min,max of the colour scale, min <= max (not with how=eq_hist, as in Datashader)",
    Grammar::Span,
);
/// `spread`.
pub const SPREAD: Param = int("spread", "Spread each point by N pixels", 0, 16, 0);
/// `shape`.
pub const SHAPE: Param = Param {
    name: "shape",
    desc: "Spread shape",
    kind: Kind::Word {
        values: &Shape::NAMES,
        default: "circle",
    },
};
/// `dynspread`.
pub const DYNSPREAD: Param = text(
    "dynspread",
    "threshold[,max_px]: Datashader's dynspread (threshold 0..=1, max_px 0..=16)",
    Grammar::Dynspread,
);
/// `scale`.
pub const SCALE: Param = Param {
    name: "scale",
    desc: "zoom: one colour scale per zoom level (seamless; over large datasets estimated from a bounded sample of the rows); exact: the same, always exact; tile: per tile (Datashader)",
    kind: Kind::Word {
        values: &Scale::NAMES,
        default: "zoom",
    },
};
/// `tile_size`: every endpoint that takes it shares this one rule.
pub const TILE_SIZE: Param = Param {
    name: "tile_size",
    desc: "Tile side in pixels (the size the zoom's pixels refer to)",
    kind: Kind::IntOf {
        values: &[256, 512],
        default: 256,
    },
};
/// `background`.
pub const BACKGROUND: Param = text("background", "Opaque background colour", Grammar::Colour);
/// `alpha`.
pub const ALPHA: Param = int("alpha", "Alpha of coloured pixels", 0, 255, 255);
/// `min_alpha`.
pub const MIN_ALPHA: Param = int(
    "min_alpha",
    "Lowest alpha (single-colour and categorical), at most alpha",
    0,
    255,
    40,
);
/// `rescale_discrete_levels`.
pub const RESCALE_DISCRETE_LEVELS: Param = Param {
    name: "rescale_discrete_levels",
    desc: "Datashader's rescale_discrete_levels for eq_hist",
    kind: Kind::Bool { default: false },
};
/// `filter` (repeatable).
pub const FILTER: Param = text(
    "filter",
    "Repeatable; all must hold. COL:MIN..MAX on a numeric or temporal column (either end may be empty; MIN <= MAX; temporal bounds as epoch milliseconds or ISO 8601 dates and times), or COL:in:A,B on a categorical column.",
    Grammar::Filter,
);
/// Longest `v` accepted (a version is 16 hex digits; room for others').
pub const MAX_VERSION_LEN: usize = 64;
/// `v` of a tile: the dataset version the URL was made for (TileJSON puts
/// it there). A tile whose `v` is the served version is immutable.
pub const VERSION: Param = text(
    "v",
    "Dataset version the tile URL was made for (from TileJSON): when it is the version served, the tile is Cache-Control immutable",
    Grammar::Version,
);
/// `brush`: a hint that a range filter is being dragged.
pub const BRUSH: Param = text(
    "brush",
    "COL:STEP. A range filter on COL is being dragged and its bounds are multiples of STEP (a decimal; epoch milliseconds for temporal columns). The server then counts the other columns once per step of COL and answers each later bound from those counts, exactly; bounds off the steps are scanned as without it.",
    Grammar::Brush,
);
/// `bbox`, optional.
pub const BBOX: Param = text(
    "bbox",
    "west,south,east,north in degrees, west < east, south < north; latitudes are clamped to ±85.0511° (the Web Mercator square)",
    Grammar::Bbox,
);
/// `bbox`, required.
pub const BBOX_REQUIRED: Param = Param {
    kind: Kind::Text {
        grammar: Grammar::Bbox,
        default: None,
        required: true,
    },
    ..BBOX
};
/// `z` of `/legend` and `/points`.
pub const ZOOM: Param = int("z", "Zoom", 0, MAX_ZOOM as i64, 0);
/// `bins` of histograms.
pub const BINS: Param = int(
    "bins",
    "Bins for numeric and temporal columns",
    1,
    MAX_BINS as i64,
    50,
);
/// `width` of `/aggregate`.
pub const WIDTH: Param = int(
    "width",
    "Grid width in pixels",
    1,
    MAX_AGGREGATE_SIDE as i64,
    256,
);
/// `height` of `/aggregate`.
pub const HEIGHT: Param = int(
    "height",
    "Grid height in pixels",
    1,
    MAX_AGGREGATE_SIDE as i64,
    256,
);
/// `format` of `/aggregate`.
pub const FORMAT: Param = Param {
    name: "format",
    desc: "npy, or json (at most 262,144 cells × categories)",
    kind: Kind::Word {
        values: &["npy", "json"],
        default: "npy",
    },
};
/// `format` of TileJSON: the tile URLs' image format.
pub const IMAGE_FORMAT: Param = Param {
    name: "format",
    desc: "Image format of the tile URLs: png, or webp (lossless)",
    kind: Kind::Word {
        values: &["png", "webp"],
        default: "png",
    },
};
/// `lon` of `/points`.
pub const LON: Param = Param {
    name: "lon",
    desc: "Longitude",
    kind: Kind::Number {
        min: -180.0,
        max: 180.0,
        default: None,
    },
};
/// `lat` of `/points`.
pub const LAT: Param = Param {
    name: "lat",
    desc: "Latitude",
    kind: Kind::Number {
        min: -90.0,
        max: 90.0,
        default: None,
    },
};
/// `radius_px` of `/points`.
pub const RADIUS_PX: Param = Param {
    name: "radius_px",
    desc: "Search radius in pixels",
    kind: Kind::Number {
        min: 0.0,
        max: MAX_RADIUS_PX,
        default: Some(8.0),
    },
};
/// `limit` of `/points`.
pub const LIMIT: Param = int("limit", "Most points returned", 1, MAX_POINTS as i64, 5);

/// What tiles, TileJSON and legends share: how to aggregate and colour.
pub const RENDER: &[Param] = &[
    AGG,
    HOW,
    CMAP,
    COLOR_KEY,
    SPAN,
    SPREAD,
    SHAPE,
    DYNSPREAD,
    SCALE,
    TILE_SIZE,
    BACKGROUND,
    ALPHA,
    MIN_ALPHA,
    RESCALE_DISCRETE_LEVELS,
    FILTER,
];

/// The query parameters of one endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    /// Shared groups and the endpoint's own, in documentation order.
    pub groups: &'static [&'static [Param]],
}

impl Endpoint {
    /// Every parameter, in order.
    pub fn params(&self) -> impl Iterator<Item = &'static Param> + '_ {
        self.groups.iter().flat_map(|g| g.iter())
    }
}

/// `/tiles/{name}/{z}/{x}/{y}.png` (or `.webp`).
pub const TILE: Endpoint = Endpoint {
    groups: &[RENDER, &[VERSION]],
};
/// `/datasets/{name}/tilejson`.
pub const TILEJSON: Endpoint = Endpoint {
    groups: &[RENDER, &[IMAGE_FORMAT]],
};
/// `/datasets/{name}/legend`.
pub const LEGEND: Endpoint = Endpoint {
    groups: &[
        &[Param {
            desc: "Zoom whose colour scale to describe",
            ..ZOOM
        }],
        RENDER,
    ],
};
/// `/datasets/{name}/histogram/{column}`.
pub const HISTOGRAM: Endpoint = Endpoint {
    groups: &[&[BINS, BBOX, FILTER, BRUSH]],
};
/// `/datasets/{name}/count`.
pub const COUNT: Endpoint = Endpoint {
    groups: &[&[BBOX, FILTER, BRUSH]],
};
/// `/datasets/{name}/aggregate`.
pub const AGGREGATE: Endpoint = Endpoint {
    groups: &[&[BBOX_REQUIRED, WIDTH, HEIGHT, AGG, FORMAT, FILTER]],
};
/// `/datasets/{name}/points`.
pub const POINTS: Endpoint = Endpoint {
    groups: &[&[LON, LAT, ZOOM, RADIUS_PX, LIMIT, TILE_SIZE, FILTER]],
};
/// Endpoints without query parameters (`/datasets/{name}` and the rest).
pub const NONE: Endpoint = Endpoint { groups: &[] };

#[cfg(test)]
mod tests {
    use super::*;

    /// Every word a spec lists parses as the engine's value, and the
    /// defaults are among the values, so a renamed variant cannot leave the
    /// declaration (and the OpenAPI document) behind.
    #[test]
    fn words_parse_and_defaults_are_values() {
        for w in How::NAMES {
            w.parse::<How>().unwrap();
        }
        for w in Shape::NAMES {
            w.parse::<Shape>().unwrap();
        }
        for w in Scale::NAMES {
            w.parse::<Scale>().unwrap();
        }
        for e in [TILE, LEGEND, HISTOGRAM, COUNT, AGGREGATE, POINTS] {
            for p in e.params() {
                match p.kind {
                    Kind::Word { values, default } => {
                        assert!(values.contains(&default), "{}", p.name)
                    }
                    Kind::IntOf { values, default } => {
                        assert!(values.contains(&default), "{}", p.name)
                    }
                    Kind::Int { min, max, default } => {
                        assert!((min..=max).contains(&default), "{}", p.name)
                    }
                    Kind::Number { min, max, default } => {
                        assert!(
                            default.is_none_or(|d| (min..=max).contains(&d)),
                            "{}",
                            p.name
                        )
                    }
                    _ => {}
                }
            }
        }
        assert_eq!(How::default().to_string(), "eq_hist");
        assert!(Scale::default() == "zoom".parse().unwrap());
    }

    #[test]
    fn names_are_unique_per_endpoint() {
        for e in [TILE, LEGEND, HISTOGRAM, COUNT, AGGREGATE, POINTS] {
            let mut names: Vec<&str> = e.params().map(|p| p.name).collect();
            let n = names.len();
            names.sort();
            names.dedup();
            assert_eq!(names.len(), n);
        }
    }
}
