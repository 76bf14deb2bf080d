#!/usr/bin/env python3
"""Pixel-for-pixel comparison of pointillist against Datashader.

Run it through scripts/compare_datashader.sh (which makes the venv and builds
the binary). Generates (or takes) a towers Parquet file, packs it with
pointillist, then for each viewport x size renders
  * with pointillist: `render --bbox ... -o x.npy` (count, count_cat:radio) and
    `-o x.png` for every how in linear/log/cbrt/eq_hist, for count (with an
    explicit hex-list cmap) and for count_cat:radio (default color key);
  * with Datashader: Canvas(W, H, x_range, y_range).points(df, 'x', 'y', agg)
    on the same Parquet, x/y = datashader.utils.lnglat_to_meters(lon, lat),
    x_range/y_range = lnglat_to_meters of the bbox; tf.shade(agg, cmap=<the
    same hex list> | color_key=Sets1to3, how=...).
and reports totals (must be identical), the share of identical aggregate
pixels, and the share of identical RGBA pixels. pointillist's grids have row 0
at the top (north), Datashader's at the bottom: Datashader's are flipped.

Exit status: 1 when any total differs (or a pointillist command fails);
with --strict also when a share misses its target (aggregates >= 99.99%).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import colorcet
import datashader as ds
import datashader.transfer_functions as tf
import numpy as np
import pandas as pd
from datashader.colors import Sets1to3
from datashader.utils import lnglat_to_meters
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
HOWS = ["linear", "log", "cbrt", "eq_hist"]
VIEWS = [
    # name, (minlon, minlat, maxlon, maxlat)
    ("world", (-180.0, -85.0, 180.0, 85.0)),
    ("w-europe", (-11.0, 35.0, 20.0, 60.0)),
    ("new-york", (-74.3, 40.45, -73.65, 40.95)),
    ("manhattan", (-74.03, 40.70, -73.93, 40.80)),
]
SIZES = [(800, 400), (512, 512), (300, 300)]
FILTERS = [
    # (pointillist --filter, pandas mask)
    ("radio:in:LTE,NR", lambda df: df["radio"].isin(["LTE", "NR"])),
    ("range:0..2000", lambda df: (df["range"] >= 0) & (df["range"] <= 2000)),
]
FILTER_VIEWS = {("world", (800, 400)), ("w-europe", (512, 512)), ("new-york", (512, 512))}
TARGET_AGG = 99.99


def sh(cmd: list[str]) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"command failed (rc={r.returncode}): {' '.join(cmd)}\n{r.stderr[-3000:]}")
    return r.stdout


def pct(a: np.ndarray) -> float:
    return 100.0 * float(np.count_nonzero(a)) / a.size if a.size else 100.0


def fmt_pct(p: float) -> str:
    return "100" if p == 100.0 else f"{min(p, 99.999):.3f}"


def ds_rgba(img) -> np.ndarray:
    """Datashader Image (uint32 RGBA, row 0 at the bottom) -> (H, W, 4) uint8, row 0 at the top."""
    data = np.ascontiguousarray(img.data, dtype=np.uint32)
    rgba = data.view(np.uint8).reshape(data.shape + (4,))
    if sys.byteorder != "little":
        rgba = rgba[..., ::-1]
    return np.flipud(rgba)


def png_rgba(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGBA"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2_000_000, help="towers rows to generate (default 2M)")
    ap.add_argument("--parquet", type=Path, help="use this towers Parquet instead of generating one")
    ap.add_argument("--dataset", type=Path, help="packed dataset of --parquet (default: pack it)")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("SEED", 42)))
    ap.add_argument("--cmap", default=",".join(colorcet.fire),
                    help="comma-separated hex colours given to both tools (default: colorcet fire, 256 colours)")
    ap.add_argument("--work", type=Path, help="where renders go (default: a temp dir, removed)")
    ap.add_argument("--strict", action="store_true", help="also fail when an aggregate share misses 99.99%%")
    a = ap.parse_args()

    exe = os.environ.get("POINTILLIST", str(REPO / "target/release/pointillist"))
    data_dir = Path(os.environ.get("BENCH_DATA", REPO / "bench-data"))
    data_dir.mkdir(parents=True, exist_ok=True)

    parquet = a.parquet
    if parquet is None:
        parquet = data_dir / f"towers-{a.rows}.parquet"
        if not parquet.exists():
            print(f"generating {a.rows} towers -> {parquet}", flush=True)
            tmp = parquet.with_suffix(".tmp.parquet")
            sh([exe, "gen", "towers", "--rows", str(a.rows), "--seed", str(a.seed), "--out", str(tmp)])
            tmp.rename(parquet)
    dataset = a.dataset or data_dir / (parquet.name.removesuffix(".parquet") + ".pack")
    if not (dataset / "manifest.json").exists() or (a.dataset is None and a.parquet is not None):
        print(f"packing {parquet} -> {dataset}", flush=True)
        print(sh([exe, "pack", str(parquet), "--out", str(dataset), "--force"]).strip(), flush=True)
    manifest = json.loads(sh([exe, "info", "--json", str(dataset)]))
    cats = next(c["categories"] for c in manifest["columns"] if c["name"] == "radio")

    t0 = time.perf_counter()
    df = pd.read_parquet(parquet, columns=["lon", "lat", "radio", "range"])
    x, y = lnglat_to_meters(df["lon"].to_numpy(), df["lat"].to_numpy())
    df["x"] = np.asarray(x, dtype="f8")
    df["y"] = np.asarray(y, dtype="f8")
    # Same category order as the packed dataset (its manifest), so that
    # count_cat planes and Sets1to3 colours line up.
    df["radio"] = pd.Categorical(df["radio"].astype(object), categories=cats)
    print(f"loaded {len(df)} rows from {parquet} in {time.perf_counter() - t0:.1f}s; "
          f"pointillist dataset {dataset} ({manifest['rows']} rows, {manifest['dropped_rows']} dropped); "
          f"radio categories {cats}", flush=True)
    if manifest["rows"] + manifest["dropped_rows"] != len(df):
        print(f"WARNING: dataset rows {manifest['rows']} + dropped {manifest['dropped_rows']} != parquet rows {len(df)}")

    cmap = [c.strip() for c in a.cmap.split(",")]
    work_ctx = tempfile.TemporaryDirectory(prefix="compare-ds-") if a.work is None else None
    work = Path(work_ctx.name) if work_ctx else a.work
    work.mkdir(parents=True, exist_ok=True)

    agg_rows, rgba_rows, filt_rows, notes = [], [], [], []
    bad_totals = 0
    below_target = 0
    for name, bbox in VIEWS:
        (x0, x1), (y0, y1) = [tuple(float(v) for v in r) for r in
                              zip(*[lnglat_to_meters(bbox[0], bbox[1]), lnglat_to_meters(bbox[2], bbox[3])])]
        bbox_s = ",".join(repr(v) for v in bbox)
        for (w, h) in SIZES:
            tag = f"{name}-{w}x{h}"
            base = [exe, "render", str(dataset), "--bbox", bbox_s, "--width", str(w), "--height", str(h)]
            cvs = ds.Canvas(plot_width=w, plot_height=h, x_range=(x0, x1), y_range=(y0, y1))

            # ---- count
            sh(base + ["--agg", "count", "-o", str(work / f"{tag}-count.npy")])
            pt = np.load(work / f"{tag}-count.npy").astype(np.int64)
            dagg = cvs.points(df, "x", "y", agg=ds.count())
            dv = np.flipud(dagg.values).astype(np.int64)
            assert pt.shape == dv.shape, (tag, pt.shape, dv.shape)
            same = pct(pt == dv)
            tot_pt, tot_ds = int(pt.sum()), int(dv.sum())
            # ---- count_cat
            sh(base + ["--agg", "count_cat:radio", "-o", str(work / f"{tag}-cat.npy")])
            ptc = np.load(work / f"{tag}-cat.npy").astype(np.int64)
            dcat = cvs.points(df, "x", "y", agg=ds.count_cat("radio"))
            dcv = np.flipud(dcat.values).astype(np.int64)
            assert ptc.shape == dcv.shape, (tag, ptc.shape, dcv.shape)
            csame = pct((ptc == dcv).all(axis=2))
            ctot_pt, ctot_ds = int(ptc.sum()), int(dcv.sum())
            ok = tot_pt == tot_ds and ctot_pt == ctot_ds
            bad_totals += not ok
            below_target += same < TARGET_AGG or csame < TARGET_AGG
            if same < 100.0:
                d = np.argwhere(pt != dv)
                notes.append(f"{tag}: {len(d)} count pixels differ, e.g. (row, col) {d[:3].tolist()} "
                             f"pointillist {[int(pt[tuple(i)]) for i in d[:3]]} datashader {[int(dv[tuple(i)]) for i in d[:3]]}")
            agg_rows.append([name, f"{w}x{h}", f"{pct(dv > 0):.2f}", tot_pt, tot_ds, fmt_pct(same), ctot_pt, ctot_ds, fmt_pct(csame),
                             "ok" if ok else "TOTALS DIFFER"])

            # ---- shading
            rgb = []
            for how in HOWS:
                f = work / f"{tag}-count-{how}.png"
                sh(base + ["--agg", "count", "--how", how, "--cmap", ",".join(cmap), "-o", str(f)])
                p_img = png_rgba(f)
                d_img = ds_rgba(tf.shade(dagg, cmap=cmap, how=how))
                rgb.append(rgba_cmp(p_img, d_img))
                if rgb[-1][0] < 100.0 and same < 100.0:
                    # Shade pointillist's own aggregate with Datashader: tells
                    # shading differences from aggregation differences.
                    d2 = ds_rgba(tf.shade(dagg.copy(data=np.flipud(pt).astype(dagg.dtype)), cmap=cmap, how=how))
                    notes.append(f"{tag} count {how}: Datashader shading pointillist's aggregate matches "
                                 f"{fmt_pct(pct((p_img == d2).all(axis=2)))}% of pixels")
            for how in HOWS:
                f = work / f"{tag}-cat-{how}.png"
                sh(base + ["--agg", "count_cat:radio", "--how", how, "-o", str(f)])
                p_img = png_rgba(f)
                d_img = ds_rgba(tf.shade(dcat, color_key=Sets1to3, how=how))
                rgb.append(rgba_cmp(p_img, d_img))
            rgba_rows.append([name, f"{w}x{h}"] + [f"{fmt_pct(s)}{'' if m == 0 else f' (max {m})'}" for s, m in rgb])

            # ---- filters (counts only)
            if (name, (w, h)) in FILTER_VIEWS:
                for fspec, mask in FILTERS:
                    out = work / f"{tag}-filter.npy"
                    sh(base + ["--agg", "count", "--filter", fspec, "-o", str(out)])
                    fp = np.load(out).astype(np.int64)
                    fd = np.flipud(cvs.points(df[mask(df)], "x", "y", agg=ds.count()).values).astype(np.int64)
                    fsame = pct(fp == fd)
                    fok = int(fp.sum()) == int(fd.sum())
                    bad_totals += not fok
                    below_target += fsame < TARGET_AGG
                    filt_rows.append([name, f"{w}x{h}", fspec, int(fp.sum()), int(fd.sum()), fmt_pct(fsame),
                                      "ok" if fok else "TOTALS DIFFER"])
            print(f"  done {tag}", flush=True)

    print()
    print(f"== aggregates: pointillist vs Datashader ({len(df)} towers rows; identical = same value in every "
          f"pixel (count_cat: every category); target >= {TARGET_AGG}%) ==")
    table(["view", "size", "px>0 %", "count total pt", "count total ds", "count ident %",
           "cat total pt", "cat total ds", "cat ident %", "totals"], agg_rows)
    print()
    print("== filtered counts (pointillist --filter vs pandas mask, range bounds inclusive) ==")
    table(["view", "size", "filter", "total pt", "total ds", "ident %", "totals"], filt_rows)
    print()
    print(f"== shading: identical RGBA pixels % (max abs channel difference in parentheses when not 100%) ==")
    print(f"   count: --cmap/cmap = the same {len(cmap)}-colour hex list ({cmap[0]} .. {cmap[-1]}); "
          f"count_cat: default color key (Datashader Sets1to3); alpha 255, min_alpha 40 (both defaults)")
    table(["view", "size"] + [f"count {h}" for h in HOWS] + [f"cat {h}" for h in HOWS], rgba_rows)
    if notes:
        print()
        print("notes:")
        for n in notes:
            print("  " + n)
    print()
    print(f"totals: {'ALL IDENTICAL' if bad_totals == 0 else f'{bad_totals} view(s) DIFFER'}; "
          f"aggregate shares below {TARGET_AGG}%: {below_target}")
    if work_ctx:
        work_ctx.cleanup()
    if bad_totals:
        return 1
    if a.strict and below_target:
        return 2
    return 0


def rgba_cmp(p: np.ndarray, d: np.ndarray) -> tuple[float, int]:
    if p.shape != d.shape:
        raise RuntimeError(f"image shapes differ: pointillist {p.shape}, datashader {d.shape}")
    same = pct((p == d).all(axis=2))
    maxdiff = int(np.abs(p.astype(np.int16) - d.astype(np.int16)).max())
    return same, maxdiff


def table(header: list[str], rows: list[list]) -> None:
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for j, r in enumerate(cells):
        print("  ".join(c.rjust(widths[i]) if i >= 2 else c.ljust(widths[i]) for i, c in enumerate(r)))
        if j == 0:
            print("  ".join("-" * w for w in widths))


if __name__ == "__main__":
    sys.exit(main())
