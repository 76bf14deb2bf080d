#!/usr/bin/env bash
# PNG against lossless WebP on the tiles of bench_render.sh and the issue's
# cases: encode time (median of RUNS, `render --timings`) and bytes, for
# the same shaded pixels. Prints a Markdown table.
#   scripts/bench_formats.sh [DIR=bench-data/towers-10000000.pack] [RUNS=31]
# DIR is a packed towers dataset (scripts/bench_pack.sh makes one).
set -euo pipefail
source "$(dirname "$0")/bench_common.sh"
DIR="${1:-$BENCH_DATA/towers-10000000.pack}"
RUNS="${2:-31}"
[[ -d "$DIR" ]] || die "no packed dataset at $DIR"
ensure_binary
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
log "uptime: $(uptime)"
echo "| tile | agg | shade ms | PNG ms | PNG KB | WebP ms | WebP KB | WebP ÷ PNG bytes |"
echo "|---|---|---|---|---|---|---|---|"
while read -r tile agg; do
    "$POINTILLIST" render "$DIR" --tile "$tile" --agg "$agg" -o "$OUT/t.png" \
        --timings "$RUNS" 2>/dev/null |
        python3 -c '
import json, sys
d = json.load(sys.stdin)
tile, agg = sys.argv[1:3]
sh, pm, pb, wm, wb = (d[k] for k in ("shade_ms", "png_ms", "png_bytes", "webp_ms", "webp_bytes"))
print(f"| {tile} | {agg} | {sh:.3f} | {pm:.3f} | {pb / 1e3:.1f} | {wm:.3f} | {wb / 1e3:.1f} | {wb / pb:.2f} |")
' "$tile" "$agg"
done <<'TILES'
12/1205/1539 count
8/75/96 count
8/75/96 count_cat:radio
4/8/5 count
4/8/5 count_cat:radio
0/0/0 count
0/0/0 count_cat:radio
10/301/384 mean:range
TILES
log "uptime: $(uptime)"
