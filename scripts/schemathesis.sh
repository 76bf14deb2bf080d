#!/usr/bin/env bash
# Checks the server against its own OpenAPI document with schemathesis
# (every check, positive and negative cases), bounded to a few minutes.
#   scripts/schemathesis.sh                # release build, 200 cases per operation
#   MAX_EXAMPLES=1000 scripts/schemathesis.sh
# Needs Python 3 (a venv with schemathesis is made under .venv-st).
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_EXAMPLES="${MAX_EXAMPLES:-200}"
BUILD="${BUILD:-release}"
PORT="${ST_PORT:-8097}"
VENV=.venv-st
if [ ! -x "$VENV/bin/schemathesis" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q schemathesis==4.32.5
fi
if [ "$BUILD" = release ]; then cargo build --release --locked; else cargo build --locked; fi
BIN="target/$BUILD/pointillist"
DATA=test-output/schemathesis
rm -rf "$DATA" && mkdir -p "$DATA"
"$BIN" gen towers --rows 20000 --seed 3 --out "$DATA/towers.parquet" >/dev/null
"$BIN" pack "$DATA/towers.parquet" --out "$DATA/catalog/towers" >/dev/null 2>&1
TOKEN=schemathesis-token
source scripts/serve_lib.sh
export POINTILLIST_ADMIN_TOKEN=$TOKEN
start_server "$BIN" "$PORT" "$DATA/server.log" "$DATA/catalog"
# Two passes, every check in both:
# 1. examples + fuzzing, positive and negative cases. The hooks keep valid
#    cases to the rules that join two parameters (tests/schemathesis/hooks.py).
# 2. the coverage phase (boundary values of every constraint), negative
#    cases only: schemathesis applies no hooks in that phase, so its positive
#    cases would break those joint rules, which the server rightly refuses.
# The stateful phase is left out: it follows TileJSON's `tiles` URL
# template ({z}/{x}/{y}) as if it were a link.
st() {
  SCHEMATHESIS_HOOKS=hooks PYTHONPATH=tests/schemathesis \
    "$VENV/bin/schemathesis" run "http://127.0.0.1:$PORT/openapi.json" \
    --checks all --max-examples "$MAX_EXAMPLES" --generation-deterministic \
    --header "Authorization: Bearer $TOKEN" \
    --request-timeout 30 --report junit --report-dir "$DATA/report" "$@"
}
st --phases examples,fuzzing --mode all "$@"
st --phases coverage --mode negative "$@"
# The server must have survived every case.
kill -0 $SERVER
echo "schemathesis: server alive after the run"
