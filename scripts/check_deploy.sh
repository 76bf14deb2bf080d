#!/usr/bin/env bash
# Validates the deployment kit: the Kubernetes manifests against the API
# schemas (kubernetes-validate from PyPI, strict: unknown fields fail), and
# the nginx configuration with `nginx -t` (scripts/cluster_test.sh then
# runs it for real).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=test-output/venv-deploy
[ -x "$VENV/bin/kubernetes-validate" ] || {
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "kubernetes-validate==1.37.*"
}
"$VENV/bin/kubernetes-validate" --strict deploy/k8s/*.yaml
if command -v nginx >/dev/null; then
  T=$(mktemp -d)
  trap 'rm -rf "$T"' EXIT
  cp deploy/nginx/nginx.conf deploy/nginx/pointillist.conf "$T/"
  # The replicas' names resolve only inside the deployment: test against
  # loopback ones.
  sed 's/pointillist-[0-9]:8080/127.0.0.1:8080/' deploy/nginx/upstream.conf > "$T/upstream.conf"
  sed -i "s|/var/cache/nginx/pointillist|$T/cache|" "$T/pointillist.conf"
  nginx -p "$T" -c nginx.conf -t -q
  echo "nginx configuration ok"
  # The quadkey-routing variant, where Debian's njs module is installed.
  JS_MODULE=/usr/lib/nginx/modules/ngx_http_js_module.so
  if [ -f "$JS_MODULE" ]; then
    sed 's/pointillist-[0-9]:8080/127.0.0.1:8080/; s|"/etc/nginx/pointillist/"|"'"$PWD"'/deploy/nginx/"|' \
      deploy/nginx/upstream-quadkey.conf > "$T/upstream.conf"
    sed -i "1i load_module $JS_MODULE;" "$T/nginx.conf"
    nginx -p "$T" -c nginx.conf -t -q
    echo "nginx configuration with quadkey routing ok"
  fi
fi
