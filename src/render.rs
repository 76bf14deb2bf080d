//! The rendering pipeline shared by the CLI and the server:
//! aggregate → (zoom normalization) → shade → spread → background → PNG.

use crate::geo::TileId;
use crate::query::{Agg, Budget, Filter, QueryError, View};
use crate::raster::zoom::ZoomStats;
use crate::raster::{Aggregate, Grid, GridValues, aggregate_within};
use crate::shade::{
    self, CategoricalGrid, Colormap, How, Normalization, Rgba, ScalarGrid, ShadeError,
    ShadeOptions, Shape,
};
use crate::store::Dataset;

/// Where colour normalization comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Scale {
    /// One scale per (dataset, zoom, aggregation, filters): seamless tiles.
    /// Over large datasets it is estimated from a bounded sample of the
    /// rows when no cheaper exact source (overview, query cells) answers.
    #[default]
    Zoom,
    /// As [`Scale::Zoom`], always exact (one pass over the rows when the
    /// overview and the query cells cannot answer).
    Exact,
    /// Each image autoranges on its own pixels (Datashader's behaviour).
    Tile,
}

impl Scale {
    /// Every value's name, as `FromStr` takes them.
    pub const NAMES: [&'static str; 3] = ["zoom", "exact", "tile"];

    /// Whether tiles share one scale per zoom (seamless).
    pub fn seamless(self) -> bool {
        matches!(self, Scale::Zoom | Scale::Exact)
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Scale::Zoom => "zoom",
            Scale::Exact => "exact",
            Scale::Tile => "tile",
        }
    }
}

impl std::str::FromStr for Scale {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "zoom" => Ok(Scale::Zoom),
            "exact" => Ok(Scale::Exact),
            "tile" => Ok(Scale::Tile),
            _ => Err(format!(
                "unknown scale {s:?} (expected zoom, exact or tile)"
            )),
        }
    }
}

/// How to colour a grid.
#[derive(Clone, Debug, PartialEq)]
pub struct Style {
    /// Datashader's `shade` options (how, cmap, alpha, min_alpha, span).
    pub shade: ShadeOptions,
    /// Category colours (default: Datashader's Sets1to3).
    pub color_key: Option<Vec<[u8; 3]>>,
    /// `spread(px)` after shading (0 = none).
    pub spread: u32,
    /// Shape of spreading.
    pub shape: Shape,
    /// `dynspread(threshold, max_px)` instead of a fixed spread.
    pub dynspread: Option<(f64, u32)>,
    /// Opaque background colour, composited under the image.
    pub background: Option<[u8; 3]>,
    /// Colour scale source.
    pub scale: Scale,
}

impl Style {
    /// Pixels the style paints beyond a point's own: spread's radius, or
    /// dynspread's largest. A tile takes rows this far into its neighbours.
    pub fn margin(&self) -> u32 {
        match self.dynspread {
            Some((_, max_px)) => max_px,
            None => self.spread,
        }
    }

    /// A stable text form of everything that affects the pixels, for cache
    /// keys and ETags: unlike `Debug`, it changes only when the pixels do.
    pub fn canonical(&self) -> String {
        let hex = |c: &[u8; 3]| format!("{:02x}{:02x}{:02x}", c[0], c[1], c[2]);
        let list = |cs: &[[u8; 3]]| cs.iter().map(hex).collect::<Vec<_>>().join(",");
        let s = &self.shade;
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        format!(
            "how={};cmap={}{};alpha={};min_alpha={};span={};rdl={};base={};key={};spread={};shape={};dyn={};bg={};scale={}",
            s.how,
            if s.cmap.is_single_color() {
                "single:"
            } else {
                ""
            },
            list(s.cmap.colors()),
            s.alpha,
            s.min_alpha,
            opt(s.span.map(|(a, b)| format!("{a:e},{b:e}"))),
            s.rescale_discrete_levels,
            opt(s.color_baseline.map(|b| format!("{b:e}"))),
            opt(self.color_key.as_deref().map(list)),
            self.spread,
            match self.shape {
                Shape::Circle => "circle",
                Shape::Square => "square",
            },
            opt(self.dynspread.map(|(t, p)| format!("{t:e},{p}"))),
            opt(self.background.as_ref().map(hex)),
            self.scale.name(),
        )
    }
}

impl Default for Style {
    fn default() -> Self {
        Style {
            shade: ShadeOptions {
                cmap: Colormap::named("fire").expect("fire is built in"),
                ..ShadeOptions::default()
            },
            color_key: None,
            spread: 0,
            shape: Shape::Circle,
            dynspread: None,
            background: None,
            scale: Scale::Zoom,
        }
    }
}

/// Errors from rendering.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The query is invalid or was cancelled.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// Shading options are invalid.
    #[error(transparent)]
    Shade(#[from] ShadeError),
}

/// A rendered image plus what it cost.
pub struct Rendered {
    /// The aggregate behind the image.
    pub aggregate: Aggregate,
    /// The image.
    pub image: Rgba,
}

/// Whether a grid is integer counts (Datashader's unsigned aggregates).
pub fn is_integer(agg: &Agg) -> bool {
    matches!(agg, Agg::Count | Agg::Any | Agg::CountCat(_))
}

/// The seamless normalization for a zoom level from its pixel distribution.
pub fn zoom_normalization(
    stats: &ZoomStats,
    agg: &Agg,
    style: &Style,
) -> Result<Option<Normalization>, ShadeError> {
    let opts = &style.shade;
    if agg.category_column().is_some() {
        Normalization::from_category_totals(&stats.histogram, stats.integer, opts)
    } else {
        Normalization::from_histogram(&stats.histogram, stats.integer, opts)
    }
}

/// Shade an aggregate grid.
pub fn shade_grid(
    grid: &Grid,
    agg: &Agg,
    style: &Style,
    norm: Option<&Normalization>,
) -> Result<Rgba, ShadeError> {
    let mut opts = style.shade.clone();
    let color_key = || match &style.color_key {
        Some(k) => k.clone(),
        None => shade::default_color_key(grid.ncat()),
    };
    let mut img = match &grid.values {
        GridValues::CatCount(counts) => {
            let key = color_key();
            if norm.is_some() {
                // A fixed baseline keeps colour mixing identical across tiles.
                opts.color_baseline = Some(0.0);
            }
            shade::shade_categorical_counts(
                grid.width,
                grid.height,
                grid.ncat(),
                counts,
                &key,
                &opts,
                norm,
            )?
        }
        GridValues::CatFloat(counts) => {
            let key = color_key();
            let g = CategoricalGrid {
                width: grid.width,
                height: grid.height,
                ncat: grid.ncat(),
                counts,
                integer: is_integer(agg),
            };
            shade::shade_categorical(&g, &key, &opts, norm)?
        }
        _ => {
            let values = grid.scalar_f64();
            let g = ScalarGrid {
                width: grid.width,
                height: grid.height,
                values: &values,
                integer: is_integer(agg),
            };
            shade::shade(&g, &opts, norm)?
        }
    };
    if let Some((threshold, max_px)) = style.dynspread {
        img = shade::dynspread(&img, threshold, max_px, style.shape)?;
    } else if style.spread > 0 {
        img = shade::spread(&img, style.spread, style.shape);
    }
    if let Some(bg) = style.background {
        shade::set_background(&mut img, bg);
    }
    Ok(img)
}

/// Aggregate and shade a view. `norm` overrides per-image autoranging.
pub fn render(
    ds: &Dataset,
    view: &View,
    agg: &Agg,
    filters: &[Filter],
    style: &Style,
    norm: Option<&Normalization>,
    budget: Budget<'_>,
) -> Result<Rendered, RenderError> {
    check_style(style)?;
    let aggregate = aggregate_within(ds, view, agg, filters, budget)?;
    shade_aggregate(aggregate, agg, style, norm)
}

/// Aggregate and shade an XYZ tile. A spreading style reads the rows up to
/// its radius outside the tile (from the neighbours, on the same pixel
/// grid), spreads, then crops, so that a dot near an edge is whole in both
/// tiles and neighbouring tiles join without a seam. `dynspread` picks one
/// radius per zoom (see [`zoom_dynspread_radius`]) rather than per tile,
/// for the same reason. The returned aggregate covers the margin too.
#[allow(clippy::too_many_arguments)]
pub fn render_tile(
    ds: &Dataset,
    tile: TileId,
    size: u32,
    agg: &Agg,
    filters: &[Filter],
    style: &Style,
    norm: Option<&Normalization>,
    budget: Budget<'_>,
) -> Result<Rendered, RenderError> {
    if style.margin() == 0 {
        return render(
            ds,
            &View::tile(tile, size)?,
            agg,
            filters,
            style,
            norm,
            budget,
        );
    }
    let mut fixed = style.clone();
    if let Some((threshold, max_px)) = style.dynspread {
        fixed.dynspread = None;
        fixed.spread = zoom_dynspread_radius(
            ds, tile, size, agg, filters, style, norm, threshold, max_px, budget,
        )?;
    }
    let margin = fixed.spread;
    let view = View::tile_with_margin(tile, size, margin)?;
    let rendered = render(ds, &view, agg, filters, &fixed, norm, budget)?;
    let m = margin as usize;
    let image = shade::crop(&rendered.image, m, m, size as usize, size as usize);
    Ok(Rendered {
        aggregate: rendered.aggregate,
        image,
    })
}

/// The radius `dynspread(threshold, max_px)` uses for every tile of
/// `tile`'s zoom: Datashader's density rule applied to one anchor tile of
/// that zoom, the one holding the dataset's middle row in Hilbert order
/// (so it lies where the data is, and is the same for every tile).
#[allow(clippy::too_many_arguments)]
pub fn zoom_dynspread_radius(
    ds: &Dataset,
    tile: TileId,
    size: u32,
    agg: &Agg,
    filters: &[Filter],
    style: &Style,
    norm: Option<&Normalization>,
    threshold: f64,
    max_px: u32,
    budget: Budget<'_>,
) -> Result<u32, RenderError> {
    let anchor = ds
        .partitions
        .get(ds.partitions.len() / 2)
        .and_then(|p| Some((*p.qx().first()?, *p.qy().first()?)))
        .and_then(|(qx, qy)| {
            let s = crate::geo::QBITS - tile.z as u32;
            TileId::new(tile.z as u32, (qx as u64) >> s, (qy as u64) >> s).ok()
        })
        .unwrap_or(tile);
    let mut plain = style.clone();
    plain.dynspread = None;
    plain.spread = 0;
    plain.background = None;
    let r = render_tile(ds, anchor, size, agg, filters, &plain, norm, budget)?;
    Ok(shade::dynspread_radius(&r.image, threshold, max_px)?)
}

fn check_style(style: &Style) -> Result<(), RenderError> {
    if style.shade.how == How::EqHist && style.shade.span.is_some() {
        return Err(QueryError::BadView(
            "span is not allowed with how=eq_hist (as in Datashader)".into(),
        )
        .into());
    }
    Ok(())
}

/// Shade an aggregate computed elsewhere (e.g. from
/// [`crate::raster::cells::QueryCells`]), as [`render`] shades its own.
pub fn shade_aggregate(
    aggregate: Aggregate,
    agg: &Agg,
    style: &Style,
    norm: Option<&Normalization>,
) -> Result<Rendered, RenderError> {
    check_style(style)?;
    let image = shade_grid(&aggregate.grid, agg, style, norm)?;
    Ok(Rendered { aggregate, image })
}

/// How close an estimated zoom scale is to the exact one, measured over
/// the zoom's real pixels: each pixel value of `exact` is placed on both
/// colour scales, as one of 256 colour levels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScaleAccuracy {
    /// Non-empty pixels compared.
    pub pixels: u64,
    /// Share of them whose colour level differs at all.
    pub differ: f64,
    /// Share whose colour level differs by more than 16 of 256.
    pub beyond_16: f64,
    /// Mean difference in colour levels.
    pub mean_levels: f64,
    /// Largest difference in colour levels.
    pub max_levels: u32,
}

/// [`ScaleAccuracy`] of `estimated` against `exact` for `agg` shaded with
/// `style`; `None` when either scale is empty.
pub fn scale_accuracy(
    exact: &ZoomStats,
    estimated: &ZoomStats,
    agg: &Agg,
    style: &Style,
) -> Result<Option<ScaleAccuracy>, ShadeError> {
    let (Some(a), Some(b)) = (
        zoom_normalization(exact, agg, style)?,
        zoom_normalization(estimated, agg, style)?,
    ) else {
        return Ok(None);
    };
    let level = |n: &Normalization, v: f64| (n.position(v) * 255.0).round() as i64;
    let (mut pixels, mut differ, mut beyond, mut sum, mut max) = (0u64, 0u64, 0u64, 0f64, 0u32);
    for &(v, n) in &exact.histogram {
        let d = (level(&a, v) - level(&b, v)).unsigned_abs() as u32;
        pixels += n;
        if d > 0 {
            differ += n;
        }
        if d > 16 {
            beyond += n;
        }
        sum += d as f64 * n as f64;
        max = max.max(d);
    }
    if pixels == 0 {
        return Ok(None);
    }
    let share = |k: u64| k as f64 / pixels as f64;
    Ok(Some(ScaleAccuracy {
        pixels,
        differ: share(differ),
        beyond_16: share(beyond),
        mean_levels: sum / pixels as f64,
        max_levels: max,
    }))
}
