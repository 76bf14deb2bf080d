//! Colour parsing, named colormaps and the default categorical colour key.

use std::fmt;
use std::str::FromStr;

use super::ShadeError;
use super::mpl_tables;

/// Parses a colour the way Datashader's `colors.rgb` does: `#rrggbb` hex or
/// a web colour name from Datashader's `color_lookup` table.
///
/// Extensions over Datashader: `#rgb` shorthand, surrounding whitespace and
/// upper-case names are accepted.
pub fn parse_color(s: &str) -> Result<[u8; 3], ShadeError> {
    let t = s.trim();
    let bad = || ShadeError::InvalidColor(s.to_string());
    if let Some(hex) = t.strip_prefix('#') {
        if !hex.is_ascii() {
            return Err(bad());
        }
        let nib = |i: usize| u8::from_str_radix(&hex[i..i + 1], 16).map_err(|_| bad());
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad());
        return match hex.len() {
            6 => Ok([byte(0)?, byte(2)?, byte(4)?]),
            3 => Ok([nib(0)? * 17, nib(1)? * 17, nib(2)? * 17]),
            _ => Err(bad()),
        };
    }
    let lower = t.to_ascii_lowercase();
    CSS_COLORS
        .binary_search_by(|(name, _)| name.cmp(&lower.as_str()))
        .map(|i| CSS_COLORS[i].1)
        .map_err(|_| bad())
}

/// Parses a comma-separated list of colours (hex or names), e.g. a user's
/// categorical colour key `"#e41a1c,#377eb8,green"`.
pub fn parse_color_list(s: &str) -> Result<Vec<[u8; 3]>, ShadeError> {
    let colors = s
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(parse_color)
        .collect::<Result<Vec<_>, _>>()?;
    if colors.is_empty() {
        return Err(ShadeError::EmptyColormap);
    }
    Ok(colors)
}

/// Datashader's default categorical colour key, `colors.Sets1to3`
/// (ColorBrewer Set1, Set2 and Set3 minus near-duplicates): 22 colours.
pub const SETS1TO3: [[u8; 3]; 22] = [
    [228, 26, 28],
    [55, 126, 184],
    [77, 175, 74],
    [152, 78, 163],
    [255, 127, 0],
    [255, 255, 51],
    [166, 86, 40],
    [247, 129, 191],
    [153, 153, 153],
    [102, 194, 165],
    [252, 141, 98],
    [141, 160, 203],
    [166, 216, 84],
    [255, 217, 47],
    [229, 196, 148],
    [255, 255, 179],
    [251, 128, 114],
    [253, 180, 98],
    [252, 205, 229],
    [217, 217, 217],
    [204, 235, 197],
    [255, 237, 111],
];

/// The first `n` colours of [`SETS1TO3`], cycling when `n > 22`.
///
/// Datashader itself raises "Insufficient colors" past 22 categories; cycling
/// keeps a tile server rendering at the cost of repeated colours.
pub fn default_color_key(n: usize) -> Vec<[u8; 3]> {
    SETS1TO3.iter().copied().cycle().take(n).collect()
}

/// A colormap for scalar grids.
///
/// Two kinds exist because Datashader treats them differently: a *list* of
/// colours is interpolated over the data span with constant alpha, while a
/// *single colour* keeps its RGB and ramps alpha from `min_alpha` to `alpha`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Colormap {
    colors: Vec<[u8; 3]>,
    single: bool,
}

/// Named colormaps: Datashader's default, colorcet's short names, and
/// matplotlib's perceptually uniform maps.
const NAMES: &[&str] = &[
    "default",
    "fire",
    "bmy",
    "bgy",
    "bgyw",
    "bmw",
    "kbc",
    "kb",
    "kg",
    "kr",
    "kgy",
    "kbgyw",
    "gray",
    "dimgray",
    "blues",
    "rainbow4",
    "colorwheel",
    "isolum",
    "coolwarm",
    "cwr",
    "bkr",
    "bky",
    "bjy",
    "bwy",
    "gwv",
    "glasbey",
    "viridis",
    "inferno",
    "magma",
    "plasma",
    "cividis",
];

impl Colormap {
    /// Looks up a named colormap (case-insensitive; a `_r` suffix reverses it).
    ///
    /// `"default"` is Datashader's `["lightblue", "darkblue"]`. colorcet maps
    /// are converted to bytes with `int(x * 255)`, exactly like Python
    /// colorcet's Bokeh palettes (`colorcet.fire`), which is what Datashader
    /// users pass. Besides [`Colormap::names`], any full colorcet name (such
    /// as `linear_kryw_0_100_c71`) is accepted.
    pub fn named(name: &str) -> Result<Colormap, ShadeError> {
        let lower = name.trim().to_ascii_lowercase();
        let (base, reverse) = match lower.strip_suffix("_r") {
            Some(b) => (b, true),
            None => (lower.as_str(), false),
        };
        let mut colors = match base {
            "default" => vec![[173, 216, 230], [0, 0, 139]],
            "viridis" => mpl_tables::VIRIDIS.to_vec(),
            "inferno" => mpl_tables::INFERNO.to_vec(),
            "magma" => mpl_tables::MAGMA.to_vec(),
            "plasma" => mpl_tables::PLASMA.to_vec(),
            "cividis" => mpl_tables::CIVIDIS.to_vec(),
            _ => colorcet_table(base).ok_or_else(|| ShadeError::UnknownColormap {
                name: name.to_string(),
                known: NAMES.join(", "),
            })?,
        };
        if reverse {
            colors.reverse();
        }
        Ok(Colormap {
            colors,
            single: false,
        })
    }

    /// The names [`Colormap::named`] documents (for error messages and UIs).
    pub fn names() -> Vec<&'static str> {
        NAMES.to_vec()
    }

    /// A list colormap from explicit colours (interpolated, constant alpha).
    pub fn from_colors(colors: Vec<[u8; 3]>) -> Result<Colormap, ShadeError> {
        if colors.is_empty() {
            return Err(ShadeError::EmptyColormap);
        }
        Ok(Colormap {
            colors,
            single: false,
        })
    }

    /// A list colormap from comma-separated colours, e.g. `"#ff0000,#00ff00"`.
    ///
    /// A one-element list keeps list semantics (constant alpha), as a
    /// one-element Python list does in Datashader.
    pub fn from_hex_list(s: &str) -> Result<Colormap, ShadeError> {
        Colormap::from_colors(parse_color_list(s)?)
    }

    /// A single-colour colormap: alpha encodes the value.
    pub fn single(color: [u8; 3]) -> Colormap {
        Colormap {
            colors: vec![color],
            single: true,
        }
    }

    /// The colours, low to high (one entry for a single-colour map); for legends.
    pub fn colors(&self) -> &[[u8; 3]] {
        &self.colors
    }

    /// Whether this is a single-colour (alpha ramp) colormap.
    pub fn is_single_color(&self) -> bool {
        self.single
    }
}

impl Default for Colormap {
    /// Datashader's default `cmap=["lightblue", "darkblue"]`.
    fn default() -> Self {
        Colormap {
            colors: vec![[173, 216, 230], [0, 0, 139]],
            single: false,
        }
    }
}

impl FromStr for Colormap {
    type Err = ShadeError;

    /// A colormap name, else a comma-separated list (list semantics), else a
    /// single colour (alpha-ramp semantics, like Datashader's `cmap="red"`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(c) = Colormap::named(s) {
            return Ok(c);
        }
        if s.contains(',') {
            return Colormap::from_hex_list(s);
        }
        match parse_color(s) {
            Ok(c) => Ok(Colormap::single(c)),
            Err(_) => Err(ShadeError::UnknownColormap {
                name: s.to_string(),
                known: NAMES.join(", "),
            }),
        }
    }
}

impl fmt::Display for Colormap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex: Vec<String> = self
            .colors
            .iter()
            .map(|c| format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2]))
            .collect();
        f.write_str(&hex.join(","))
    }
}

/// A colorcet table by alias or full name, as `int(x * 255)` bytes.
fn colorcet_table(name: &str) -> Option<Vec<[u8; 3]>> {
    // colorcet's parser falls back to building a black-to-colour gradient for
    // any HTML colour name; only accept names it really has a table for.
    if !colorcet::ColorMap::all_colormap_names()
        .iter()
        .any(|n| n == name)
    {
        return None;
    }
    let cm: colorcet::ColorMap = name.parse().ok()?;
    // `get_rgb_int` in colorcet 0.2 divides instead of multiplying (all
    // zeros), so convert the floats here, truncating like Python's `int()`.
    Some(
        cm.get_rgb_float::<f64>()
            .into_iter()
            .map(|c| {
                [
                    (c[0] * 255.0) as u8,
                    (c[1] * 255.0) as u8,
                    (c[2] * 255.0) as u8,
                ]
            })
            .collect(),
    )
}

/// Datashader's `color_lookup`: web colour names (sorted for binary search).
static CSS_COLORS: &[(&str, [u8; 3])] = &[
    ("aliceblue", [240, 248, 255]),
    ("antiquewhite", [250, 235, 215]),
    ("aqua", [0, 255, 255]),
    ("aquamarine", [127, 255, 212]),
    ("azure", [240, 255, 255]),
    ("beige", [245, 245, 220]),
    ("bisque", [255, 228, 196]),
    ("black", [0, 0, 0]),
    ("blanchedalmond", [255, 235, 205]),
    ("blue", [0, 0, 255]),
    ("blueviolet", [138, 43, 226]),
    ("brown", [165, 42, 42]),
    ("burlywood", [222, 184, 135]),
    ("cadetblue", [95, 158, 160]),
    ("chartreuse", [127, 255, 0]),
    ("chocolate", [210, 105, 30]),
    ("coral", [255, 127, 80]),
    ("cornflowerblue", [100, 149, 237]),
    ("cornsilk", [255, 248, 220]),
    ("crimson", [220, 20, 60]),
    ("cyan", [0, 255, 255]),
    ("darkblue", [0, 0, 139]),
    ("darkcyan", [0, 139, 139]),
    ("darkgoldenrod", [184, 134, 11]),
    ("darkgray", [169, 169, 169]),
    ("darkgreen", [0, 100, 0]),
    ("darkgrey", [169, 169, 169]),
    ("darkkhaki", [189, 183, 107]),
    ("darkmagenta", [139, 0, 139]),
    ("darkolivegreen", [85, 107, 47]),
    ("darkorange", [255, 140, 0]),
    ("darkorchid", [153, 50, 204]),
    ("darkred", [139, 0, 0]),
    ("darksage", [89, 133, 86]),
    ("darksalmon", [233, 150, 122]),
    ("darkseagreen", [143, 188, 143]),
    ("darkslateblue", [72, 61, 139]),
    ("darkslategray", [47, 79, 79]),
    ("darkslategrey", [47, 79, 79]),
    ("darkturquoise", [0, 206, 209]),
    ("darkviolet", [148, 0, 211]),
    ("deeppink", [255, 20, 147]),
    ("deepskyblue", [0, 191, 255]),
    ("dimgray", [105, 105, 105]),
    ("dimgrey", [105, 105, 105]),
    ("dodgerblue", [30, 144, 255]),
    ("firebrick", [178, 34, 34]),
    ("floralwhite", [255, 250, 240]),
    ("forestgreen", [34, 139, 34]),
    ("fuchsia", [255, 0, 255]),
    ("gainsboro", [220, 220, 220]),
    ("ghostwhite", [248, 248, 255]),
    ("gold", [255, 215, 0]),
    ("goldenrod", [218, 165, 32]),
    ("gray", [128, 128, 128]),
    ("green", [0, 128, 0]),
    ("greenyellow", [173, 255, 47]),
    ("grey", [128, 128, 128]),
    ("honeydew", [240, 255, 240]),
    ("hotpink", [255, 105, 180]),
    ("indianred", [205, 92, 92]),
    ("indigo", [75, 0, 130]),
    ("ivory", [255, 255, 240]),
    ("khaki", [240, 230, 140]),
    ("lavender", [230, 230, 250]),
    ("lavenderblush", [255, 240, 245]),
    ("lawngreen", [124, 252, 0]),
    ("lemonchiffon", [255, 250, 205]),
    ("lightblue", [173, 216, 230]),
    ("lightcoral", [240, 128, 128]),
    ("lightcyan", [224, 255, 255]),
    ("lightgoldenrodyellow", [250, 250, 210]),
    ("lightgray", [211, 211, 211]),
    ("lightgreen", [144, 238, 144]),
    ("lightgrey", [211, 211, 211]),
    ("lightpink", [255, 182, 193]),
    ("lightsage", [188, 236, 172]),
    ("lightsalmon", [255, 160, 122]),
    ("lightseagreen", [32, 178, 170]),
    ("lightskyblue", [135, 206, 250]),
    ("lightslategray", [119, 136, 153]),
    ("lightslategrey", [119, 136, 153]),
    ("lightsteelblue", [176, 196, 222]),
    ("lightyellow", [255, 255, 224]),
    ("lime", [0, 255, 0]),
    ("limegreen", [50, 205, 50]),
    ("linen", [250, 240, 230]),
    ("magenta", [255, 0, 255]),
    ("maroon", [128, 0, 0]),
    ("mediumaquamarine", [102, 205, 170]),
    ("mediumblue", [0, 0, 205]),
    ("mediumorchid", [186, 85, 211]),
    ("mediumpurple", [147, 112, 219]),
    ("mediumseagreen", [60, 179, 113]),
    ("mediumslateblue", [123, 104, 238]),
    ("mediumspringgreen", [0, 250, 154]),
    ("mediumturquoise", [72, 209, 204]),
    ("mediumvioletred", [199, 21, 133]),
    ("midnightblue", [25, 25, 112]),
    ("mintcream", [245, 255, 250]),
    ("mistyrose", [255, 228, 225]),
    ("moccasin", [255, 228, 181]),
    ("navajowhite", [255, 222, 173]),
    ("navy", [0, 0, 128]),
    ("oldlace", [253, 245, 230]),
    ("olive", [128, 128, 0]),
    ("olivedrab", [107, 142, 35]),
    ("orange", [255, 165, 0]),
    ("orangered", [255, 69, 0]),
    ("orchid", [218, 112, 214]),
    ("palegoldenrod", [238, 232, 170]),
    ("palegreen", [152, 251, 152]),
    ("paleturquoise", [175, 238, 238]),
    ("palevioletred", [219, 112, 147]),
    ("papayawhip", [255, 239, 213]),
    ("peachpuff", [255, 218, 185]),
    ("peru", [205, 133, 63]),
    ("pink", [255, 192, 203]),
    ("plum", [221, 160, 221]),
    ("powderblue", [176, 224, 230]),
    ("purple", [128, 0, 128]),
    ("red", [255, 0, 0]),
    ("rosybrown", [188, 143, 143]),
    ("royalblue", [65, 105, 225]),
    ("saddlebrown", [139, 69, 19]),
    ("sage", [135, 174, 115]),
    ("salmon", [250, 128, 114]),
    ("sandybrown", [250, 164, 96]),
    ("seagreen", [46, 139, 87]),
    ("seashell", [255, 245, 238]),
    ("sienna", [160, 82, 45]),
    ("silver", [192, 192, 192]),
    ("skyblue", [135, 206, 235]),
    ("slateblue", [106, 90, 205]),
    ("slategray", [112, 128, 144]),
    ("slategrey", [112, 128, 144]),
    ("snow", [255, 250, 250]),
    ("springgreen", [0, 255, 127]),
    ("steelblue", [70, 130, 180]),
    ("tan", [210, 180, 140]),
    ("teal", [0, 128, 128]),
    ("thistle", [216, 191, 216]),
    ("tomato", [255, 99, 71]),
    ("turquoise", [64, 224, 208]),
    ("violet", [238, 130, 238]),
    ("wheat", [245, 222, 179]),
    ("white", [255, 255, 255]),
    ("whitesmoke", [245, 245, 245]),
    ("yellow", [255, 255, 0]),
    ("yellowgreen", [154, 205, 50]),
];
