#!/usr/bin/env bash
# Runs llmguard-bench and the raw libcurl baseline against one llmguard-mock
# process at several concurrencies and prints both with their ratios.
#   bench/compare.sh [build-dir] [requests]
set -euo pipefail
build=${1:-build}
requests=${2:-20000}
mock_out=$(mktemp)
"$build/tools/mock/llmguard-mock" --port 0 >"$mock_out" &
mock_pid=$!
trap 'kill $mock_pid 2>/dev/null; rm -f "$mock_out"' EXIT
for _ in $(seq 50); do grep -q listening "$mock_out" && break; sleep 0.1; done
url=$(awk '/listening/ {print $3}' "$mock_out")

field() { sed -E "s/.*\"$2\": ([0-9.]+).*/\1/" <<<"$1"; }
printf '%-6s %-8s %10s %9s %9s %11s\n' conc client rps p50_ms p99_ms peak_rss_kb
for c in 1 16 128; do
  for mode in "" --stream; do
    raw=$("$build/bench/raw-curl-bench" --url "$url" --requests "$requests" --concurrency "$c" $mode)
    lg=$("$build/tools/bench/llmguard-bench" --url "$url" --requests "$requests" --concurrency "$c" $mode)
    for pair in "raw:$raw" "llmguard:$lg"; do
      name=${pair%%:*}; json=${pair#*:}
      printf '%-6s %-8s %10s %9s %9s %11s\n' "$c${mode:+ s}" "$name" "$(field "$json" rps)" \
        "$(field "$json" p50_ms)" "$(field "$json" p99_ms)" "$(field "$json" peak_rss_kb)"
    done
    awk -v a="$(field "$lg" rps)" -v b="$(field "$raw" rps)" -v p="$(field "$lg" p50_ms)" -v q="$(field "$raw" p50_ms)" \
        -v r="$(field "$lg" p99_ms)" -v s="$(field "$raw" p99_ms)" \
        'BEGIN { printf "%-6s %-8s %10.2f %9.2f %9.2f\n", "", "ratio", a/b, p/q, r/s }'
  done
done
