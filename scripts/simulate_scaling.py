#!/usr/bin/env python3
"""Simulate N replicas over a dataset on object storage: cache hit rate,
bytes fetched and load per replica, for URI hashing against quadkey-prefix
routing (docs/scaling.md).

  simulate_scaling.py --manifest DIR/manifest.json [--requests 40000]
      [--users 200] [--replicas 1,4,16,64] [--cache-share 0.1] [--level 6]

Model:
- The data: the packed dataset's partitions (from its manifest), each read
  as whole column chunks (qx, qy and one filter column: 12 bytes a row),
  as the server's object cache reads them.
- A tile reads the partitions whose bounds meet it (a superset of what the
  engine's Hilbert key ranges read; tight for small partitions).
- Traffic: `users` sessions, each starting where the data is (a random
  partition, weighted by rows) and panning and zooming at z8-z14, the zooms
  whose tiles read rows; requests of all sessions interleave.
- Routing: nginx's consistent hash (a ring of 160 points a replica) of the
  request URI, or of the dataset and the tile's quadkey prefix at `level`
  (deploy/nginx/quadkey.js).
- Each replica keeps an LRU cache of partition chunks holding
  `cache-share` of the dataset.
Prints a Markdown table. Only the standard library is used.
"""
from __future__ import annotations

import argparse
import bisect
import hashlib
import json
import random
from collections import OrderedDict

ROW_BYTES = 12
Q = 2**32


class Ring:
    def __init__(self, n: int, points: int = 160):
        self.keys, self.nodes = [], []
        for node in range(n):
            for p in range(points):
                h = int.from_bytes(hashlib.md5(f"replica-{node}-{p}".encode()).digest()[:4], "big")
                self.keys.append(h)
                self.nodes.append(node)
        order = sorted(range(len(self.keys)), key=self.keys.__getitem__)
        self.keys = [self.keys[i] for i in order]
        self.nodes = [self.nodes[i] for i in order]

    def node(self, key: str) -> int:
        h = int.from_bytes(hashlib.md5(key.encode()).digest()[:4], "big")
        i = bisect.bisect(self.keys, h) % len(self.keys)
        return self.nodes[i]


def quadkey(z: int, x: int, y: int, level: int) -> str:
    if z < level:
        return f"{z}/{x}/{y}"
    s = z - level
    x, y = x >> s, y >> s
    return "".join(str(((x >> i) & 1) + 2 * ((y >> i) & 1)) for i in range(level - 1, -1, -1))


def sessions(parts, users: int, requests: int, seed: int):
    rng = random.Random(seed)
    weights = [p["rows"] for p in parts]
    walks = []
    for _ in range(users):
        p = rng.choices(parts, weights)[0]
        x0, y0, x1, y1 = p["bounds"]["quantized"]
        walks.append([rng.uniform(x0, x1), rng.uniform(y0, y1), rng.randint(8, 14)])
    for i in range(requests):
        w = walks[i % users]
        r = rng.random()
        if r < 0.2:
            w[2] = min(14, w[2] + 1)
        elif r < 0.35:
            w[2] = max(8, w[2] - 1)
        else:
            step = Q / 2 ** w[2]
            w[0] = min(Q - 1, max(0, w[0] + rng.uniform(-step, step)))
            w[1] = min(Q - 1, max(0, w[1] + rng.uniform(-step, step)))
        z = w[2]
        yield z, int(w[0]) >> (32 - z), int(w[1]) >> (32 - z)


def touched(parts, z: int, x: int, y: int):
    size = Q >> z
    tx0, ty0 = x * size, y * size
    tx1, ty1 = tx0 + size - 1, ty0 + size - 1
    return [i for i, p in enumerate(parts)
            if not (p["bounds"]["quantized"][2] < tx0 or p["bounds"]["quantized"][0] > tx1
                    or p["bounds"]["quantized"][3] < ty0 or p["bounds"]["quantized"][1] > ty1)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--manifest", required=True)
    ap.add_argument("--requests", type=int, default=40000)
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--replicas", default="1,4,16,64")
    ap.add_argument("--cache-share", type=float, default=0.1)
    ap.add_argument("--level", type=int, default=6)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    m = json.load(open(a.manifest))
    parts = m["partitions"]
    total = sum(p["rows"] for p in parts) * ROW_BYTES
    trace = list(sessions(parts, a.users, a.requests, a.seed))
    reads = [touched(parts, *t) for t in trace]
    print(f"{m['rows']:,} rows in {len(parts)} partitions, {total / 1e6:.0f} MB of chunks read "
          f"by tiles; {len(trace):,} tiles from {a.users} sessions at z8-z14; each replica caches "
          f"{a.cache_share:.0%} of the data\n")
    print("| replicas | routing | chunk hit rate | fetched from storage | busiest replica's share of requests (fair share) |")
    print("|---|---|---|---|---|")
    for n in map(int, a.replicas.split(",")):
        ring = Ring(n)
        for policy in ("URI hash", "quadkey prefix"):
            caches = [OrderedDict() for _ in range(n)]
            used = [0] * n
            load = [0] * n
            hits = misses = fetched = 0
            cap = a.cache_share * total
            for (z, x, y), ps in zip(trace, reads):
                key = f"/tiles/d/{z}/{x}/{y}.png" if policy == "URI hash" else "d/" + quadkey(z, x, y, a.level)
                r = ring.node(key)
                load[r] += 1
                c = caches[r]
                for p in ps:
                    b = parts[p]["rows"] * ROW_BYTES
                    if p in c:
                        c.move_to_end(p)
                        hits += 1
                        continue
                    misses += 1
                    fetched += b
                    c[p] = b
                    used[r] += b
                    while used[r] > cap and len(c) > 1:
                        _, old = c.popitem(last=False)
                        used[r] -= old
            rate = hits / max(1, hits + misses)
            share = max(load) / len(trace)
            print(f"| {n} | {policy} | {rate:.1%} | {fetched / 1e9:.2f} GB | {share:.1%} ({1 / n:.1%}) |")


if __name__ == "__main__":
    main()
