#!/usr/bin/env python3
"""Cold and warm tiles from s3:// against the same tiles from a local pack.

  bench_s3.py --url http://127.0.0.1:8095 --local towers --remote towers_s3 \
      [--tiles 300] [--seed 1] [--json-out F]

One trace of tiles (z8..z14 around a few cities, each with a range filter
of its own, so no cache but the data's answers it) is requested, one at a
time: local (warms the page cache; not reported); s3 cold (the object cache
is empty; the first tile reported on its own); then local and s3 warm side
by side, tile by tile, in alternating order.
Every s3 tile must equal the local one byte for byte. Reports p50/p99 per
pass, the warm/local ratio and the bytes fetched from object storage per
cold tile (from /metrics). Only the standard library is used.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
import urllib.request

from tracelib import PLACES, tile_of


def trace(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        lon, lat = rng.choice(PLACES)
        z = rng.randint(8, 14)
        lon += rng.uniform(-2, 2) / 2 ** (z - 8)
        lat += rng.uniform(-1, 1) / 2 ** (z - 8)
        x, y = tile_of(lon, lat, z)
        lo = rng.randint(0, 4000)
        out.append(f"{z}/{x}/{y}.png?filter=range:{lo}..{lo + rng.randint(500, 6000)}")
    return out


def fetched(url: str) -> float:
    text = urllib.request.urlopen(f"{url}/metrics").read().decode()
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
               if l.startswith("pointillist_object_bytes_fetched_total"))


def run(url: str, name: str, tiles: list[str]) -> tuple[list[float], list[bytes]]:
    ms, bodies = [], []
    for t in tiles:
        t0 = time.perf_counter()
        with urllib.request.urlopen(f"{url}/tiles/{name}/{t}") as r:
            body = r.read()
        ms.append((time.perf_counter() - t0) * 1e3)
        bodies.append(body)
    return ms, bodies


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--local", required=True)
    ap.add_argument("--remote", required=True)
    ap.add_argument("--tiles", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json-out")
    a = ap.parse_args()
    tiles = trace(a.tiles, a.seed)
    run(a.url, a.local, tiles)
    before = fetched(a.url)
    first, _ = run(a.url, a.remote, tiles[:1])
    bytes_first = fetched(a.url) - before
    cold, cb = run(a.url, a.remote, tiles[1:])
    bytes_cold = fetched(a.url) - before
    # Warm: local and s3 side by side, tile by tile, in alternating order.
    local, warm, lb, wb = [], [], [], []
    for i, t in enumerate(tiles[1:]):
        order = [(a.local, local, lb), (a.remote, warm, wb)]
        for name, ms, bodies in order if i % 2 == 0 else order[::-1]:
            m, b = run(a.url, name, [t])
            ms += m
            bodies += b
    bad = sum(1 for x, y, z in zip(lb, cb, wb) if not (x == y == z))
    report = {
        "tiles": len(tiles),
        "first_cold_tile": {"ms": first[0], "bytes_fetched": bytes_first},
        "local_ms": {"p50": statistics.median(local), "p99": pct(local, 0.99)},
        "s3_cold_ms": {"p50": statistics.median(cold), "p99": pct(cold, 0.99)},
        "s3_warm_ms": {"p50": statistics.median(warm), "p99": pct(warm, 0.99)},
        "warm_over_local": {"p50": statistics.median(warm) / statistics.median(local),
                            "p99": pct(warm, 0.99) / pct(local, 0.99)},
        "bytes_fetched_per_cold_tile": bytes_cold / len(tiles),
        "tiles_differing_from_local": bad,
    }
    print(json.dumps(report, indent=1))
    if a.json_out:
        json.dump(report, open(a.json_out, "w"), indent=1)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
