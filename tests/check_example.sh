#!/usr/bin/env bash
# Runs an example against a fresh llmguard-mock (scripts/with-mock.sh) and
# checks its outcome: the exit status, text its output must and must not
# contain, and text the mock's stats must contain.
#
#   check_example.sh --mock BIN [--script FILE] [--exit N] [--expect TEXT]...
#                    [--absent TEXT]... [--count N TEXT]... [--stats TEXT]... -- COMMAND [ARGS...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mock=""
script_args=()
want_exit=0
expect=()
absent=()
counts=()
stats_expect=()
while [ $# -gt 0 ]; do
  case $1 in
    --mock) mock=$2; shift 2 ;;
    --script) script_args=(--script "$2"); shift 2 ;;
    --exit) want_exit=$2; shift 2 ;;
    --expect) expect+=("$2"); shift 2 ;;
    --absent) absent+=("$2"); shift 2 ;;
    --count) counts+=("$2" "$3"); shift 3 ;;
    --stats) stats_expect+=("$2"); shift 2 ;;
    --) shift; break ;;
    *) echo "check_example: unknown option $1" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

status=0
"$here/../scripts/with-mock.sh" --mock "$mock" "${script_args[@]}" --stats "$work/stats.json" -- "$@" \
  >"$work/output" 2>&1 || status=$?
cat "$work/output"
echo "-- mock stats: $(cat "$work/stats.json" 2>/dev/null)"

failures=0
fail() { echo "check_example: $*" >&2; failures=$((failures + 1)); }
[ "$status" -eq "$want_exit" ] || fail "exit status $status, expected $want_exit"
for text in "${expect[@]}"; do
  grep -qF -- "$text" "$work/output" || fail "output lacks: $text"
done
for text in "${absent[@]}"; do
  if grep -qF -- "$text" "$work/output"; then fail "output has: $text"; fi
done
for ((i = 0; i < ${#counts[@]}; i += 2)); do
  n=$(grep -cF -- "${counts[i + 1]}" "$work/output" || true)
  [ "$n" -eq "${counts[i]}" ] || fail "output has '${counts[i + 1]}' $n times, expected ${counts[i]}"
done
for text in "${stats_expect[@]}"; do
  grep -qF -- "$text" "$work/stats.json" || fail "mock stats lack: $text"
done
[ "$failures" -eq 0 ]
