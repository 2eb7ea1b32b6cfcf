#!/usr/bin/env bash
# The fleet's figures (docs/fleet.md): what shared state costs per attempt,
# whether 8 processes x 8 threads hold a shared 600 RPM limit, and whether a
# shared budget holds. Starts its own redis-server and llmguard-mock.
#   bench/fleet.sh [build-dir] [seconds]     (seconds of the rate run: 65 by default)
set -euo pipefail
build=${1:-build}
seconds=${2:-65}
scratch=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$scratch"; }
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$scratch" >"$scratch/redis.log" &
pids+=($!)
"$build/tools/mock/llmguard-mock" --port 0 >"$scratch/mock.out" &
pids+=($!)
for _ in $(seq 100); do
  grep -q "Ready to accept" "$scratch/redis.log" && grep -q listening "$scratch/mock.out" && break
  sleep 0.1
done
url=$(awk '/listening/ {print $3}' "$scratch/mock.out")
root=${url%/v1}
redis="redis://127.0.0.1:$port/0"
bench="$build/bench/fleet_bench"
requests() { curl -s "$root/_mock/stats" | sed -E 's/.*"requests":([0-9]+).*/\1/'; }

echo "== cost per attempt (one process, one thread, the mock on loopback)"
"$bench" cost --url "$url" --redis "$redis" --requests 5000 --concurrency 1
echo "== cost per attempt (one process, 8 threads, the mock on loopback)"
"$bench" cost --url "$url" --redis "$redis" --requests 20000 --concurrency 8

echo "== 8 processes x 8 threads sharing requests_per_minute 600 for $seconds s"
curl -s -X POST "$root/_mock/reset" >/dev/null
for i in $(seq 8); do
  "$bench" load --url "$url" --redis "$redis" --namespace rate --seconds "$seconds" --threads 8 --rpm 600 \
    >"$scratch/load$i.json" &
  pids+=($!)
done
sleep 5  # the bucket starts with a minute's allowance: the steady window starts after it is drained
at5=$(requests)
sleep 60
at65=$(requests)
wait "${pids[@]:2}" 2>/dev/null || true
echo "requests the mock saw from 5 s to 65 s: $((at65 - at5)) (limit 600 per minute; $at5 in the first 5 s, the burst)"
cat "$scratch"/load*.json | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /"ok":/) ok += $(i + 1) } END { print "calls answered by all workers:", ok }'

echo "== 8 processes x 8 threads under one shared budget of \$0.05"
curl -s -X POST "$root/_mock/reset" >/dev/null
budget_pids=()
for i in $(seq 8); do
  "$bench" load --url "$url" --redis "$redis" --namespace budget --seconds 60 --threads 8 --budget-usd 0.05 \
    >"$scratch/budget$i.json" &
  budget_pids+=($!)
done
wait "${budget_pids[@]}"
cat "$scratch"/budget*.json | awk '{ for (i = 1; i <= NF; i++) { if ($i ~ /"cost_usd":/) { v = $(i + 1); sub(/}/, "", v); c += v }
                                      if ($i ~ /"ok":/) ok += $(i + 1) } }
  END { printf "calls answered: %d; spent, as the replies were billed: $%.6f of $0.050000\n", ok, c }'
printf '{"shared_state": {"redis_url": "%s", "namespace": "budget"}}' "$redis" >"$scratch/fleet.json"
"$build/tools/cli/llmguard" fleet --config "$scratch/fleet.json"
