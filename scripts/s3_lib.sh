# A local S3-compatible server for tests and benchmarks: moto's server mode,
# from PyPI (pinned), in a virtual environment under test-output/. Source it,
# then:
#   start_s3 PORT
# Sets S3_PID and S3_ENDPOINT (http://127.0.0.1:PORT) and fails, printing
# the log, if the server does not answer within 30 s. Stop it with stop_s3.
MOTO_VERSION=5.2.5
S3_VENV=test-output/venv-s3

start_s3() {
  local port=$1
  if [ ! -x "$S3_VENV/bin/moto_server" ]; then
    python3 -m venv "$S3_VENV"
    "$S3_VENV/bin/pip" install -q "moto[server]==$MOTO_VERSION"
  fi
  mkdir -p test-output
  "$S3_VENV/bin/moto_server" -H 127.0.0.1 -p "$port" > "test-output/s3-$port.log" 2>&1 &
  S3_PID=$!
  S3_ENDPOINT="http://127.0.0.1:$port"
  for _ in $(seq 1 150); do
    curl -s -o /dev/null "$S3_ENDPOINT/" && return 0
    sleep 0.2
  done
  cat "test-output/s3-$port.log" >&2
  echo "the S3 server did not start" >&2
  return 1
}

stop_s3() {
  if [ -n "${S3_PID:-}" ]; then
    kill "$S3_PID" 2>/dev/null || true
    wait "$S3_PID" 2>/dev/null || true
    S3_PID=
  fi
}
