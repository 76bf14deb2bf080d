#!/usr/bin/env python3
"""The spatialpandas side of scripts/bench_pack.sh: the peer of `pointillist pack`.

Reads a towers Parquet file with dask, projects lon/lat to Web Mercator metres
(datashader.utils.lnglat_to_meters, exactly what `pointillist pack` does for
4326 input), builds a spatialpandas PointArray geometry from the metres, keeps
every attribute column (as `pointillist pack` does by default), then
`pack_partitions(npartitions=..., p=15)` (a Hilbert-curve sort via a dask
shuffle) and `to_parquet` into a directory.

Runs on dask's default (threaded) scheduler with nproc workers. Prints one JSON
line with its own phase timings (excluding interpreter start-up and imports,
which `/usr/bin/time` in the caller does include).
"""
import argparse
import json
import os
import shutil
import sys
import time

T_START = time.perf_counter()

import dask  # noqa: E402
import dask.dataframe as dd  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from datashader.utils import lnglat_to_meters  # noqa: E402
from spatialpandas import GeoDataFrame  # noqa: E402
from spatialpandas.geometry import PointArray  # noqa: E402

T_IMPORTED = time.perf_counter()


CATEGORIES: dict = {}


def to_geo(part: pd.DataFrame) -> GeoDataFrame:
    x, y = lnglat_to_meters(part["lon"].to_numpy(), part["lat"].to_numpy())
    cols = {"geometry": PointArray((np.asarray(x, dtype="f8"), np.asarray(y, dtype="f8")))}
    for c in part.columns:
        if c not in ("lon", "lat"):
            if c in CATEGORIES:
                cols[c] = pd.Categorical(part[c].astype(object), categories=CATEGORIES[c])
            else:
                cols[c] = part[c].array
    return GeoDataFrame(cols, index=part.index)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("parquet")
    ap.add_argument("out")
    ap.add_argument("--in-partitions", type=int, default=2 * (os.cpu_count() or 1),
                    help="dask input partitions (default: 2 per core)")
    ap.add_argument("--npartitions", type=int, default=0,
                    help="output partitions (default: spatialpandas' own rule, max(8, rows / 2**23))")
    ap.add_argument("--p", type=int, default=15, help="Hilbert curve order (default 15)")
    ap.add_argument("--shuffle", default="tasks", choices=["tasks", "disk"])
    a = ap.parse_args()

    dask.config.set(scheduler="threads", num_workers=os.cpu_count() or 1)
    if os.path.exists(a.out):
        shutil.rmtree(a.out)

    t0 = time.perf_counter()
    ddf = dd.read_parquet(a.parquet)
    if ddf.npartitions != a.in_partitions:
        ddf = ddf.repartition(npartitions=a.in_partitions)
    rows = int(pq_rows(a.parquet))
    # Dictionary columns come in as categoricals with unknown categories, which
    # dask's to_parquet cannot write; give them known categories (one column read).
    for name, dtype in ddf._meta.dtypes.items():
        if isinstance(dtype, pd.CategoricalDtype):
            col = pq_column(a.parquet, name)
            CATEGORIES[name] = sorted(col.dictionary.to_pylist()) if hasattr(col, "dictionary") else sorted(set(col.to_pylist()))
    meta = to_geo(ddf._meta)
    gddf = ddf.map_partitions(to_geo, meta=meta)
    npart = a.npartitions or max(8, rows // 2**23)
    packed = gddf.pack_partitions(npartitions=npart, p=a.p, shuffle=a.shuffle)
    packed.to_parquet(a.out)
    t1 = time.perf_counter()

    out_bytes = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(a.out) for f in fs)
    print(json.dumps({
        "rows": rows,
        "in_partitions": a.in_partitions,
        "out_partitions": npart,
        "p": a.p,
        "shuffle": a.shuffle,
        "import_s": round(T_IMPORTED - T_START, 3),
        "pack_s": round(t1 - t0, 3),
        "rows_per_s": round(rows / (t1 - t0)),
        "out_bytes": out_bytes,
    }))
    return 0


def pq_column(path: str, name: str):
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    col = pq.read_table(path, columns=[name]).column(name)
    return pc.unique(col.combine_chunks())


def pq_rows(path: str) -> int:
    import pyarrow.parquet as pq
    return pq.ParquetFile(path).metadata.num_rows


if __name__ == "__main__":
    sys.exit(main())
