# Shared helpers for the benchmark / peer-comparison scripts. Source it:
#   source "$(dirname "$0")/bench_common.sh"
#
# Environment knobs (all optional):
#   POINTILLIST   the binary to benchmark (default: target/release/pointillist,
#                 built with `cargo build --release` when missing)
#   BENCH_DATA    where generated data lives (default: bench-data/, gitignored)
#   VENV          the Python virtualenv (default: .venv-bench/, gitignored)
#   SEED          seed for `pointillist gen towers` (default: 42)

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DATA="${BENCH_DATA:-$REPO_ROOT/bench-data}"
VENV="${VENV:-$REPO_ROOT/.venv-bench}"
POINTILLIST="${POINTILLIST:-$REPO_ROOT/target/release/pointillist}"
SEED="${SEED:-42}"
PY="$VENV/bin/python"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Creates the venv with the pinned versions when it is missing (or when the
# pins changed since it was made).
ensure_venv() {
    local req="$REPO_ROOT/scripts/requirements-bench.txt"
    local stamp="$VENV/.requirements-bench.sha"
    local want
    want="$(sha256sum "$req" | cut -d' ' -f1)"
    if [[ -x "$PY" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return
    fi
    log "setting up $VENV from scripts/requirements-bench.txt"
    command -v python3 >/dev/null || die "python3 not found"
    [[ -x "$PY" ]] || python3 -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip
    "$PY" -m pip install -q -r "$req"
    echo "$want" >"$stamp"
}

# Creates .venv-engines (DuckDB, chdb, pyarrow; scripts/requirements-engines.txt)
# when missing or when its pins changed; sets ENGINES_PY.
ensure_engines_venv() {
    local venv="$REPO_ROOT/.venv-engines"
    local req="$REPO_ROOT/scripts/requirements-engines.txt"
    local stamp="$venv/.requirements.sha"
    local want
    want="$(sha256sum "$req" | cut -d' ' -f1)"
    ENGINES_PY="$venv/bin/python"
    if [[ ! -x "$ENGINES_PY" || ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
        log "setting up $venv from scripts/requirements-engines.txt"
        [[ -x "$ENGINES_PY" ]] || python3 -m venv "$venv"
        "$ENGINES_PY" -m pip install -q -r "$req"
        echo "$want" >"$stamp"
    fi
}

# check_rows ROWS: dies unless ROWS is a positive integer.
check_rows() {
    [[ "$1" =~ ^[0-9]+$ && "$1" -gt 0 ]] || die "ROWS must be a positive integer, got '$1'"
}

ensure_binary() {
    if [[ ! -x "$POINTILLIST" ]]; then
        log "building pointillist (cargo build --release)"
        (cd "$REPO_ROOT" && cargo build --release)
    fi
    [[ -x "$POINTILLIST" ]] || die "no pointillist binary at $POINTILLIST"
}

# towers_parquet ROWS -> prints the path, generating it when missing.
towers_parquet() {
    local rows="$1"
    local f="$BENCH_DATA/towers-$rows.parquet"
    mkdir -p "$BENCH_DATA"
    if [[ ! -s "$f" ]]; then
        log "generating $rows towers rows (seed $SEED) -> $f"
        "$POINTILLIST" gen towers --rows "$rows" --seed "$SEED" --out "$f.tmp.parquet" >&2
        mv "$f.tmp.parquet" "$f"
    fi
    echo "$f"
}

# towers_packed ROWS -> prints the dataset dir, packing it when missing.
towers_packed() {
    local rows="$1"
    local d="$BENCH_DATA/towers-$rows.pack"
    if [[ ! -f "$d/manifest.json" ]]; then
        local f
        f="$(towers_parquet "$rows")"
        log "packing $f -> $d"
        "$POINTILLIST" pack "$f" --out "$d" --force >&2
    fi
    echo "$d"
}

# Peak RSS (GB) and wall seconds from a `/usr/bin/time -v` log.
time_peak_rss_gb() {
    awk -F': ' '/Maximum resident set size/ {printf "%.2f", $2/1048576}' "$1"
}
time_peak_rss_mb() {
    awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$1"
}
# "user+sys s (cpu%)" from a `/usr/bin/time -v` log.
time_cpu() {
    awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} /Percent of CPU/ {p=$2}
        END {printf "%.1f(%s)", u+s, p}' "$1"
}
time_wall_s() {
    # "Elapsed (wall clock) time (h:mm:ss or m:ss): 0:41.23"
    awk -F': ' '/Elapsed \(wall clock\)/ {
        n = split($2, p, ":"); s = 0
        for (i = 1; i <= n; i++) s = s * 60 + p[i]
        printf "%.2f", s }' "$1"
}

print_env() {
    echo "== environment =="
    echo "date:        $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host:        $(uname -srm)"
    echo "nproc:       $(nproc)"
    echo "cpu:         $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "memory:      $(free -g | awk '/Mem:/ {print $2 " GiB total, " $7 " GiB available"}')"
    echo "load:        $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min; other jobs share this machine)"
    echo "pointillist: $("$POINTILLIST" --version 2>/dev/null) ($POINTILLIST, built $(date -u -r "$POINTILLIST" +%Y-%m-%dT%H:%M:%SZ); work tree at git $(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO_ROOT" diff --quiet HEAD -- src 2>/dev/null || echo ', src dirty'))"
    if [[ -x "$PY" ]]; then
        "$PY" - <<'EOF'
import sys, importlib
print(f"python:      {sys.version.split()[0]}")
mods = ["numpy", "pandas", "pyarrow", "numba", "dask", "datashader", "spatialpandas", "PIL"]
vs = []
for m in mods:
    try:
        vs.append(f"{m} {importlib.import_module(m).__version__}")
    except Exception as e:  # noqa: BLE001
        vs.append(f"{m} ?({type(e).__name__})")
print("packages:    " + ", ".join(vs))
EOF
    fi
    echo
}
