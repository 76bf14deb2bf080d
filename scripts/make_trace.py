#!/usr/bin/env python3
"""A realistic pan/zoom trace of XYZ tile requests for scripts/loadtest.sh.

Simulated analysts open the map on the world, zoom into a populated place
(cities weighted by population, from data/cities.csv), pan around a few
times, zoom further, and sometimes switch aggregation or filters. Each view is
a 1400x900 browser viewport; every tile covering it becomes one request, in
the order a map client asks for them. Deterministic for a seed; standard
library only.
"""
import argparse
import csv
import math
import random
from pathlib import Path

VIEW_W, VIEW_H = 1400, 900
STYLES = [
    ("agg=count&how=eq_hist&cmap=fire", 0.55),
    ("agg=count_cat:radio", 0.2),
    ("agg=count&how=log&cmap=viridis&filter=radio:in:LTE,NR", 0.1),
    ("agg=count&how=eq_hist&filter=range:0..2000", 0.1),
    ("agg=mean:range&how=linear&cmap=bgy", 0.05),
]


def tile_xy(lon, lat, z):
    n = 2 ** z
    x = (lon + 180.0) / 360.0 * n
    lat = max(min(lat, 85.0511), -85.0511)
    y = (1.0 - math.log(math.tan(math.radians(lat)) + 1 / math.cos(math.radians(lat))) / math.pi) / 2.0 * n
    return x, y


def view_tiles(lon, lat, z):
    """Tiles covering a VIEW_W x VIEW_H viewport centred on lon/lat at zoom z."""
    cx, cy = tile_xy(lon, lat, z)
    n = 2 ** z
    half_w, half_h = VIEW_W / 512.0, VIEW_H / 512.0
    out = []
    for ty in range(max(0, int(cy - half_h)), min(n, int(cy + half_h) + 1)):
        for tx in range(int(cx - half_w), int(cx + half_w) + 1):
            out.append((z, tx % n, ty))
    # World copies wrap onto the same tiles; clients fetch each once, centre first.
    out = list(dict.fromkeys(out))
    out.sort(key=lambda t: (t[1] + 0.5 - cx % n) ** 2 + (t[2] + 0.5 - cy) ** 2)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="towers")
    ap.add_argument("--sessions", type=int, default=400)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    cities = []
    with open(Path(__file__).resolve().parent.parent / "data" / "cities.csv", newline="") as f:
        for row in csv.DictReader(f):
            cities.append((float(row["lon"]), float(row["lat"]), float(row["population"])))
    weights = [c[2] ** 0.85 for c in cities]
    paths = []
    for _ in range(a.sessions):
        style = rng.choices([s for s, _ in STYLES], [w for _, w in STYLES])[0]
        lon, lat, _ = rng.choices(cities, weights)[0]
        z = rng.choice([1, 2, 2, 3])
        view_lon, view_lat = rng.uniform(-60, 90), rng.uniform(-20, 50)
        steps = rng.randint(6, 14)
        for _ in range(steps):
            for (tz, tx, ty) in view_tiles(view_lon, view_lat, z):
                paths.append(f"/tiles/{a.dataset}/{tz}/{tx}/{ty}.png?{style}")
            r = rng.random()
            if r < 0.55 and z < 16:
                # Zoom towards the target city.
                z += 1
                view_lon += (lon - view_lon) * 0.6
                view_lat += (lat - view_lat) * 0.6
            elif r < 0.9:
                # Pan by a fraction of the viewport.
                deg = 360.0 / 2 ** z
                view_lon += rng.uniform(-1, 1) * deg * 1.5
                view_lat = max(min(view_lat + rng.uniform(-1, 1) * deg, 80), -80)
            elif z > 1:
                z -= 1
    with open(a.out, "w") as f:
        f.write("\n".join(paths) + "\n")
    zs = [int(p.split("/")[3]) for p in paths]
    print(f"{len(paths)} tile requests, zoom {min(zs)}..{max(zs)}, median zoom {sorted(zs)[len(zs) // 2]}")


if __name__ == "__main__":
    main()
