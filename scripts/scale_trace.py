#!/usr/bin/env python3
"""A brush-like trace against a running Pointillist server, one request at a time.

Pans and zooms over z0..z14 around the data's dense places; every tile
request carries a NEW range filter (as a brush sends), for three classes of
aggregation: count, count_cat:CATEGORICAL and mean:NUMERIC. Reports p50 /
p99 latency per zoom and class, rows read per request (from /metrics),
bytes the server read from storage, and the status counts. Then the
explorer's other requests around the same places, each with a new filter
too: a histogram of CATEGORICAL and a count inside a z6 tile's bbox, and the
points under a z12 cursor.

  scale_trace.py --url http://127.0.0.1:8099 --dataset towers \
      --numeric range --categorical radio --per-cell 12 --json-out out.json

Only the standard library is used.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import time
import urllib.error
import urllib.request

ZOOMS = [0, 2, 4, 6, 8, 10, 12, 14]


def get(url: str) -> tuple[int, bytes, dict]:
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            try:
                total += float(line.rsplit(" ", 1)[1])
            except ValueError:
                pass
    return total


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    lat = max(-85.0, min(85.0, lat))
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


def dense_places(base: str, name: str, k: int, rng: random.Random) -> list[tuple[float, float]]:
    """Centres of the densest cells of a coarse world grid of the data."""
    w, h = 128, 64
    st, body, _ = get(f"{base}/datasets/{name}/aggregate?bbox=-180,-85,180,85&width={w}&height={h}&format=json")
    if st != 200:
        raise SystemExit(f"aggregate: {st} {body[:200]!r}")
    doc = json.loads(body)
    values = doc["values"]
    flat = []
    for r, row in enumerate(values):
        for c, v in enumerate(row):
            if v:
                flat.append((v, r, c))
    flat.sort(reverse=True)
    top = flat[: max(k * 4, 16)]
    out = []
    for _ in range(k):
        _, r, c = rng.choice(top)
        lon = -180 + (c + rng.random()) * 360 / w
        # Rows are north first and evenly spaced in Web Mercator y.
        ymax = math.log(math.tan(math.pi / 4 + math.radians(85) / 2))
        y = ymax * (1 - 2 * (r + rng.random()) / h)
        lat = math.degrees(2 * math.atan(math.exp(y)) - math.pi / 2)
        out.append((lon, lat))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--numeric", required=True, help="column filtered (and averaged)")
    ap.add_argument("--categorical", required=True, help="column of count_cat")
    ap.add_argument("--per-cell", type=int, default=12, help="requests per zoom and class")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--zooms", default=",".join(map(str, ZOOMS)), help="comma-separated tile zooms")
    ap.add_argument("--json-out")
    a = ap.parse_args()
    base = a.url.rstrip("/")
    rng = random.Random(a.seed)
    st, body, _ = get(f"{base}/datasets/{a.dataset}")
    meta = json.loads(body)
    col = next(c for c in meta["columns"] if c["name"] == a.numeric)
    lo0, hi0 = float(col["min"]), float(col["max"])
    places = dense_places(base, a.dataset, 64, rng)
    classes = {
        "count": "count",
        "count_cat": f"count_cat:{a.categorical}",
        "mean": f"mean:{a.numeric}",
    }
    results: dict[str, dict] = {}
    statuses: dict[int, int] = {}
    m0 = get(f"{base}/metrics")[1].decode()

    def record(key: str, lat_ms: list[float], rows: list[float]) -> None:
        lat_ms.sort()
        results[key] = {
            "p50_ms": statistics.median(lat_ms),
            "p99_ms": lat_ms[min(len(lat_ms) - 1, math.ceil(0.99 * len(lat_ms)) - 1)],
            "rows_per_request": statistics.mean(rows),
        }
        r = results[key]
        print(f"{key:<16} p50 {r['p50_ms']:8.1f} ms  p99 {r['p99_ms']:8.1f} ms  rows/request {r['rows_per_request']:12.0f}", flush=True)

    def timed(path: str) -> tuple[float, float]:
        before = metric(get(f"{base}/metrics")[1].decode(), "pointillist_rows_scanned_total")
        t = time.perf_counter()
        st, _, _ = get(f"{base}{path}")
        ms = (time.perf_counter() - t) * 1e3
        after = metric(get(f"{base}/metrics")[1].decode(), "pointillist_rows_scanned_total")
        statuses[st] = statuses.get(st, 0) + 1
        return ms, after - before

    def new_filter() -> str:
        span = (hi0 - lo0) * rng.uniform(0.05, 0.5)
        lo = lo0 + rng.random() * (hi0 - lo0 - span)
        return f"{a.numeric}:{lo:.6g}..{lo + span:.6g}"

    for z in [int(z) for z in a.zooms.split(",") if z]:
        for cls, agg in classes.items():
            lat_ms = []
            rows = []
            for _ in range(a.per_cell):
                lon, lat = rng.choice(places)
                x, y = tile_of(lon, lat, z)
                ms, n = timed(f"/tiles/{a.dataset}/{z}/{x}/{y}@2x.png?agg={agg}&filter={new_filter()}")
                lat_ms.append(ms)
                rows.append(n)
            record(f"z{z}/{cls}", lat_ms, rows)
    ymax = math.asinh(math.tan(math.radians(85.0511287798)))

    def bbox(z: int, x: int, y: int) -> str:
        lat = lambda t: math.degrees(math.atan(math.sinh(ymax * (1 - 2 * t))))
        n = 2**z
        return f"{x / n * 360 - 180:.6f},{lat((y + 1) / n):.6f},{(x + 1) / n * 360 - 180:.6f},{lat(y / n):.6f}"

    extras = {
        "api/histogram": lambda lon, lat: f"/datasets/{a.dataset}/histogram/{a.categorical}?bbox={bbox(6, *tile_of(lon, lat, 6))}&filter={new_filter()}",
        "api/count": lambda lon, lat: f"/datasets/{a.dataset}/count?bbox={bbox(6, *tile_of(lon, lat, 6))}&filter={new_filter()}",
        "api/points": lambda lon, lat: f"/datasets/{a.dataset}/points?lon={lon:.5f}&lat={lat:.5f}&z=12&radius_px=8&filter={new_filter()}",
    }
    for key, path in extras.items():
        lat_ms, rows = [], []
        for _ in range(a.per_cell):
            ms, n = timed(path(*rng.choice(places)))
            lat_ms.append(ms)
            rows.append(n)
        record(key, lat_ms, rows)
    m1 = get(f"{base}/metrics")[1].decode()
    read = metric(m1, "pointillist_storage_read_bytes") - metric(m0, "pointillist_storage_read_bytes")
    print(f"statuses {statuses}; storage read during the trace {read / 2**20:.0f} MiB")
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"results": results, "statuses": statuses, "storage_read_bytes": read}, f, indent=1)
    # 204: a tile with no row under its filter, an answer like any other.
    return 0 if set(statuses) <= {200, 204} else 1


if __name__ == "__main__":
    raise SystemExit(main())
