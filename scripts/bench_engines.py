#!/usr/bin/env python3
"""Pointillist against the engines a user would pick instead: DuckDB and chdb
(ClickHouse in process), side by side in one run, on the same rows.

Run it through scripts/bench_engines.sh (venv, binary, data).

Layout each engine gets, as a competent user would give it:
  * the packed dataset's rows (`data.arrow`, already in Pointillist's Hilbert
    order) with the same projection: quantized Web Mercator `_qx`, `_qy`
    (u32), `radio`, `range`, `created`;
  * DuckDB: a native table created from them in that order (insertion order
    kept), so its zone maps prune like Pointillist's;
  * chdb: a MergeTree table ORDER BY hilbertEncode(qx, qy);
  * the same threads (--threads, default 2).

Cases (256-pixel tiles around New York, as in issue #15):
  z12 count, z8 count_cat:radio, z4 count with a range filter, z0 count with
  a range filter, a `radio` histogram under two filters, a `created`
  histogram (64 bins) under two filters.
Every run draws a new range bound (range:0..2000+i), so no cache of a filter
answers it: a brush that is new each time.

Crossfilter brush (`--cases brush`), issue #15 target 3: --drags drags of
--events pointer moves each on the `range` histogram, as the explorer makes
them: bounds rounded to the axis step (10^floor(log10(span/500))), and after
each move the linked panels refresh: the `radio` histogram, the `created`
histogram (48 bins) and the count, under the brushed range and a `created`
filter that differs per drag (so each drag starts cold). Pointillist is asked
with the explorer's `brush=range:STEP` hint (the first move of a drag builds
the indexes, later moves read them) and without it (a scan each time); the
engines run the same three queries. A move's time is the three answers' sum.
A third setup is the explorer's own: the pointer entered the histogram
first, and its prewarm (the three panels asked once with the hint, timed
apart as "hover prewarm") built the indexes before the first move.

Pointillist is timed over HTTP (a PNG tile or the histogram's JSON), client
side, with its fixed cost per call (median `GET /health`) subtracted, and by
its own Server-Timing, against two servers: caches off (`--cache-mb 0
--cells-mb 0 --filter-bits-mb 0`, per-tile scale) and caches on (defaults;
the tile cache still misses, since `alpha` differs per run). Engines return
their aggregate as Arrow, with no shading and no PNG; their fixed cost per
call (median `SELECT 1`) is subtracted too. Medians of --runs interleaved
runs.

Results must agree, and are checked on every run: each engine's tile grid
equals Pointillist's aggregate of the same tile (`render --tile ... -o
.npy`, same filter) cell by cell, and each histogram's counts equal
Pointillist's. Any difference exits 1.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

CATEGORIES = ["CDMA", "GSM", "LTE", "NR", "UMTS"]
# created between 2015-01-01 and 2020-01-01 (epoch milliseconds, inclusive).
CREATED = (1420070400000, 1577836800000)
BINS = 64

# (name, z, x, y, agg, ranged)
TILES = [
    ("z12 count", 12, 1206, 1539, "count", False),
    ("z8 count_cat:radio", 8, 75, 96, "count_cat:radio", False),
    ("z4 count, range filter", 4, 4, 6, "count", True),
    ("z0 count, range filter", 0, 0, 0, "count", True),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[float, bytes, str]:
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as r:
        body = r.read()
        timing = r.headers.get("server-timing", "")
    return (time.perf_counter() - t) * 1e3, body, timing


def server_ms(timing: str) -> float | None:
    for part in timing.split(","):
        part = part.strip()
        if part.startswith("total;dur="):
            return float(part.split("=", 1)[1])
    return None


class Server:
    def __init__(self, binary: str, dataset: Path, extra: list[str]):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [binary, "serve", str(dataset), "--bind", f"127.0.0.1:{self.port}", *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        for _ in range(600):
            try:
                get(self.base + "/health")
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"pointillist serve did not start on {self.port}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def load_rows(dataset: Path) -> pa.Table:
    with pa.memory_map(str(dataset / "data.arrow")) as src:
        t = ipc.open_file(src).read_all()
    t = t.select(["_qx", "_qy", "radio", "range", "created"])
    return t.rename_columns(["qx", "qy", "radio", "range", "created"])


def tile_sql(z: int, x: int, y: int, cat: bool, hi: int | None, shift_fn: str | None = None) -> str:
    shift = 32 - z
    s = shift - 8
    x0, y0 = x << shift, y << shift
    where = []
    if z > 0:
        where += [f"qx >= {x0}", f"qx < {x0 + (1 << shift)}", f"qy >= {y0}", f"qy < {y0 + (1 << shift)}"]
    if hi is not None:
        where.append(f"range >= 0 AND range <= {hi}")
    if shift_fn:
        cols = f"{shift_fn}(toInt64(qx) - {x0}, {s}) AS px, {shift_fn}(toInt64(qy) - {y0}, {s}) AS py"
    else:
        cols = f"(qx - {x0}) >> {s} AS px, (qy - {y0}) >> {s} AS py"
    group = "px, py"
    if cat:
        cols += ", radio"
        group += ", radio"
    w = ("WHERE " + " AND ".join(where)) if where else ""
    return f"SELECT {cols}, count(*) AS n FROM towers {w} GROUP BY {group}"


def grid_of(tbl: pa.Table, cat: bool) -> np.ndarray:
    px = np.asarray(tbl.column("px").to_numpy(), dtype=np.int64)
    py = np.asarray(tbl.column("py").to_numpy(), dtype=np.int64)
    n = np.asarray(tbl.column("n").to_numpy(), dtype=np.uint64)
    if cat:
        names = [str(v) for v in tbl.column("radio").to_pylist()]
        ci = np.array([CATEGORIES.index(v) for v in names], dtype=np.int64)
        g = np.zeros((256, 256, len(CATEGORIES)), dtype=np.uint64)
        np.add.at(g, (py, px, ci), n)
    else:
        g = np.zeros((256, 256), dtype=np.uint64)
        np.add.at(g, (py, px), n)
    return g


def pointillist_grid(binary: str, dataset: Path, z, x, y, agg, hi) -> np.ndarray:
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "g.npy"
        cmd = [binary, "render", str(dataset), "--tile", f"{z}/{x}/{y}", "--agg", agg, "-o", str(out)]
        if hi is not None:
            cmd += ["--filter", f"range:0..{hi}"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        g = np.load(out)
    return g.astype(np.uint64).reshape((256, 256, -1)).squeeze()


def inproc_aggregate_ms(binary: str, dataset: Path, z, x, y, agg, hi, runs: int) -> float:
    cmd = [binary, "render", str(dataset), "--tile", f"{z}/{x}/{y}", "--agg", agg,
           "--scale", "tile", "--timings", str(runs), "-o", os.devnull + ".png"]
    with tempfile.TemporaryDirectory() as d:
        cmd[-1] = str(Path(d) / "t.png")
        if hi is not None:
            cmd += ["--filter", f"range:0..{hi}"]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    doc = json.loads(out.strip().splitlines()[-1])
    return doc["aggregate_ms"], doc["plan"]


# How each dialect spells what the histograms need.
DIALECTS = {
    "duckdb": {"count": "count(*)", "ms": "epoch_ms(created)", "us": "epoch_us(created)", "int": "CAST({} AS BIGINT)"},
    "chdb": {"count": "count()", "ms": "toUnixTimestamp64Milli(created)", "us": "toUnixTimestamp64Micro(created)",
             "int": "toInt64({})"},
}


def hist_sql(dialect: str, column: str, hi: int, created_range: tuple[int, int]) -> str:
    d = DIALECTS[dialect]
    lo_ms, hi_ms = CREATED
    if column == "radio":
        return (
            f"SELECT radio AS k, {d['count']} AS n FROM towers WHERE range >= 0 AND range <= {hi} "
            f"AND {d['ms']} >= {lo_ms} AND {d['ms']} <= {hi_ms} GROUP BY radio"
        )
    cmin, cmax = created_range
    width = (cmax - cmin) / BINS
    k = d["int"].format(f"floor(({d['us']} - {cmin}) / {width})")
    return (
        f"SELECT least({k}, {BINS - 1}) AS k, {d['count']} AS n FROM towers "
        f"WHERE range >= 0 AND range <= {hi} AND radio IN ('LTE', 'NR') GROUP BY k"
    )


def hist_url(base: str, name: str, column: str, hi: int) -> str:
    if column == "radio":
        q = f"filter=range:0..{hi}&filter=created:{CREATED[0]}..{CREATED[1]}"
    else:
        q = f"bins={BINS}&filter=range:0..{hi}&filter=radio:in:LTE,NR"
    return f"{base}/datasets/{name}/histogram/{column}?{q}"


def hist_counts(doc: dict, column: str) -> dict:
    if column == "radio":
        return {c["value"]: c["count"] for c in doc["categories"] if c["count"]}
    return {i: b["count"] for i, b in enumerate(doc["bins"]) if b["count"]}


def engine_counts(tbl: pa.Table) -> dict:
    ks = tbl.column("k").to_pylist()
    ns = tbl.column("n").to_pylist()
    return {(str(k) if isinstance(k, str) else int(k)): int(n) for k, n in zip(ks, ns) if n}


class DuckEngine:
    name = "duckdb"

    def __init__(self, rows: pa.Table, threads: int):
        import duckdb

        self.con = duckdb.connect()
        self.con.execute(f"SET threads = {threads}")
        self.con.execute("SET preserve_insertion_order = true")
        self.con.register("src", rows)
        self.con.execute("CREATE TABLE towers AS SELECT * FROM src")
        self.con.unregister("src")

    def query(self, sql: str) -> pa.Table:
        return self.con.sql(sql).to_arrow_table()

    def tile_sql(self, *a) -> str:
        return tile_sql(*a)

    def hist_sql(self, *a) -> str:
        return hist_sql("duckdb", *a)


class ChEngine:
    name = "chdb"

    def __init__(self, rows: pa.Table, threads: int):
        import chdb.session

        self.s = chdb.session.Session()
        self.threads = threads
        self.s.query(
            "CREATE TABLE towers (qx UInt32, qy UInt32, radio LowCardinality(String), "
            "range Int32, created DateTime64(6, 'UTC')) ENGINE = MergeTree "
            "ORDER BY hilbertEncode(qx, qy)"
        )
        plain = rows.set_column(2, "radio", rows.column("radio").cast(pa.string()))
        src = plain  # noqa: F841 -- read by chdb's Python() table function
        self.s.query("INSERT INTO towers SELECT * FROM Python(src)")
        self.s.query("OPTIMIZE TABLE towers FINAL")

    def query(self, sql: str) -> pa.Table:
        r = self.s.query(f"{sql} SETTINGS max_threads = {self.threads}", "ArrowStream")
        return ipc.open_stream(r.bytes()).read_all() if r.bytes() else pa.table({})

    def tile_sql(self, z, x, y, cat, hi) -> str:
        return tile_sql(z, x, y, cat, hi, shift_fn="bitShiftRight").replace("count(*)", "count()")

    def hist_sql(self, *a) -> str:
        return hist_sql("chdb", *a)


BRUSH_BINS = 48  # the explorer's


def brush_drags(srv, name, engines, fixed, created_range, drags, events, mismatches) -> dict:
    """Time brush drags on `range` (see the module's doc); returns per-setup
    figures, and appends to `mismatches` any answer that differs."""
    import random

    rng = random.Random(15)
    meta = json.loads(get(f"{srv.base}/datasets/{name}")[1])
    col = next(c for c in meta["columns"] if c["name"] == "range")
    lo_v, hi_v = col["min"], col["max"]
    exp = int(np.floor(np.log10((hi_v - lo_v) / 500)))
    step = 10.0 ** exp
    rnd = lambda v: float(f"{round(v / step) * step:.12g}")  # noqa: E731 -- format.js's roundForAxis
    text = lambda v: str(int(v)) if v == int(v) else repr(v)  # noqa: E731 -- state.js's numText
    day = 86_400_000
    times: dict[str, list[list[float]]] = {}

    def add(setup, drag, ms):
        times.setdefault(setup, [[] for _ in range(drags)])[drag].append(ms)

    for d in range(drags):
        c_lo = CREATED[0] + d * 37 * day  # the other panel's filter: new per drag
        c_filter = f"created:{c_lo}.."
        a0 = rnd(lo_v + (hi_v - lo_v) * rng.uniform(0.05, 0.3))
        for k in range(events):
            b = rnd(a0 + (hi_v - lo_v) * rng.uniform(0.05, 0.6))
            lo, hi = (a0, b) if a0 < b else (b, a0)
            rf = f"range:{text(lo)}..{text(hi)}"
            paths = [f"/datasets/{name}/histogram/radio?filter={rf}&filter={c_filter}",
                     f"/datasets/{name}/histogram/created?bins={BRUSH_BINS}&filter={rf}&filter={c_filter}",
                     f"/datasets/{name}/count?filter={rf}&filter={c_filter}"]
            answers = {}
            for setup, extra in (("pointillist brush hint", f"&brush=range:1e{exp}"), ("pointillist scan", "")):
                client, server = 0.0, 0.0
                for p in paths:
                    ms, body, timing = get(srv.base + p + extra)
                    client += ms - fixed["pointillist"]
                    server += server_ms(timing) or 0.0
                    answers.setdefault(setup, []).append(json.loads(body))
                add(setup, d, client)
                add(setup + " (server)", d, server)
            if answers["pointillist brush hint"] != answers["pointillist scan"]:
                mismatches.append(f"brush drag {d} move {k}: hinted answers differ from the scan")
            # The explorer's way: the pointer entered the histogram before the
            # drag, and its prewarm built the indexes (timed apart, as
            # "hover"). Another `created` filter, so these indexes are new.
            w_filter = f"created:{c_lo + 11 * day}.."
            w_paths = [p.replace(c_filter, w_filter) for p in paths]
            if k == 0:
                client, server = 0.0, 0.0
                for p in w_paths:
                    plain = p.replace(f"filter={rf}&", "")  # no range filter before the drag
                    ms, _, timing = get(srv.base + plain + f"&brush=range:1e{exp}")
                    client += ms - fixed["pointillist"]
                    server += server_ms(timing) or 0.0
                add("hover prewarm, over HTTP", d, client)
                add("hover prewarm (server)", d, server)
            client, server, got = 0.0, 0.0, []
            for p in w_paths:
                ms, body, timing = get(srv.base + p + f"&brush=range:1e{exp}")
                client += ms - fixed["pointillist"]
                server += server_ms(timing) or 0.0
                got.append(json.loads(body))
            add("pointillist hint, prewarmed on hover", d, client)
            add("pointillist hint, prewarmed on hover (server)", d, server)
            if k in (0, events - 1):
                want = [json.loads(get(srv.base + p)[1]) for p in w_paths]
                if got != want:
                    mismatches.append(f"brush drag {d} move {k}: prewarmed answers differ from the scan")
            radio, created, count = answers["pointillist scan"]
            for e in engines:
                dl = DIALECTS[e.name]
                where = (f"range >= {lo} AND range <= {hi} AND {dl['us']} >= {c_lo * 1000}")
                cmin, cmax = created_range
                width = (cmax - cmin) / BRUSH_BINS
                kexpr = dl["int"].format(f"floor(({dl['us']} - {cmin}) / {width})")
                sqls = [f"SELECT radio AS k, {dl['count']} AS n FROM towers WHERE {where} GROUP BY radio",
                        f"SELECT least({kexpr}, {BRUSH_BINS - 1}) AS k, {dl['count']} AS n FROM towers "
                        f"WHERE range >= {lo} AND range <= {hi} GROUP BY k",
                        f"SELECT {dl['count']} AS n FROM towers WHERE {where}"]
                total, got = 0.0, []
                for q in sqls:
                    t = time.perf_counter()
                    got.append(e.query(q))
                    total += (time.perf_counter() - t) * 1e3 - fixed[e.name]
                add(e.name, d, total)
                n = int(got[2].column("n")[0].as_py())
                if (engine_counts(got[0]) != hist_counts(radio, "radio")
                        or {kk: vv for kk, vv in engine_counts(got[1]).items()} != hist_counts(created, "created")
                        or n != count["count"]):
                    mismatches.append(f"brush drag {d} move {k}: {e.name} differs")
    out = {}
    for setup, per_drag in times.items():
        later = sorted(x for dr in per_drag for x in dr[1:])
        out[setup] = {
            "first_median": statistics.median(dr[0] for dr in per_drag),
            "later_p50": statistics.median(later) if later else None,
            "later_p99": later[min(len(later) - 1, int(0.99 * len(later)))] if later else None,
            "all_p50": statistics.median(x for dr in per_drag for x in dr),
        }
    return out


def median(xs):
    return statistics.median(xs) if xs else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True, type=Path)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--engines", default="duckdb,chdb")
    ap.add_argument("--json-out", type=Path)
    ap.add_argument("--cases", default="tiles,hist,brush",
                    help="comma list of tiles, hist, brush (default: all)")
    ap.add_argument("--drags", type=int, default=5)
    ap.add_argument("--events", type=int, default=25)
    a = ap.parse_args()
    binary = os.environ.get("POINTILLIST", "target/release/pointillist")
    name = a.dataset.name

    t = time.perf_counter()
    rows = load_rows(a.dataset)
    print(f"rows {rows.num_rows:,} read in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    created_us = rows.column("created").cast(pa.int64())
    import pyarrow.compute as pc

    mm = pc.min_max(created_us)
    created_range = (mm["min"].as_py(), mm["max"].as_py())

    engines = []
    load_s = {}
    for e in a.engines.split(","):
        cls = {"duckdb": DuckEngine, "chdb": ChEngine}[e]
        t = time.perf_counter()
        try:
            engines.append(cls(rows, a.threads))
        except ImportError as err:
            print(f"{e}: not installed ({err}); skipped", file=sys.stderr)
            continue
        load_s[e] = time.perf_counter() - t
        print(f"{e}: table built in {load_s[e]:.1f} s", file=sys.stderr)
    del rows

    off = Server(binary, a.dataset, ["--cache-mb", "0", "--cells-mb", "0", "--filter-bits-mb", "0"])
    on = Server(binary, a.dataset, [])
    fixed = {}
    try:
        hs = [get(off.base + "/health")[0] for _ in range(60)]
        fixed["pointillist"] = median(hs[10:])
        for e in engines:
            xs = []
            for _ in range(60):
                t = time.perf_counter()
                e.query("SELECT 1 AS one")
                xs.append((time.perf_counter() - t) * 1e3)
            fixed[e.name] = median(xs[10:])

        wanted = set(a.cases.split(","))
        cases = ([(c[0], "tile", c) for c in TILES] if "tiles" in wanted else []) + ([
            ("histogram radio, 2 filters", "hist", "radio"),
            ("histogram created, 2 filters", "hist", "created"),
        ] if "hist" in wanted else [])
        res = {c[0]: {"off_client": [], "off_server": [], "on_client": [], "on_server": [],
                      **{e.name: [] for e in engines}} for c in cases}
        mismatches = []
        expected_grids = {}
        for i in range(a.runs + 1 if cases else 0):  # run 0 warms up and is not counted
            hi = 2000 + i
            for label, kind, spec in cases:
                r = res[label]
                if kind == "tile":
                    _, z, x, y, agg, ranged = spec
                    h = hi if ranged else None
                    cat = agg.startswith("count_cat")
                    q = f"agg={agg}&scale=tile&alpha={200 + i % 56}" + (f"&filter=range:0..{h}" if h else "")
                    path = f"/tiles/{name}/{z}/{x}/{y}.png?{q}"
                    key = (label, h)
                    if key not in expected_grids:
                        expected_grids = {k: v for k, v in expected_grids.items() if k[0] != label}
                        expected_grids[key] = pointillist_grid(binary, a.dataset, z, x, y, agg, h)
                    want = expected_grids[key]
                    for srv, tag in ((off, "off"), (on, "on")):
                        ms, _, timing = get(srv.base + path)
                        if i:
                            r[f"{tag}_client"].append(ms - fixed["pointillist"])
                            r[f"{tag}_server"].append(server_ms(timing))
                    for e in engines:
                        sql = e.tile_sql(z, x, y, cat, h)
                        tt = time.perf_counter()
                        tbl = e.query(sql)
                        ms = (time.perf_counter() - tt) * 1e3
                        if i:
                            r[e.name].append(ms - fixed[e.name])
                        g = grid_of(tbl, cat)
                        if g.shape != want.shape or not np.array_equal(g, want):
                            mismatches.append(f"{label} run {i}: {e.name} grid differs "
                                              f"(total {int(g.sum())} vs {int(want.sum())})")
                else:
                    column = spec
                    url_path = hist_url("", name, column, hi)
                    got = {}
                    for srv, tag in ((off, "off"), (on, "on")):
                        ms, body, timing = get(srv.base + url_path)
                        got = hist_counts(json.loads(body), column)
                        if i:
                            r[f"{tag}_client"].append(ms - fixed["pointillist"])
                            r[f"{tag}_server"].append(server_ms(timing))
                    for e in engines:
                        sql = e.hist_sql(column, hi, created_range)
                        tt = time.perf_counter()
                        tbl = e.query(sql)
                        ms = (time.perf_counter() - tt) * 1e3
                        if i:
                            r[e.name].append(ms - fixed[e.name])
                        theirs = engine_counts(tbl)
                        if theirs != got:
                            mismatches.append(f"{label} run {i}: {e.name} counts differ "
                                              f"(total {sum(theirs.values())} vs {sum(got.values())})")
        brush = (brush_drags(on, name, engines, fixed, created_range, a.drags, a.events, mismatches)
                 if "brush" in wanted else None)
    finally:
        off.stop()
        on.stop()

    # `render --timings`: the aggregate alone, from the source the planner
    # picks (rows, the overview, or query cells made once per query).
    inproc, plans = {}, {}
    for label, z, x, y, agg, ranged in (TILES if "tiles" in wanted else []):
        inproc[label], plans[label] = inproc_aggregate_ms(binary, a.dataset, z, x, y, agg,
                                                          2000 if ranged else None, a.runs)

    summary = []
    head = (f"{'case':32} {'pt agg':>8} {'plan':>8} {'pt srv off':>10} {'pt http off':>11} {'pt http on':>10} "
            + " ".join(f"{e.name:>8}" for e in engines) + f" {'best/http off':>13}")
    print(head)
    for label, _, _ in cases:
        r = res[label]
        row = {"case": label, "pointillist_aggregate_ms": inproc.get(label),
               "pointillist_aggregate_plan": plans.get(label),
               "pointillist_server_ms_cache_off": median([v for v in r["off_server"] if v is not None]),
               "pointillist_http_ms_cache_off": median(r["off_client"]),
               "pointillist_server_ms_cache_on": median([v for v in r["on_server"] if v is not None]),
               "pointillist_http_ms_cache_on": median(r["on_client"])}
        for e in engines:
            row[f"{e.name}_ms"] = median(r[e.name])
        best = min((row[f"{e.name}_ms"] for e in engines), default=None)
        row["margin_over_http_cache_off"] = best / row["pointillist_http_ms_cache_off"] if best else None
        summary.append(row)
        f = lambda v: f"{v:8.2f}" if isinstance(v, float) else f"{'':>8}"  # noqa: E731
        print(f"{label:32} {f(row['pointillist_aggregate_ms'])} {plans.get(label, ''):>8} "
              f"{f(row['pointillist_server_ms_cache_off']):>10} "
              f"{f(row['pointillist_http_ms_cache_off']):>11} {f(row['pointillist_http_ms_cache_on']):>10} "
              + " ".join(f(row[f'{e.name}_ms']) for e in engines)
              + (f" {row['margin_over_http_cache_off']:12.1f}x" if best else ""))
    if brush:
        print(f"crossfilter brush: {a.drags} drags x {a.events} moves; per move, the sum of 3 answers "
              f"(radio, created, count), fixed cost per call subtracted (ms)")
        print(f"{'':46} {'first move':>10} {'later p50':>10} {'later p99':>10} {'all p50':>10}")
        g = lambda v: f"{v:10.2f}" if v is not None else f"{'':>10}"  # noqa: E731
        for k, v in brush.items():
            print(f"{k:46} {g(v['first_median'])} {g(v['later_p50'])} {g(v['later_p99'])} {g(v['all_p50'])}")
        best = min((v["later_p50"] for k, v in brush.items() if k in ("duckdb", "chdb")), default=None)
        if best:
            print(f"best engine / pointillist with hint, later moves p50: "
                  f"{best / brush['pointillist brush hint (server)']['later_p50']:.1f}x server, "
                  f"{best / brush['pointillist brush hint']['later_p50']:.1f}x over HTTP")
    print(f"fixed cost per call subtracted (ms): {json.dumps({k: round(v, 3) for k, v in fixed.items()})}")
    print(f"engine table builds (s): {json.dumps({k: round(v, 1) for k, v in load_s.items()})}")
    if a.json_out:
        a.json_out.write_text(json.dumps({"runs": a.runs, "threads": a.threads, "fixed_ms": fixed,
                                          "load_s": load_s, "cases": summary, "brush": brush,
                                          "mismatches": mismatches}, indent=1))
    if mismatches:
        print("RESULTS DIFFER:", *mismatches[:20], sep="\n  ")
        return 1
    print("results agree: every grid cell and histogram count, every run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
