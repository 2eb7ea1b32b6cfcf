#!/usr/bin/env bash
# Checks formatting (.clang-format) and naming (.clang-tidy) of every C++ file.
#   scripts/lint.sh          # check; exit 1 on any finding
#   scripts/lint.sh --fix    # rewrite files in place with clang-format
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v clang-format >/dev/null || need+=(clang-format)
command -v run-clang-tidy >/dev/null || need+=(clang-tidy)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

mapfile -t files < <(git ls-files '*.cc' '*.h')
if [ "${1:-}" = "--fix" ]; then
  clang-format -i "${files[@]}"
  exit 0
fi

status=0
clang-format --dry-run --Werror "${files[@]}" || { echo "lint: formatting differs; run scripts/lint.sh --fix" >&2; status=1; }

scripts/setup.sh
cmake -S . -B build-lint -G Ninja -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DLLMGUARD_BUILD_BENCH=OFF >/dev/null
if ! run-clang-tidy -p build-lint -quiet -j "$(nproc)" '/(src|tools)/.*\.cc$' >build-lint/tidy.log 2>&1 ||
   grep -qE '(warning|error):' build-lint/tidy.log; then
  grep -E '(warning|error):' build-lint/tidy.log | sed 's/\x1b\[[0-9;]*m//g' | sort -u >&2
  echo "lint: naming (.clang-tidy) findings above" >&2
  status=1
fi
exit $status
