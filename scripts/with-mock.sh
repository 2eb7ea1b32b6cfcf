#!/usr/bin/env bash
# Runs a command against a fresh llmguard-mock on a free loopback port, then
# stops the mock. The command finds the mock through the providers' usual
# variables, so a program written for the real APIs runs unchanged:
#   MOCK_URL (the mock's root), OPENAI_BASE_URL (the root and /v1),
#   ANTHROPIC_BASE_URL (the root, as Anthropic's SDKs take it), and
#   test keys in OPENAI_API_KEY and ANTHROPIC_API_KEY (real keys never reach
#   the mock).
#
#   scripts/with-mock.sh [--mock PATH] [--script FILE] [--stats FILE] -- COMMAND [ARGS...]
#
# --mock: the llmguard-mock binary (default: on PATH, else build/).
# --script: replies the mock plays first (docs/mock.md).
# --stats: where to write the mock's /_mock/stats JSON after the command.
# Exits with the command's status.
set -euo pipefail

mock=""
script=""
stats=""
while [ $# -gt 0 ]; do
  case $1 in
    --mock) mock=$2; shift 2 ;;
    --script) script=$2; shift 2 ;;
    --stats) stats=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "with-mock: unknown option $1" >&2; exit 2 ;;
  esac
done
[ $# -gt 0 ] || { echo "with-mock: no command given" >&2; exit 2; }
if [ -z "$mock" ]; then
  mock=$(command -v llmguard-mock || echo "$(dirname "$0")/../build/tools/mock/llmguard-mock")
fi

mock_args=(--port 0)
[ -n "$script" ] && mock_args+=(--script "$script")
coproc MOCK { exec "$mock" "${mock_args[@]}"; }
mock_pid=$MOCK_PID
trap 'kill "$mock_pid" 2>/dev/null || true; wait "$mock_pid" 2>/dev/null || true' EXIT

# The mock prints its URL once it listens; nothing needs to poll or sleep.
line=""
read -r -t 10 line <&"${MOCK[0]}" || true
case $line in
  "listening on http://"*/v1) ;;
  *) echo "with-mock: the mock did not start (said: '$line')" >&2; exit 2 ;;
esac
base=${line#listening on }
root=${base%/v1}

status=0
MOCK_URL=$root OPENAI_BASE_URL=$base ANTHROPIC_BASE_URL=$root \
  OPENAI_API_KEY=sk-mock-openai-key ANTHROPIC_API_KEY=sk-ant-mock-key \
  "$@" || status=$?

if [ -n "$stats" ]; then
  hostport=${root#http://}
  exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}"
  printf 'GET /_mock/stats HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$hostport" >&3
  # The body is the last line of the response.
  tail -n 1 <&3 >"$stats"
  exec 3<&-
fi
exit $status
