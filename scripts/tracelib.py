"""What the trace scripts share: the places map users look at, and the
XYZ tile under a point."""
from __future__ import annotations

import math

PLACES = [(2.35, 48.85), (-74.0, 40.7), (139.7, 35.7), (13.4, 52.5), (-0.1, 51.5), (77.2, 28.6)]


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180.0) / 360.0 * n)
    y = int((1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)
