#!/usr/bin/env bash
# Runs llmguard-bench and the raw libcurl baseline against nginx serving
# replies shaped like real providers' (bench/nginx/), fixture by fixture.
#   bench/compare_nginx.sh [build-dir] [requests] [rounds]
# requests (default 10000) is per run; plain-64k runs a quarter of it and
# stream-500 a tenth, so that every configuration takes about as long.
# Each configuration runs `rounds` times (default 5), alternating which client
# goes first; the table shows medians, and the ratios and the added CPU are
# medians of the per-round values. Environment:
#   FIXTURES="plain-short stream-24"   fixtures to run (default: all)
#   CONCURRENCIES="1 16"               concurrencies for every fixture (default:
#                                      1 16 128, plus 1024 for plain-short,
#                                      stream-24 and plain-64k)
# raw-curl-bench only collects the reply bytes (no JSON, no SSE splitting):
# the columns show what llmguard adds over a hand-rolled client that does
# nothing with the reply.
set -euo pipefail
build=${1:-build}
requests=${2:-10000}
rounds=${3:-5}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/nginx/upstream.sh
source "$here/nginx/upstream.sh"
find_clients "$build" compare_nginx.sh
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true  # c=1024 needs more than 1024 descriptors

results=$(mktemp)
timing=$(mktemp)
trap 'stop_upstream; rm -f "$results" "$timing"' EXIT
trap 'exit 1' INT TERM HUP PIPE  # so that a signal also runs the EXIT trap
start_upstream

read -r -a fixtures <<<"${FIXTURES:-${FIXTURES_ALL[*]}}"
field() { sed -E "s/.*\"$2\": ([0-9.]+).*/\1/" <<<"$1"; }
# cpu_seconds CLIENT URL N C ARGS...: user+sys CPU seconds of one run (its
# JSON report goes to $results.json).
cpu_seconds() {
  local bin=$1 url=$2 n=$3 c=$4
  shift 4
  TIMEFORMAT='%3U %3S'
  { time "$bin" --url "$url" --requests "$n" --concurrency "$c" "$@" >"$results.json"; } 2>"$timing"
  awk '{print $1 + $2}' "$timing"
}
# startup_cpu CLIENT URL ARGS...: CPU seconds of a one-request run (median of
# 3): start-up and shutdown (libcurl and OpenSSL initialisation, ~40 ms),
# taken off every run's CPU so that the per-request figure is the requests'.
startup_cpu() {
  local bin=$1 url=$2
  shift 2
  for _ in 1 2 3; do cpu_seconds "$bin" "$url" 1 1 "$@"; done | sort -n | sed -n 2p
}
# run CLIENT URL N C STARTUP ARGS... -> "rps p50 rss cpu_us_per_request";
# fails the script if any request failed, so that a broken fixture cannot
# look fast.
run() {
  local bin=$1 url=$2 n=$3 c=$4 startup=$5 json cpu errors
  shift 5
  cpu=$(cpu_seconds "$bin" "$url" "$n" "$c" "$@")
  json=$(cat "$results.json")
  errors=$(field "$json" errors)
  if [ "$errors" != 0 ]; then
    echo "compare_nginx.sh: $bin $url c=$c: $errors errors: $json" >&2
    exit 1
  fi
  cpu=$(awk -v t="$cpu" -v s="$startup" -v n="$n" 'BEGIN {printf "%.2f", (t - s) * 1e6 / n}')
  echo "$(field "$json" rps) $(field "$json" p50_ms) $(field "$json" peak_rss_kb) $cpu"
}

echo "cpu columns: user+sys CPU per request in us, less a one-request run's (start-up and shutdown)"
echo "nginx upstream $UPSTREAM (pid $UPSTREAM_PID); requests per run: $requests; rounds: $rounds (medians)"
printf '%-16s %5s %9s %9s %6s %8s %8s %8s %8s %8s %8s %8s\n' fixture c raw_rps lg_rps ratio raw_p50 lg_p50 \
  raw_rss lg_rss raw_cpu lg_cpu added
total_requests=0
ticks_before=$(nginx_cpu_ticks)
accepts_before=$(nginx_accepts)
for fixture in "${fixtures[@]}"; do
  url=$(fixture_url "$fixture")
  read -r -a args <<<"$(fixture_args "$fixture")"
  [ ${#args[@]} -gt 0 ] || { echo "compare_nginx.sh: unknown fixture $fixture" >&2; exit 2; }
  n=$requests
  case $fixture in
    plain-64k) n=$((requests / 4)) ;;
    stream-500) n=$((requests / 10)) ;;
  esac
  n=$((n > 0 ? n : 1))
  if [ -n "${CONCURRENCIES:-}" ]; then
    read -r -a concs <<<"$CONCURRENCIES"
  else
    concs=(1 16 128)
    case $fixture in plain-short | stream-24 | plain-64k) concs+=(1024) ;; esac
  fi
  raw_start=$(startup_cpu "$raw_bin" "$url" "${args[@]}")
  lg_start=$(startup_cpu "$lg_bin" "$url" "${args[@]}")
  for c in "${concs[@]}"; do
    : >"$results"
    for round in $(seq "$rounds"); do
      if ((round % 2)); then
        raw=$(run "$raw_bin" "$url" "$n" "$c" "$raw_start" "${args[@]}")
        lg=$(run "$lg_bin" "$url" "$n" "$c" "$lg_start" "${args[@]}")
      else
        lg=$(run "$lg_bin" "$url" "$n" "$c" "$lg_start" "${args[@]}")
        raw=$(run "$raw_bin" "$url" "$n" "$c" "$raw_start" "${args[@]}")
      fi
      echo "$raw $lg" >>"$results"
      total_requests=$((total_requests + 2 * n))
    done
    # Columns: raw rps p50 rss cpu, llmguard rps p50 rss cpu.
    awk -v fixture="$fixture" -v c="$c" '
      function median(a, n,   i, j, t) {
        for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
      }
      { n++; for (k = 1; k <= 8; k++) col[k, n] = $k; ratio[n] = $5 / $1; added[n] = $8 - $4 }
      END {
        for (k = 1; k <= 8; k++) { for (i = 1; i <= n; i++) v[i] = col[k, i]; m[k] = median(v, n) }
        printf "%-16s %5s %9.0f %9.0f %6.2f %8.3f %8.3f %8d %8d %8.1f %8.1f %8.1f\n", fixture, c, m[1], m[5],
          median(ratio, n), m[2], m[6], m[3], m[7], m[4], m[8], median(added, n)
      }' "$results"
  done
done
rm -f "$results.json"
# nginx must not be what limits either client: its CPU per request, and how
# many connections it accepted (keep-alive: about one per slot per run).
ticks=$(( $(nginx_cpu_ticks) - ticks_before ))
accepts=$(( $(nginx_accepts) - accepts_before ))
awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v n="$total_requests" -v a="$accepts" 'BEGIN {
  if (t > 0) printf "nginx: %d requests on %d connections, %.1f CPU us per request on its one process\n", n, a, t / hz * 1e6 / n
}'
