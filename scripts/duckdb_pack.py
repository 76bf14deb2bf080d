#!/usr/bin/env python3
"""DuckDB as a pack peer (issue #15 target 4): the job `pointillist pack`
does, written as a competent DuckDB user would write it.

From the towers Parquet, one statement projects lon/lat to Web Mercator,
quantizes it to u32 (`qx`, `qy`, as pack does), keeps every other column,
and writes the rows sorted along a space-filling curve (a 64-bit Morton key
of qx and qy; DuckDB has no built-in Hilbert curve without the spatial
extension, and Morton is as cheap to sort as any key):

  --mode ctas  CREATE TABLE ... AS SELECT ... ORDER BY key, into a DuckDB
               database file (a native, zone-mapped table: what a tile
               query would read), then CHECKPOINT;
  --mode copy  COPY (SELECT ... ORDER BY key) TO a Parquet file (zstd).

Prints one JSON line: rows, seconds (the statement alone, after imports),
mode, threads. Run it through scripts/bench_pack.sh.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import duckdb

MASKS = [(16, 0x0000FFFF0000FFFF), (8, 0x00FF00FF00FF00FF), (4, 0x0F0F0F0F0F0F0F0F),
         (2, 0x3333333333333333), (1, 0x5555555555555555)]


def spread_sql(v: str) -> tuple[list[str], str]:
    """Select items spreading the 32 bits of UBIGINT column v to the even
    bits of a u64, each step naming the last (DuckDB's lateral aliases),
    and the name of the result."""
    items, prev = [], v
    for i, (shift, mask) in enumerate(MASKS):
        name = f"_{v}{i}"
        items.append(f"(({prev}) | (({prev}) << {shift})) & {mask}::UBIGINT AS {name}")
        prev = name
    return items, prev


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("parquet")
    ap.add_argument("out")
    ap.add_argument("--mode", choices=["ctas", "copy"], default="ctas")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--memory-limit", default="3GB")
    ap.add_argument("--lon", default="lon")
    ap.add_argument("--lat", default="lat")
    a = ap.parse_args()
    for p in (a.out, a.out + ".wal"):
        if os.path.exists(p):
            os.remove(p)

    db = a.out if a.mode == "ctas" else ":memory:"
    con = duckdb.connect(db)
    con.execute(f"SET threads = {a.threads}")
    con.execute(f"SET memory_limit = '{a.memory_limit}'")
    con.execute("SET preserve_insertion_order = true")
    # Web Mercator, normalized to [0, 1) and quantized to u32, as pack does;
    # lat clamped to the Mercator limit.
    span = 4294967295.0
    qx = f"CAST(floor(({a.lon} / 360.0 + 0.5) * {span}) AS UBIGINT)"
    lat = f"greatest(-85.05112878, least(85.05112878, {a.lat}))"
    qy = (
        f"CAST(floor((0.5 - ln(tan(pi() / 4 + radians({lat}) / 2)) / (2 * pi())) * {span}) AS UBIGINT)"
    )
    sx, ex = spread_sql("qx")
    sy, ey = spread_sql("qy")
    temps = [i.rsplit(" AS ", 1)[1] for i in sx + sy]
    select = f"""
        WITH p AS (
            SELECT {qx} AS qx, {qy} AS qy, {', '.join(sx + sy)},
                {ex} | ({ey} << 1) AS _key, * EXCLUDE ({a.lon}, {a.lat})
            FROM read_parquet('{a.parquet}')
            WHERE {a.lon} BETWEEN -180 AND 180 AND {a.lat} BETWEEN -90 AND 90
        )
        SELECT CAST(qx AS UINTEGER) AS qx, CAST(qy AS UINTEGER) AS qy,
            * EXCLUDE (qx, qy, _key, {', '.join(temps)})
        FROM p
        ORDER BY _key
    """
    t = time.perf_counter()
    if a.mode == "ctas":
        con.execute(f"CREATE TABLE towers AS {select}")
        con.execute("CHECKPOINT")
        rows = con.execute("SELECT count(*) FROM towers").fetchone()[0]
    else:
        con.execute(f"COPY ({select}) TO '{a.out}' (FORMAT parquet, COMPRESSION zstd)")
        rows = con.execute(f"SELECT count(*) FROM read_parquet('{a.out}')").fetchone()[0]
    seconds = time.perf_counter() - t
    con.close()
    print(json.dumps({"rows": rows, "seconds": round(seconds, 3), "mode": a.mode, "threads": a.threads}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
