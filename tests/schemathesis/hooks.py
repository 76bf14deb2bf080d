"""Schemathesis hooks for Pointillist's OpenAPI contract.

JSON Schema describes each parameter on its own. A few rules join two
values (a bbox's west below its east, a range's min below its max, min_alpha
at most alpha, no span with eq_hist, a colour key only for categorical
aggregations, a tile inside its zoom, a JSON grid within its cell budget).
The server answers 400 when they are broken, as the document says; these
hooks keep generated *valid* requests to them, so that positive tests test
acceptance rather than these joint rules. Negative tests are left alone.
"""

import datetime
import re
import urllib.parse

import schemathesis

NUM = re.compile(r"^(-?[0-9.]+),(-?[0-9.]+)$")
RANGE = re.compile(r"^([^:]*):(.*?)\.\.(.*)$")
MAX_ZOOM = 30
MAX_JSON_CELLS = 1 << 18
MAX_GRID_BYTES = 256 << 20


def _bbox(value):
    try:
        w, s, e, n = (float(v) for v in value.split(","))
    except ValueError:
        return value
    w, e = sorted((max(-180.0, min(180.0, w)), max(-180.0, min(180.0, e))))
    s, n = sorted((max(-85.0, min(85.0, s)), max(-85.0, min(85.0, n))))
    if e - w < 0.01:
        w, e = (w, w + 1.0) if w < 179 else (w - 1.0, w)
    if n - s < 0.01:
        s, n = (s, s + 1.0) if s < 84 else (s - 1.0, s)
    return f"{w},{s},{e},{n}"


def _bound(v):
    """A range bound as a number (temporal bounds: epoch ms or ISO)."""
    try:
        return float(v)
    except ValueError:
        pass
    for fmt in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d"):
        try:
            t = datetime.datetime.strptime(v, fmt).replace(tzinfo=datetime.timezone.utc)
            return t.timestamp() * 1000.0
        except ValueError:
            continue
    return None


def _range(f):
    m = RANGE.match(f)
    if not m or ":in:" in f:
        return f
    col, lo, hi = m.groups()
    a, b = _bound(lo), _bound(hi)
    if a is not None and b is not None and a > b:
        lo, hi = hi, lo
    return f"{col}:{lo}..{hi}"


@schemathesis.hook
def map_query(ctx, query):
    if not query:
        return query
    if "bbox" in query and isinstance(query["bbox"], str):
        query["bbox"] = _bbox(query["bbox"])
    if "span" in query and isinstance(query["span"], str):
        m = NUM.match(query["span"])
        if m:
            a, b = sorted(float(v) for v in m.groups())
            query["span"] = f"{a},{b}"
        if query.get("how", "eq_hist") == "eq_hist":
            del query["span"]
    f = query.get("filter")
    if isinstance(f, list):
        query["filter"] = [_range(x) if isinstance(x, str) else x for x in f]
    elif isinstance(f, str):
        query["filter"] = _range(f)
    a, ma = query.get("alpha"), query.get("min_alpha", 40)
    if isinstance(a, int) and isinstance(ma, int) and ma > a:
        query["min_alpha"] = a
    agg = query.get("agg", "count")
    if "color_key" in query and not (
        isinstance(agg, str) and (agg.startswith("count_cat:") or agg.startswith("by:"))
    ):
        del query["color_key"]
    if "width" in query or "height" in query:
        w, h = query.get("width", 256), query.get("height", 256)
        if isinstance(w, int) and isinstance(h, int):
            # Categorical aggregations hold a grid per category (at most 64
            # here); std/var hold 20 bytes a cell.
            cats = 64 if isinstance(agg, str) and (agg.startswith("count_cat:") or agg.startswith("by:")) else 1
            if query.get("format") == "json":
                cells = MAX_JSON_CELLS // cats
            else:
                cells = MAX_GRID_BYTES // (20 * cats)
            while w * h > cells:
                w, h = max(1, w // 2), max(1, h // 2)
            query["width"], query["height"] = w, h
    return query


@schemathesis.hook
def map_path_parameters(ctx, path_parameters):
    if not path_parameters:
        return path_parameters
    try:
        z = int(path_parameters.get("z"))
    except (TypeError, ValueError):
        return path_parameters
    if 0 <= z <= MAX_ZOOM and "x" in path_parameters:
        n = 1 << z
        try:
            x = int(path_parameters["x"])
            # Only an x the schema allows is moved inside its zoom: one
            # outside the schema is a negative case and stays as generated.
            if 0 <= x < 1 << MAX_ZOOM:
                path_parameters["x"] = x % n
        except (TypeError, ValueError):
            pass
        file = path_parameters.get("file")
        if isinstance(file, str):
            m = re.match(r"^([0-9]+)(@2x)?\.(png|webp)$", urllib.parse.unquote(file))
            if m:
                path_parameters["file"] = f"{int(m.group(1)) % n}{m.group(2) or ''}.{m.group(3)}"
    return path_parameters
