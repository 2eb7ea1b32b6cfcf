# Sourced by bench/compare_nginx.sh and bench/callgrind.sh: starts the nginx
# upstream (bench/nginx/gen_fixtures.py) in a temp dir on a free loopback port.
#   start_upstream        sets UPSTREAM_DIR, UPSTREAM_PID, UPSTREAM (http://127.0.0.1:PORT)
#   stop_upstream         stops it by pid and removes the temp dir (call from an EXIT trap)
#   fixture_url NAME      the fixture's API root, e.g. $UPSTREAM/plain-4k/v1
#   fixture_args NAME     the client options the fixture needs (--provider, --stream)
#   nginx_cpu_ticks       user+sys clock ticks nginx has used so far
#   nginx_accepts         connections nginx has accepted so far (stub_status)
#   find_clients BUILD ME sets raw_bin and lg_bin, the two bench clients in BUILD, or exits
# shellcheck shell=bash
nginx_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NGINX=${NGINX:-/usr/sbin/nginx}
if [ ! -x "$NGINX" ] || ! command -v valgrind >/dev/null; then
  "$nginx_here/../../scripts/setup.sh" --bench
fi
# shellcheck disable=SC2034  # FIXTURES_ALL is for the scripts that source this file
mapfile -t FIXTURES_ALL < <(python3 "$nginx_here/gen_fixtures.py" --list | awk '{print $1}')
UPSTREAM_DIR="" UPSTREAM_PID="" UPSTREAM=""

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_upstream() {
  UPSTREAM_DIR=$(mktemp -d "${TMPDIR:-/tmp}/llmguard-nginx.XXXXXX")
  local port try
  for try in 1 2 3 4 5; do
    port=$(free_port)
    python3 "$nginx_here/gen_fixtures.py" "$UPSTREAM_DIR" "$port"
    "$NGINX" -p "$UPSTREAM_DIR" -c "$UPSTREAM_DIR/nginx.conf" -e "$UPSTREAM_DIR/error.log" &
    UPSTREAM_PID=$!
    UPSTREAM="http://127.0.0.1:$port"
    for _ in $(seq 50); do
      if curl -sf "$UPSTREAM/health" >/dev/null 2>&1; then return 0; fi
      kill -0 "$UPSTREAM_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill "$UPSTREAM_PID" 2>/dev/null || true
    wait "$UPSTREAM_PID" 2>/dev/null || true
    echo "nginx did not start on port $port (try $try):" >&2
    cat "$UPSTREAM_DIR/error.log" >&2 || true
  done
  return 1
}

stop_upstream() {
  if [ -n "$UPSTREAM_PID" ]; then
    kill "$UPSTREAM_PID" 2>/dev/null || true
    wait "$UPSTREAM_PID" 2>/dev/null || true
  fi
  if [ -n "$UPSTREAM_DIR" ]; then rm -rf "$UPSTREAM_DIR"; fi
}

fixture_url() {
  echo "$UPSTREAM/$1/v1"
}

fixture_args() {
  python3 "$nginx_here/gen_fixtures.py" --list | awk -v f="$1" '
    $1 == f { printf "--provider %s%s\n", $2, ($3 == "stream" ? " --stream" : "") }'
}

nginx_cpu_ticks() {
  awk '{print $14 + $15}' "/proc/$UPSTREAM_PID/stat"
}

nginx_accepts() {
  curl -sf "$UPSTREAM/status" | awk 'NR == 3 {print $1}'
}

find_clients() {
  raw_bin="$1/bench/raw-curl-bench"
  lg_bin="$1/tools/bench/llmguard-bench"
  local bin
  for bin in "$raw_bin" "$lg_bin"; do
    [ -x "$bin" ] || { echo "$2: $bin not built" >&2; exit 2; }
  done
}
