#!/usr/bin/env bash
# Builds everything and runs the whole test suite.
#   scripts/test.sh              # build/ (RelWithDebInfo)
#   scripts/test.sh --sanitize   # build-asan/ with AddressSanitizer + UBSan
#   scripts/test.sh --tsan       # build-tsan/ with ThreadSanitizer
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

build_dir=build
cmake_args=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo)
ctest_args=()
if [ "${1:-}" = "--sanitize" ]; then
  build_dir=build-asan
  cmake_args+=(-DLLMGUARD_SANITIZE=ON -DLLMGUARD_BUILD_BENCH=OFF)
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
  export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  ctest_args+=(-LE package)  # builds its own, uninstrumented copy: the plain run covers it
elif [ "${1:-}" = "--tsan" ]; then
  build_dir=build-tsan
  cmake_args+=(-DLLMGUARD_TSAN=ON -DLLMGUARD_BUILD_BENCH=OFF)
  export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
  ctest_args+=(-LE package)
fi
cmake -S . -B "$build_dir" "${cmake_args[@]}" >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)" "${ctest_args[@]}"
