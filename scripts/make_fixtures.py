#!/usr/bin/env python3
"""Regenerates tests/fixtures/written-by/: the same 24 points written by the
tools GIS users have, so tests/fixtures.rs checks that Pointillist reads
each file as its tool wrote it. The tests need neither Python nor a network.

    python3 -m venv /tmp/fixvenv
    /tmp/fixvenv/bin/pip install geopandas pyogrio shapely pyproj duckdb polars pandas pyarrow
    /tmp/fixvenv/bin/python scripts/make_fixtures.py

GDAL is the one bundled in pyogrio's wheels (GeoPackage, FlatGeobuf,
Shapefile, GeoJSON, GeoJSONSeq). Versions used are written to VERSIONS.txt.
The rows follow one formula, repeated in tests/fixtures.rs (`expected`).
"""

import datetime as dt
import os
import shutil
import zipfile

import duckdb
import geopandas as gpd
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq
import pyogrio
import pyproj
import shapely

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "written-by")
N = 24
RADIOS = ["GSM", "LTE", "NR", "UMTS"]


def rows(britain=False):
    """Row i: the formula tests/fixtures.rs repeats (`britain`: points in
    Great Britain, for a file in the British National Grid)."""
    for i in range(N):
        lon, lat = (-6.0 + i * 0.35, 50.0 + i * 0.3) if britain else (-170.0 + i * 14.25, -60.0 + i * 5.0)
        yield {
            "id": i,
            "name": f"site-{i}",
            "radio": RADIOS[i % 4],
            "range": i * 12.5,
            "lon": lon + 0.123456,
            "lat": lat + 0.654321,
            "created": dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(days=i, seconds=i),
        }


def frame(britain=False):
    return pd.DataFrame(list(rows(britain)))


def geoframe(df):
    return gpd.GeoDataFrame(
        df.drop(columns=["lon", "lat"]),
        geometry=gpd.points_from_xy(df.lon, df.lat),
        crs="EPSG:4326",
    )


def compact(gpkg):
    """A GeoPackage with small pages: a few KB instead of 96."""
    import sqlite3

    con = sqlite3.connect(gpkg)
    con.execute("PRAGMA page_size=512")
    con.execute("VACUUM")
    con.close()


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    df = frame()
    gdf = geoframe(df)
    p = lambda name: os.path.join(OUT, name)

    # geopandas (+ GDAL through pyogrio)
    gdf.to_parquet(p("geopandas.parquet"))
    gdf.to_crs(32632).to_parquet(p("geopandas_utm32n.parquet"))
    gdf.to_file(p("gdal.gpkg"), driver="GPKG", layer="towers")
    compact(p("gdal.gpkg"))
    gdf.to_file(p("gdal.geojson"), driver="GeoJSON")
    gdf.to_file(p("gdal.geojsonl"), driver="GeoJSONSeq")
    gdf.to_file(p("gdal.fgb"), driver="FlatGeobuf")
    # British National Grid through EPSG's 7-parameter OSGB36 shift
    # (EPSG:1314): without its grid files PROJ would fall back to a
    # "ballpark" transform with no datum shift at all (~130 m off).
    bng = geoframe(frame(britain=True))
    helmert = pyproj.CRS(
        "+proj=tmerc +lat_0=49 +lon_0=-2 +k=0.9996012717 +x_0=400000 +y_0=-100000 "
        "+ellps=airy +towgs84=446.448,-125.157,542.06,0.15,0.247,0.842,-20.489 +units=m +no_defs"
    )
    bng = bng.to_crs(helmert).set_crs(27700, allow_override=True)
    bng.to_file(p("gdal_bng.fgb"), driver="FlatGeobuf")
    shp_dir = p("shp")
    os.makedirs(shp_dir)
    gdf.to_file(os.path.join(shp_dir, "gdal.shp"))
    with zipfile.ZipFile(p("gdal_shp.zip"), "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(os.listdir(shp_dir)):
            z.write(os.path.join(shp_dir, f), f)
    # Bad inputs: a GeoPackage with lines only; a Shapefile without its .dbf.
    lines = gpd.GeoDataFrame(
        {"name": ["a"]}, geometry=[shapely.LineString([(0, 0), (1, 1)])], crs="EPSG:4326"
    )
    lines.to_file(p("bad_lines.gpkg"), driver="GPKG")
    compact(p("bad_lines.gpkg"))
    os.makedirs(p("bad_nodbf"))
    for ext in ("shp", "shx", "prj"):
        shutil.copy(os.path.join(shp_dir, f"gdal.{ext}"), os.path.join(p("bad_nodbf"), f"gdal.{ext}"))

    # DuckDB
    con = duckdb.connect()
    con.register("df", df)
    con.execute(f"COPY (SELECT * FROM df) TO '{p('duckdb.parquet')}' (FORMAT PARQUET)")
    con.execute(f"COPY (SELECT * FROM df) TO '{p('duckdb.csv.gz')}' (FORMAT CSV, HEADER)")
    con.execute(
        f"COPY (SELECT * FROM df) TO '{p('duckdb_hive')}' (FORMAT PARQUET, PARTITION_BY (radio))"
    )

    # Polars
    pdf = pl.from_pandas(df)
    pdf.write_ipc(p("polars_zstd.arrow"), compression="zstd")
    pdf.write_parquet(p("polars.parquet"))
    pdf.write_csv(p("polars.tsv"), separator="\t")

    # pandas
    df.to_feather(p("pandas.feather"))  # lz4, pandas' default
    df.to_csv(p("pandas.csv.gz"), index=False)

    # pyarrow: the stream format, older Parquet codecs, and the Arrow
    # types /points must give back exactly.
    t = pa.Table.from_pandas(df, preserve_index=False)
    with pa.ipc.new_stream(p("pyarrow.arrows"), t.schema) as w:
        w.write_table(t)
    pq.write_table(t, p("pyarrow_gzip.parquet"), compression="gzip")
    pq.write_table(t, p("pyarrow_brotli.parquet"), compression="brotli")
    typed = t.append_column("big", pa.array([7425725167743237483 + i for i in range(N)], pa.uint64()))
    typed = typed.append_column("count", pa.array([2495 + i for i in range(N)], pa.int64()))
    pq.write_table(typed, p("pyarrow_types.parquet"))

    shutil.rmtree(shp_dir)
    # Keep the Shapefile itself too, unzipped (the zip above holds it).
    with zipfile.ZipFile(p("gdal_shp.zip")) as z:
        z.extractall(p("shp"))

    with open(p("VERSIONS.txt"), "w") as f:
        f.write(
            f"geopandas {gpd.__version__}\npyogrio {pyogrio.__version__} "
            f"(GDAL {pyogrio.__gdal_version_string__})\nduckdb {duckdb.__version__}\n"
            f"polars {pl.__version__}\npandas {pd.__version__}\npyarrow {pa.__version__}\n"
        )


if __name__ == "__main__":
    main()
