# Start a Pointillist server in the background for a test script and stop
# it when the script exits. Source it, then:
#   start_server BIN PORT LOG serve-args...
# Sets SERVER (its pid) and fails, printing the log, if /health does not
# answer within START_WAIT seconds (default 20).
start_server() {
  local bin=$1 port=$2 log=$3
  shift 3
  "$bin" serve "$@" --bind "127.0.0.1:$port" > "$log" 2>&1 &
  SERVER=$!
  trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
  for _ in $(seq 1 $((${START_WAIT:-20} * 5))); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null && return 0
    sleep 0.2
  done
  cat "$log" >&2
  echo "server did not start" >&2
  return 1
}
