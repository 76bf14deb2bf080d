"""Where a tile's server time goes: medians of Server-Timing over RUNS
requests per case (render job, encoding, and the rest: the server's own
path), with the client's time and `GET /health`'s for scale.

Every request is a tile cache miss (`alpha` differs per request, and the
server runs with `--cache-mb 0`); the zoom scale and its normalization are
cached as in production (a cold user's first tile of a zoom pays them once;
`scale=tile` rows show the per-tile scale instead).

usage: python3 scripts/bench_tile_path.py --port PORT [--runs 61] [--dataset towers]
"""
from __future__ import annotations

import argparse
import http.client
import re
import statistics
import time

CASES = [
    ("z12 count", "12/1205/1539", "agg=count"),
    ("z12 count, scale=tile", "12/1205/1539", "agg=count&scale=tile"),
    ("z8 count", "8/75/96", "agg=count"),
    ("z8 count_cat:radio", "8/75/96", "agg=count_cat:radio"),
    ("z8 count_cat:radio, scale=tile", "8/75/96", "agg=count_cat:radio&scale=tile"),
    ("z8 count_cat:radio, .webp", "8/75/96", "agg=count_cat:radio&webp"),
    ("z10 mean:range", "10/301/384", "agg=mean:range"),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--runs", type=int, default=61)
    ap.add_argument("--dataset", default="towers")
    a = ap.parse_args()
    c = http.client.HTTPConnection("127.0.0.1", a.port)

    def get(path: str) -> tuple[float, str]:
        t = time.perf_counter()
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        if r.status != 200:
            raise SystemExit(f"{path}: HTTP {r.status}")
        return (time.perf_counter() - t) * 1e3, r.getheader("server-timing") or ""

    m = statistics.median
    health = m(get("/health")[0] for _ in range(a.runs))
    print(f"GET /health, client side: {health:.3f} ms (median of {a.runs})")
    print("| case | client ms | server total | render | encode | server path |")
    print("|---|---|---|---|---|---|")
    for name, tile, q in CASES:
        ext = "png"
        if q.endswith("&webp"):
            q, ext = q[: -len("&webp")], "webp"
        cli, tot, ren, enc = [], [], [], []
        # One warm-up request fills the zoom scale (and its normalization).
        get(f"/tiles/{a.dataset}/{tile}.{ext}?{q}&alpha=199")
        for i in range(a.runs):
            ms, st = get(f"/tiles/{a.dataset}/{tile}.{ext}?{q}&alpha={200 + i % 56}")
            d = dict(re.findall(r"(\w+);dur=([\d.]+)", st))
            if "render" not in d:
                raise SystemExit(f"{name}: a tile cache hit ({st}); run the server with --cache-mb 0")
            cli.append(ms)
            tot.append(float(d["total"]))
            ren.append(float(d["render"]))
            enc.append(float(d[ext]))
        print(f"| {name} | {m(cli):.2f} | {m(tot):.2f} | {m(ren):.2f} | {m(enc):.2f} | {m(tot) - m(ren) - m(enc):.2f} |")


if __name__ == "__main__":
    main()
