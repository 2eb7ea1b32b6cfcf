#!/usr/bin/env bash
# The fault-mix benchmark: a primary mock with seeded faults (20% 429 with
# retry-after-ms, 10% 503, 2% hangs) and a clean fallback mock; reports
# success rate, upstream attempts per successful call and latency.
#   bench/fault_mix.sh [build-dir] [requests] [concurrency]
set -euo pipefail
build=${1:-build}
requests=${2:-5000}
concurrency=${3:-32}
faults=${FAULTS:-rate_limit=0.2,overloaded=0.1,hang=0.02,retry_after_ms=50}
primary_out=$(mktemp); fallback_out=$(mktemp)
"$build/tools/mock/llmguard-mock" --port 0 --seed 42 --faults "$faults" >"$primary_out" &
p1=$!
"$build/tools/mock/llmguard-mock" --port 0 --seed 7 >"$fallback_out" &
p2=$!
trap 'kill $p1 $p2 2>/dev/null; rm -f "$primary_out" "$fallback_out"' EXIT
for _ in $(seq 50); do grep -q listening "$primary_out" && grep -q listening "$fallback_out" && break; sleep 0.1; done
primary=$(awk '/listening/ {print $3}' "$primary_out")
fallback=$(awk '/listening/ {print $3}' "$fallback_out")
echo "faults on primary: $faults; $requests calls at concurrency $concurrency; attempt timeout 500 ms"
result=$("$build/tools/bench/llmguard-bench" --url "$primary" --fallback-url "$fallback" --requests "$requests" \
         --concurrency "$concurrency" --timeout-ms 500 --deadline-ms 10000)
echo "$result"
awk -v j="$result" 'BEGIN {
  match(j, /"ok": [0-9]+/); ok = substr(j, RSTART + 6, RLENGTH - 6);
  match(j, /"requests": [0-9]+/); n = substr(j, RSTART + 12, RLENGTH - 12);
  match(j, /"upstream_attempts": [0-9]+/); a = substr(j, RSTART + 21, RLENGTH - 21);
  printf "success rate %.2f%%, upstream attempts per successful call %.3f\n", 100 * ok / n, a / ok }'
