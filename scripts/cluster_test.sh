#!/usr/bin/env bash
# Scale-out on loopback: 3 Pointillist replicas over one catalog behind
# Debian's nginx, configured with deploy/nginx (consistent URI hashing,
# tile cache, retries on the next replica). With DATA=s3 (the default) the
# catalog lives on a local S3-compatible server (moto, scripts/s3_lib.sh)
# that the script starts, in a bucket that keeps versions, and each replica
# has its own object cache; DATA=local maps one local catalog. The script
#   1. measures tiles/s through nginx with 1, 2 and 3 replicas (URLs that
#      miss nginx's cache, so the replicas do the work);
#   2. replays a pan/zoom trace while one replica is killed with SIGKILL
#      and later restarted;
#   3. replays it again while the dataset is repacked (a new version,
#      renamed into place, or uploaded over the old one) and every replica
#      is told to reload;
#   4. replays filtered z8+ tiles through fresh replicas under URI hashing
#      and under quadkey-prefix routing (deploy/nginx/quadkey.js), counting
#      the requests and the object-storage bytes of each replica;
#   5. reports failed requests (must be 0 in 2 and 3), each replica's tile
#      cache hit rate, and the RSS/PSS of 3 replicas against 1.
# Exit status 1 when a request failed or a replica kept the old version.
#
#   scripts/cluster_test.sh                 # CI size: 200k towers, on S3
#   DATA=local scripts/cluster_test.sh      # one local catalog
#   ROWS=10000000 REQUESTS=20000 scripts/cluster_test.sh
#
# ROWS, REQUESTS (per phase), THREADS, PORT (nginx; replicas PORT+1..3),
# BIN. Needs nginx (installed here with apt-get when running as root).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${ROWS:-200000}"
REQUESTS="${REQUESTS:-1500}"
THREADS="${THREADS:-8}"
PORT="${PORT:-8100}"
BIN="${BIN:-target/release/pointillist}"
DATA="${DATA:-s3}"
TOKEN=cluster-test-token
[ -x "$BIN" ] || cargo build --release --locked
if ! command -v nginx >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "nginx is missing: apt-get install nginx" >&2; exit 1; }

W=test-output/cluster-$DATA
rm -rf "$W"
mkdir -p "$W/catalog" "$W/nginx/cache"
echo "uptime: $(uptime)"
"$BIN" gen towers --rows "$ROWS" --seed 1 --out "$W/v1.parquet" >/dev/null
"$BIN" gen towers --rows "$ROWS" --seed 2 --out "$W/v2.parquet" >/dev/null
# On object storage a partition's column is what one range request
# fetches: small partitions keep a tile's fetch to its region.
PACK_ARGS=()
[ "$DATA" != s3 ] || PACK_ARGS=(--partition-rows 8192)
"$BIN" pack "$W/v1.parquet" --out "$W/catalog/towers" "${PACK_ARGS[@]}" >/dev/null 2>&1
SOURCE="$W/catalog"
if [ "$DATA" = s3 ]; then
  source scripts/s3_lib.sh
  start_s3 $((PORT + 10))
  export AWS_ENDPOINT_URL="$S3_ENDPOINT" AWS_ALLOW_HTTP=true AWS_REGION=us-east-1 \
    AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  "$S3_VENV/bin/python" scripts/s3_upload.py --endpoint "$S3_ENDPOINT" --bucket maps \
    --prefix cat/towers --create --versioning "$W/catalog/towers"
  SOURCE=s3://maps/cat
fi

declare -a PIDS
start_replica() { # $1 = index 1..3
  local port=$((PORT + $1))
  POINTILLIST_ADMIN_TOKEN=$TOKEN "$BIN" serve "$SOURCE" --bind "127.0.0.1:$port" \
    --object-cache "$W/object-cache-$1" >> "$W/replica-$1.log" 2>&1 &
  PIDS[$1]=$!
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null && return 0
    sleep 0.1
  done
  echo "replica $1 did not start" >&2
  cat "$W/replica-$1.log" >&2
  return 1
}
upstreams() { # $1 = how many replicas, $2 = uri (default) or quadkey routing
  {
    if [ "${2:-uri}" = quadkey ]; then
      echo "js_path \"$PWD/deploy/nginx/\";"
      echo "js_import quadkey from quadkey.js;"
      echo "js_set \$pointillist_route quadkey.key;"
    fi
    echo "upstream pointillist {"
    if [ "${2:-uri}" = quadkey ]; then
      echo "    hash \$pointillist_route consistent;"
    else
      echo "    hash \$request_uri consistent;"
    fi
    for i in $(seq 1 "$1"); do
      echo "    server 127.0.0.1:$((PORT + i)) max_fails=1 fail_timeout=5s;"
    done
    echo "    keepalive 32;"
    echo "}"
  } > "$W/nginx/upstream.conf"
}
cleanup() {
  "$NGINX" -p "$PWD/$W/nginx" -c nginx.conf -s stop 2>/dev/null || true
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  [ "$DATA" != s3 ] || stop_s3
  wait 2>/dev/null || true
}
trap cleanup EXIT

for i in 1 2 3; do start_replica "$i"; done
cp deploy/nginx/nginx.conf deploy/nginx/pointillist.conf "$W/nginx/"
# Quadkey routing runs in njs (Debian's libnginx-mod-http-js).
JS_MODULE=/usr/lib/nginx/modules/ngx_http_js_module.so
if [ ! -f "$JS_MODULE" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libnginx-mod-http-js >/dev/null
fi
[ -f "$JS_MODULE" ] || { echo "libnginx-mod-http-js is missing: apt-get install libnginx-mod-http-js" >&2; exit 1; }
sed -i "1i load_module $JS_MODULE;" "$W/nginx/nginx.conf"
sed -i "s|/var/cache/nginx/pointillist|$PWD/$W/nginx/cache|; s|listen 8080;|listen 127.0.0.1:$PORT;|" \
  "$W/nginx/pointillist.conf"
# nginx's workers may run as another user than the master (root in CI).
chmod -R a+rwx "$W/nginx"
upstreams 1
"$NGINX" -p "$PWD/$W/nginx" -c nginx.conf -t -q
"$NGINX" -p "$PWD/$W/nginx" -c nginx.conf
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done

trace() { # $1 = name, then cluster_trace.py flags
  local name=$1
  shift
  python3 scripts/cluster_trace.py --url "http://127.0.0.1:$PORT" --dataset towers \
    --requests "$REQUESTS" --threads "$THREADS" --json-out "$W/$name.json" "$@" || true
}
reload_nginx() { "$NGINX" -p "$PWD/$W/nginx" -c nginx.conf -s reload; sleep 1; }
memory() { # pids... → "RSS_MB PSS_MB" summed
  local rss=0 pss=0
  for p in "$@"; do
    rss=$((rss + $(awk '/^Rss:/{print $2}' "/proc/$p/smaps_rollup")))
    pss=$((pss + $(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup")))
  done
  echo "$((rss / 1024)) $((pss / 1024))"
}

echo "== tiles/s through nginx with 1, 2, 3 replicas (URLs miss nginx's cache)"
for n in 1 2 3; do
  upstreams "$n"
  reload_nginx
  trace "replicas-$n" --unique --seed "$n"
  if [ "$n" = 1 ]; then read -r RSS1 PSS1 <<< "$(memory "${PIDS[1]}")"; fi
done
read -r RSS3 PSS3 <<< "$(memory "${PIDS[1]}" "${PIDS[2]}" "${PIDS[3]}")"

echo "== kill -9 replica 2 during a trace, then restart it"
trace kill --unique --seed 11 &
TRACE=$!
sleep 0.5
kill -9 "${PIDS[2]}"
wait "${PIDS[2]}" 2>/dev/null || true
sleep 1
start_replica 2
wait $TRACE

echo "== swap the dataset's version during a trace"
OLD=$(curl -sf "http://127.0.0.1:$((PORT + 1))/datasets/towers" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
trace swap --unique --seed 12 &
TRACE=$!
"$BIN" pack "$W/v2.parquet" --out "$W/catalog/towers" --force "${PACK_ARGS[@]}" >/dev/null 2>&1
if [ "$DATA" = s3 ]; then
  "$S3_VENV/bin/python" scripts/s3_upload.py --endpoint "$S3_ENDPOINT" --bucket maps \
    --prefix cat/towers "$W/catalog/towers"
fi
for i in 1 2 3; do
  curl -sf -X POST -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$((PORT + i))/admin/reload" >/dev/null
done
wait $TRACE
STALE=0
for i in 1 2 3; do
  V=$(curl -sf "http://127.0.0.1:$((PORT + i))/datasets/towers" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
  [ "$V" != "$OLD" ] || STALE=$((STALE + 1))
done

echo "== routing: URI hashing against quadkey prefixes (fresh replicas, filtered z8+ tiles)"
restart_fresh() { # every replica, with an empty object cache
  for i in 1 2 3; do kill "${PIDS[$i]}" 2>/dev/null || true; wait "${PIDS[$i]}" 2>/dev/null || true; done
  for i in 1 2 3; do rm -rf "$W/object-cache-$i"; start_replica "$i"; done
}
for policy in uri quadkey; do
  restart_fresh
  upstreams 3 "$policy"
  # An empty tile cache in nginx too, so every tile reaches a replica.
  "$NGINX" -p "$PWD/$W/nginx" -c nginx.conf -s stop
  sleep 0.5
  rm -rf "$W/nginx/cache"/*
  "$NGINX" -p "$PWD/$W/nginx" -c nginx.conf
  for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
  trace "route-$policy" --unique --seed 21 --min-zoom 8 --query "filter=range:0..2000&scale=tile"
  for i in 1 2 3; do
    curl -sf "http://127.0.0.1:$((PORT + i))/metrics" > "$W/route-$policy-metrics-$i.txt"
  done
done

python3 - "$W" "$PORT" "$RSS1" "$PSS1" "$RSS3" "$PSS3" "$STALE" "$DATA" <<'PY'
import json, sys, urllib.request
w, port, rss1, pss1, rss3, pss3, stale = sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:8])
data = sys.argv[8]
load = lambda n: json.load(open(f"{w}/{n}.json"))
report = {f"tiles_per_s_{n}_replicas": load(f"replicas-{n}")["tiles_per_s"] for n in (1, 2, 3)}
report["failed_while_a_replica_was_killed"] = load("kill")["failed"]
report["failed_during_the_version_swap"] = load("swap")["failed"]
report["replicas_left_on_the_old_version"] = stale
hits = {}
for i in (1, 2, 3):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port + i}/metrics").read().decode()
    n = {"hit": 0.0, "miss": 0.0}
    for line in text.splitlines():
        if line.startswith("pointillist_tile_cache_total"):
            for k in n:
                if f'result="{k}"' in line:
                    n[k] += float(line.rsplit(" ", 1)[1])
    total = n["hit"] + n["miss"]
    hits[f"replica_{i}"] = round(n["hit"] / total, 3) if total else None
report["tile_cache_hit_rate_uri_hashing"] = hits
report["data"] = data
if data == "s3":
    fetched = {}
    for i in (1, 2, 3):
        text = urllib.request.urlopen(f"http://127.0.0.1:{port + i}/metrics").read().decode()
        fetched[f"replica_{i}"] = sum(
            float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
            if l.startswith("pointillist_object_bytes_fetched_total"))
    report["object_bytes_fetched"] = fetched
def metric(text, name):
    return sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines() if l.startswith(name))
routing = {}
for policy in ("uri", "quadkey"):
    t = load(f"route-{policy}")
    per = {}
    for i in (1, 2, 3):
        text = open(f"{w}/route-{policy}-metrics-{i}.txt").read()
        hit = metric(text, 'pointillist_object_chunks_total{result="hit"}')
        miss = metric(text, 'pointillist_object_chunks_total{result="miss"}')
        per[f"replica_{i}"] = {
            "requests": t["upstreams"].get(f"127.0.0.1:{port + i}", 0),
            "object_cache_hit_rate": round(hit / (hit + miss), 3) if hit + miss else None,
            "object_bytes_fetched": metric(text, "pointillist_object_bytes_fetched_total"),
        }
    routing[policy] = {"failed": t["failed"], "tiles_per_s": t["tiles_per_s"], "replicas": per,
                       "object_bytes_fetched_total": sum(r["object_bytes_fetched"] for r in per.values())}
report["routing"] = routing
report["rss_mb"] = {"1_replica": rss1, "3_replicas": rss3}
report["pss_mb"] = {"1_replica": pss1, "3_replicas": pss3}
json.dump(report, open(f"{w}/report.json", "w"), indent=1)
print(json.dumps(report, indent=1))
ok = report["failed_while_a_replica_was_killed"] == 0 and report["failed_during_the_version_swap"] == 0 and stale == 0
sys.exit(0 if ok else 1)
PY
