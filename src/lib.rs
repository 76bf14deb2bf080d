//! Pointillist: Datashader-style rendering of very large point datasets into
//! XYZ raster tiles.
//!
//! Data flows one way: [`ingest`] reads point files, [`pack`] projects them to
//! Web Mercator, sorts them along a Hilbert curve and writes a packed dataset,
//! [`store`] memory-maps it, [`query`] plans which rows a view needs,
//! [`raster`] aggregates them into a grid and [`shade`] turns the grid into a
//! PNG. [`server`] exposes all of it over HTTP.

pub mod datagen;
pub mod geo;
pub mod ingest;
pub mod pack;
pub mod query;
pub mod raster;
pub mod render;
pub mod server;
pub mod shade;
pub mod store;
mod tally;
pub mod time;
