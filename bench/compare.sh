#!/usr/bin/env bash
# Runs llmguard-bench and the raw libcurl baseline against one llmguard-mock
# process at several concurrencies and prints both with their ratios.
#   bench/compare.sh [build-dir] [requests] [rounds]
# Each configuration runs `rounds` times (default 5), alternating which client
# goes first; the table shows medians, and the ratio is the median of the
# per-round ratios, so one noisy round on a shared machine does not set it.
set -euo pipefail
build=${1:-build}
requests=${2:-20000}
rounds=${3:-5}
mock_out=$(mktemp)
results=$(mktemp)
"$build/tools/mock/llmguard-mock" --port 0 >"$mock_out" &
mock_pid=$!
trap 'kill $mock_pid 2>/dev/null; rm -f "$mock_out" "$results"' EXIT
for _ in $(seq 50); do grep -q listening "$mock_out" && break; sleep 0.1; done
url=$(awk '/listening/ {print $3}' "$mock_out")

field() { sed -E "s/.*\"$2\": ([0-9.]+).*/\1/" <<<"$1"; }
run() {  # run CLIENT CONCURRENCY MODE -> "rps p50 p99 rss"
  local bin=$1 c=$2 mode=$3 json
  json=$("$bin" --url "$url" --requests "$requests" --concurrency "$c" $mode)
  echo "$(field "$json" rps) $(field "$json" p50_ms) $(field "$json" p99_ms) $(field "$json" peak_rss_kb)"
}
raw_bin="$build/bench/raw-curl-bench"
lg_bin="$build/tools/bench/llmguard-bench"

mock_cpu_ticks() { awk '{print $14 + $15}' "/proc/$mock_pid/stat"; }
declare -A mock_ticks=([plain]=0 [stream]=0)
echo "requests per run: $requests; rounds: $rounds (medians)"
printf '%-6s %-8s %10s %9s %9s %11s\n' conc client rps p50_ms p99_ms peak_rss_kb
for c in 1 16 128; do
  for mode in "" --stream; do
    : >"$results"
    ticks_before=$(mock_cpu_ticks)
    for round in $(seq "$rounds"); do
      if ((round % 2)); then
        raw=$(run "$raw_bin" "$c" "$mode"); lg=$(run "$lg_bin" "$c" "$mode")
      else
        lg=$(run "$lg_bin" "$c" "$mode"); raw=$(run "$raw_bin" "$c" "$mode")
      fi
      echo "$raw $lg" >>"$results"
    done
    kind=${mode:+stream}; kind=${kind:-plain}
    mock_ticks[$kind]=$(( mock_ticks[$kind] + $(mock_cpu_ticks) - ticks_before ))
    # Columns: raw rps p50 p99 rss, llmguard rps p50 p99 rss.
    awk -v label="$c${mode:+ s}" '
      function median(a, n,   i, j, t) {
        for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
      }
      { n++; for (k = 1; k <= 8; k++) col[k, n] = $k
        rr[n] = $5 / $1; rp50[n] = $6 / $2; rp99[n] = $7 / $3 }
      END {
        for (side = 0; side < 2; side++) {
          for (k = 1; k <= 4; k++) { for (i = 1; i <= n; i++) v[i] = col[side * 4 + k, i]; m[k] = median(v, n) }
          printf "%-6s %-8s %10.1f %9.3f %9.3f %11d\n", label, side ? "llmguard" : "raw", m[1], m[2], m[3], m[4]
        }
        printf "%-6s %-8s %10.2f %9.2f %9.2f\n", "", "ratio", median(rr, n), median(rp50, n), median(rp99, n)
      }' "$results"
  done
done
# The mock must not be what limits either client: its own CPU cost per request.
for kind in plain stream; do
  awk -v t="${mock_ticks[$kind]}" -v hz="$(getconf CLK_TCK)" -v n=$(( requests * rounds * 2 * 3 )) -v kind="$kind" \
      'BEGIN { if (t > 0) printf "mock (%s): %.0f requests per CPU-second on its one thread\n", kind, n / (t / hz) }'
done
