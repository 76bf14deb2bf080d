"""Generate reference.json: Datashader 0.19.1 outputs for shade's tests.

Run with datashader==0.19.1 (numpy 2.x, colorcet 3.x) installed:
    python gen_reference.py > reference.json
For a larger, slower check (not committed), scale the case counts and grid
sizes and point the ignored test at the file:
    SCALE=10 SIZE=64 SEED=7 python gen_reference.py > /tmp/big.json
    SHADE_REFERENCE_JSON=/tmp/big.json cargo test --lib shade -- --ignored
Inputs are written top row first (Pointillist's orientation); Datashader
gets them flipped (its row 0 is the bottom) and its output is flipped back,
which also checks that spread composites in Datashader's row order.
"""
import json
import math
import os

import colorcet
import numpy as np
import xarray as xr
import datashader.transfer_functions as tf
from datashader.colors import Sets1to3

rng = np.random.default_rng(int(os.environ.get("SEED", "20260601")))
SCALE = int(os.environ.get("SCALE", "1"))
SIZE = int(os.environ.get("SIZE", "10"))


def agg2(data):
    h, w = data.shape
    return xr.DataArray(np.flipud(data).copy(), dims=["y", "x"],
                        coords={"y": np.arange(h), "x": np.arange(w)})


def agg3(data):
    h, w, c = data.shape
    return xr.DataArray(np.flipud(data).copy(), dims=["y", "x", "cat"],
                        coords={"y": np.arange(h), "x": np.arange(w),
                                "cat": [f"c{i}" for i in range(c)]})


def img_bytes(img):
    arr = np.flipud(np.asarray(img.data))
    return arr.astype(np.uint32).view(np.uint8).reshape(-1).tolist()


def num(v):
    v = float(v)
    return None if math.isnan(v) else v


CMAPS = {
    "default": ["lightblue", "darkblue"],
    "fire": colorcet.fire,
    "kbc": colorcet.kbc,
    "three": "#ff0000,#00ff00,#0000ff",
    "one": "#336699",
    "red": "red",
}


def ds_cmap(spec):
    v = CMAPS[spec]
    if spec == "three":
        return v.split(",")
    if spec == "one":
        return [v]
    return v


def scalar_grid(integer):
    h, w = int(rng.integers(1, SIZE)), int(rng.integers(1, SIZE))
    empty = rng.uniform(0, 0.7)
    if integer:
        top = int(rng.choice([2, 5, 40, 1000, 300000]))
        data = rng.integers(1, top + 1, size=(h, w)).astype(np.uint32)
        data[rng.uniform(size=(h, w)) < empty] = 0
    else:
        scale = float(rng.choice([1.0, 50.0, 3e6]))
        data = rng.normal(0, scale, size=(h, w))
        if rng.uniform() < 0.3:
            data = np.round(data)
        data[rng.uniform(size=(h, w)) < empty] = np.nan
    return data


def scalar_case(data, integer, how, cmap, alpha, min_alpha, span, rescale):
    kw = dict(cmap=ds_cmap(cmap), how=how, alpha=alpha, min_alpha=min_alpha,
              span=span, rescale_discrete_levels=rescale)
    img = tf.shade(agg2(data), **kw)
    h, w = data.shape
    return {
        "kind": "scalar", "width": w, "height": h, "integer": integer,
        "values": [num(v) for v in data.reshape(-1)],
        "how": how, "cmap": cmap, "alpha": alpha,
        "min_alpha": min_alpha, "span": span, "rescale": rescale,
        "expected": img_bytes(img),
    }


def categorical_case():
    h, w = int(rng.integers(1, SIZE - 2)), int(rng.integers(1, SIZE - 2))
    c = int(rng.choice([1, 2, 3, 9]))
    integer = bool(rng.uniform() < 0.6)
    if integer:
        data = rng.integers(0, int(rng.choice([3, 50, 90000])), size=(h, w, c)).astype(np.uint32)
        data[rng.uniform(size=(h, w)) < 0.4] = 0
        if rng.uniform() < 0.15:
            data += 1  # no empty pixel: exact eq_hist path, non-zero baseline
    else:
        data = rng.normal(2, 5, size=(h, w, c))
        data[rng.uniform(size=(h, w, c)) < 0.3] = np.nan
        data[rng.uniform(size=(h, w)) < 0.3] = np.nan
    how = str(rng.choice(["linear", "log", "cbrt", "eq_hist"]))
    if how == "log" and not integer:
        data = np.abs(data)  # keep log1p(total - offset) meaningful
    span = None
    if how != "eq_hist" and rng.uniform() < 0.3:
        span = [1.0, 40.0]
    baseline = None
    if not integer and rng.uniform() < 0.4:
        baseline = 0.0
    min_alpha = int(rng.choice([40, 0, 100]))
    rescale = bool(how == "eq_hist" and rng.uniform() < 0.5)
    img = tf.shade(agg3(data), color_key=Sets1to3, how=how, min_alpha=min_alpha,
                   span=span, color_baseline=baseline, rescale_discrete_levels=rescale)
    return {
        "kind": "categorical", "width": w, "height": h, "ncat": c, "integer": integer,
        "counts": [num(v) for v in data.reshape(-1)], "how": how, "alpha": 255,
        "min_alpha": min_alpha, "span": span, "rescale": rescale,
        "color_baseline": baseline, "expected": img_bytes(img),
    }


def random_image(h, w, density):
    px = rng.integers(0, 256, size=(h, w, 4)).astype(np.uint8)
    occupied = rng.uniform(size=(h, w)) < density
    px[~occupied, 3] = 0
    px[(~occupied) & (rng.uniform(size=(h, w)) < 0.5)] = 0
    return px


def as_image(px):
    h, w, _ = px.shape
    u32 = np.flipud(px).copy().view(np.uint32).reshape(h, w)
    return tf.Image(u32, dims=["y", "x"], coords={"y": np.arange(h), "x": np.arange(w)})


cases = []
for i in range(192 * SCALE):
    integer = (i // 4) % 2 == 0
    data = scalar_grid(integer)
    how = ["linear", "log", "cbrt", "eq_hist"][i % 4]
    cmap = ["default", "fire", "kbc", "three", "one", "red"][(i // 8) % 6]
    alpha, min_alpha = [(255, 40), (200, 0), (255, 255), (180, 60)][(i // 48) % 4]
    span = None
    if how != "eq_hist" and (i // 4) % 3 == 1:
        finite = data[~np.isnan(data)] if not integer else data[data > 0]
        if finite.size:
            lo, hi = float(np.quantile(finite, 0.2)), float(np.quantile(finite, 0.8))
            if integer:
                lo = float(max(0, math.floor(lo)))
                hi = float(math.ceil(hi))
            span = [lo, hi]
    rescale = how == "eq_hist" and (i // 4) % 2 == 1
    if data.size and not (integer and data.max() == 0) and not np.all(np.isnan(data) if not integer else False):
        cases.append(scalar_case(data, integer, how, cmap, alpha, min_alpha, span, rescale))

# Fixed edge cases.
cases.append(scalar_case(np.array([[0, 0], [0, 0]], dtype=np.uint32), True, "eq_hist", "default", 255, 40, None, False))
cases.append(scalar_case(np.array([[7, 7], [0, 7]], dtype=np.uint32), True, "linear", "default", 255, 40, None, False))
cases.append(scalar_case(np.array([[7, 7], [0, 7]], dtype=np.uint32), True, "eq_hist", "red", 255, 40, None, True))
cases.append(scalar_case(np.array([[1.5, np.nan], [0.0, 1e7]]), False, "eq_hist", "fire", 255, 40, None, False))
cases.append(scalar_case(np.array([[1, 2, 3, 4, 5, 100000]], dtype=np.uint32), True, "eq_hist", "fire", 255, 40, None, False))
cases.append(scalar_case(np.array([[1, 2, 3, 4, 5, 100000]], dtype=np.uint32), True, "eq_hist", "fire", 255, 40, None, True))

for _ in range(60 * SCALE):
    cases.append(categorical_case())

for i in range(24 * SCALE):
    h, w = int(rng.integers(1, SIZE + 2)), int(rng.integers(1, SIZE + 2))
    px = random_image(h, w, float(rng.choice([0.1, 0.2, 0.5])))
    p = 1 + i % 3
    shape = ["circle", "square"][(i // 3) % 2]
    out = tf.spread(as_image(px), px=p, shape=shape)
    cases.append({"kind": "spread", "width": w, "height": h, "image": np.asarray(px).reshape(-1).tolist(),
                  "px": p, "shape": shape, "expected": img_bytes(out)})

for i in range(32 * SCALE):
    h, w = int(rng.integers(2, SIZE + 6)), int(rng.integers(2, SIZE + 6))
    px = random_image(h, w, float(rng.choice([0.01, 0.03, 0.08, 0.3])))
    threshold = float(rng.choice([0.0, 0.2, 0.5, 0.9, 1.0]))
    max_px = int(rng.choice([0, 1, 3, 5]))
    shape = ["circle", "square"][i % 2]
    out = tf.dynspread(as_image(px), threshold=threshold, max_px=max_px, shape=shape)
    cases.append({"kind": "dynspread", "width": w, "height": h, "image": np.asarray(px).reshape(-1).tolist(),
                  "threshold": threshold, "max_px": max_px, "shape": shape, "expected": img_bytes(out)})

for i in range(6):
    h, w = int(rng.integers(1, 8)), int(rng.integers(1, 8))
    px = random_image(h, w, 0.6)
    color = ["black", "white", "#123456", "darkblue", "#ff8000", "gray"][i]
    out = tf.set_background(as_image(px), color)
    cases.append({"kind": "background", "width": w, "height": h, "image": np.asarray(px).reshape(-1).tolist(),
                  "color": color, "expected": img_bytes(out)})

print(json.dumps({"datashader": __import__("datashader").__version__,
                  "numpy": np.__version__, "cases": cases}, separators=(",", ":")))
