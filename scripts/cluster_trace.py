#!/usr/bin/env python3
"""Replay a pan/zoom tile trace through a load balancer, counting failures.

  cluster_trace.py --url http://127.0.0.1:8100 --dataset towers \
      --requests 2000 --threads 8 [--unique] [--json-out F]

Tiles follow a random walk of pans and zooms (z2..z12) around a few
places, as map users move, at the URLs the dataset's TileJSON gives (with
its version), as a map client would. --unique adds a varying parameter so
that the URLs miss the balancer's cache (the replicas do the work).
Prints and writes: requests, failures (status other than 200 or 204, or a transport
error), tiles/s, and the replicas that answered (X-Upstream). Exit status
1 when any request failed. Only the standard library is used.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import threading
import time
import urllib.error
import urllib.request

from tracelib import PLACES, tile_of


def trace(n: int, seed: int, min_zoom: int = 2) -> list[tuple[int, int, int]]:
    rng = random.Random(seed)
    out = []
    lon, lat = rng.choice(PLACES)
    z = max(6, min_zoom)
    for _ in range(n):
        r = rng.random()
        if r < 0.1:
            lon, lat = rng.choice(PLACES)
        elif r < 0.3:
            z = min(12, z + 1)
        elif r < 0.45:
            z = max(min_zoom, z - 1)
        else:
            step = 360 / 2**z
            lon = max(-179.0, min(179.0, lon + rng.uniform(-step, step)))
            lat = max(-80.0, min(80.0, lat + rng.uniform(-step, step) / 2))
        out.append((z, *tile_of(lon, lat, z)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--unique", action="store_true")
    ap.add_argument("--min-zoom", type=int, default=2)
    ap.add_argument("--query", default="", help="appended to every tile URL, e.g. filter=range:0..2000")
    ap.add_argument("--json-out")
    a = ap.parse_args()
    tiles = trace(a.requests, a.seed, a.min_zoom)
    with urllib.request.urlopen(f"{a.url}/datasets/{a.dataset}/tilejson", timeout=30) as r:
        template = json.load(r)["tiles"][0]
    if template.startswith("/"):
        template = a.url + template
    lock = threading.Lock()
    state = {"next": 0, "ok": 0, "failed": 0, "errors": {}, "upstreams": {}}

    def worker() -> None:
        while True:
            with lock:
                i = state["next"]
                if i >= len(tiles):
                    return
                state["next"] += 1
            z, x, y = tiles[i]
            url = template.replace("{z}", str(z)).replace("{x}", str(x)).replace("{y}", str(y))
            if a.query:
                url += ("&" if "?" in url else "?") + a.query
            if a.unique:
                url += f"&alpha={200 + (a.seed * 7919 + i) % 56}"
            try:
                with urllib.request.urlopen(url, timeout=30) as r:
                    r.read()
                    status, upstream = r.status, r.headers.get("X-Upstream", "?")
            except urllib.error.HTTPError as e:
                status, upstream = e.code, e.headers.get("X-Upstream", "?")
            except OSError as e:
                status, upstream = type(e).__name__, "?"
            with lock:
                if status in (200, 204):  # 204: a tile with no rows
                    state["ok"] += 1
                else:
                    state["failed"] += 1
                    state["errors"][str(status)] = state["errors"].get(str(status), 0) + 1
                # nginx lists every replica it tried, failed ones first.
                last = upstream.split(",")[-1].strip()
                state["upstreams"][last] = state["upstreams"].get(last, 0) + 1

    t = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(a.threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    seconds = time.perf_counter() - t
    report = {
        "requests": len(tiles),
        "ok": state["ok"],
        "failed": state["failed"],
        "errors": state["errors"],
        "tiles_per_s": round(len(tiles) / seconds, 1),
        "upstreams": state["upstreams"],
    }
    print(json.dumps(report), flush=True)
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(report, f, indent=1)
    return 1 if state["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
