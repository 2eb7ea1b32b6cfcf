#!/usr/bin/env bash
# Instructions per request of llmguard-bench and raw-curl-bench against the
# nginx upstream (bench/nginx/), fixture by fixture, under callgrind.
#   bench/callgrind.sh [build-dir]
# Each client runs at concurrency 16 with N=200 and N=50 requests; the
# instructions per request are (Ir(200) - Ir(50)) / 150, so start-up and
# shutdown cancel. Ir is the total over all of the client's threads
# (callgrind counts every thread unless --separate-threads=yes; llmguard's
# loop thread, where parsing happens, is included). nginx runs natively and is
# not counted. Environment:
#   FIXTURES="plain-64k stream-24"   fixtures to run (default: all)
#   ROUNDS=3                         measure each difference ROUNDS times and
#                                    take the median (default 1)
#   KEEP=DIR                         keep the callgrind.out files in DIR
#   ANNOTATE=N                       print llmguard's N functions with the most
#                                    inclusive Ir per request, and the N with
#                                    the most self Ir per request
set -euo pipefail
build=${1:-build}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/nginx/upstream.sh
source "$here/nginx/upstream.sh"
find_clients "$build" callgrind.sh
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind not found" >&2; exit 2; }
rounds=${ROUNDS:-1}
big=200 small=50 conc=16
work=$(mktemp -d "${TMPDIR:-/tmp}/llmguard-callgrind.XXXXXX")
trap 'stop_upstream; rm -rf "$work"' EXIT
trap 'exit 1' INT TERM HUP PIPE  # so that a signal also runs the EXIT trap
start_upstream
if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP"; fi

# ir CLIENT-NAME BIN FIXTURE N ARGS... -> total Ir of one run
ir() {
  local name=$1 bin=$2 fixture=$3 n=$4 out json
  shift 4
  out="$work/callgrind.out.$fixture.$name.$n"
  json=$(valgrind --tool=callgrind --callgrind-out-file="$out" -q \
    "$bin" --url "$(fixture_url "$fixture")" --requests "$n" --concurrency "$conc" "$@")
  if ! grep -q "\"errors\": 0," <<<"$json"; then
    echo "callgrind.sh: $name $fixture N=$n failed: $json" >&2
    exit 1
  fi
  if [ -n "${KEEP:-}" ]; then cp "$out" "$KEEP/"; fi
  awk '/^(summary|totals):/ {print $2; exit}' "$out"
}

# per_request NAME BIN FIXTURE ARGS... -> median over rounds of (Ir(big) - Ir(small)) / (big - small)
per_request() {
  local name=$1 bin=$2 fixture=$3 a b
  shift 3
  for _ in $(seq "$rounds"); do
    a=$(ir "$name" "$bin" "$fixture" "$big" "$@")
    b=$(ir "$name" "$bin" "$fixture" "$small" "$@")
    echo "$a $b"
  done | awk -v d=$((big - small)) '
    { v[++n] = ($1 - $2) / d }
    END {
      for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
      printf "%.0f\n", n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }'
}

# top_functions FIXTURE yes|no: the llmguard functions whose inclusive (yes)
# or self (no) Ir grew most from the N=small run to the N=big run, per
# request (start-up cancels here too).
top_functions() {
  local f
  for f in "$big" "$small"; do
    # Lines "1,234 (5.6%)  file:function [object]"; the same function can
    # appear under two spellings of its file, so key on the function alone.
    # Unnamed addresses in stripped libraries (???:0x...) are left out.
    callgrind_annotate --inclusive="$2" --auto=no --threshold=100 "$work/callgrind.out.$1.llmguard.$f" 2>/dev/null |
      awk -v run="$f" '$1 ~ /^[0-9,]+$/ && $2 ~ /^\(/ && $3 != "=>" {
        n = $1; gsub(",", "", n); $1 = ""; $2 = ""; sub(/^ +/, "")
        if ($0 ~ /^\?\?\?:0x/ || $0 ~ /^PROGRAM TOTALS/) next
        sub(/^[^:]*:/, ""); sub(/ \[[^]]*\]$/, ""); print run "\t" n "\t" $0 }'
  done | awk -F '\t' -v big="$big" -v d=$((big - small)) '
    $1 == big { if ($2 > a[$3]) a[$3] = $2; next } { if ($2 > b[$3]) b[$3] = $2 }
    END { for (k in a) printf "%12.0f  %s\n", (a[k] - b[k]) / d, substr(k, 1, 150) }' |
    sort -rn | awk -v n="$ANNOTATE" 'NR <= n'
}

read -r -a fixtures <<<"${FIXTURES:-${FIXTURES_ALL[*]}}"
echo "callgrind, c=$conc, Ir per request = (Ir(N=$big) - Ir(N=$small)) / $((big - small)); rounds: $rounds"
printf '%-16s %12s %12s %7s %12s\n' fixture raw_ir/req lg_ir/req ratio added/req
for fixture in "${fixtures[@]}"; do
  read -r -a args <<<"$(fixture_args "$fixture")"
  [ ${#args[@]} -gt 0 ] || { echo "callgrind.sh: unknown fixture $fixture" >&2; exit 2; }
  raw=$(per_request raw "$raw_bin" "$fixture" "${args[@]}")
  lg=$(per_request llmguard "$lg_bin" "$fixture" "${args[@]}")
  awk -v f="$fixture" -v r="$raw" -v l="$lg" 'BEGIN { printf "%-16s %12d %12d %7.2f %12d\n", f, r, l, l / r, l - r }'
  if [ -n "${ANNOTATE:-}" ]; then
    echo "  llmguard's top $ANNOTATE functions by inclusive Ir per request ((N=$big - N=$small) / $((big - small))):"
    top_functions "$fixture" yes | sed 's/^/    /'
    echo "  llmguard's top $ANNOTATE functions by self Ir per request:"
    top_functions "$fixture" no | sed 's/^/    /'
  fi
done
