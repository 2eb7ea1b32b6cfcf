#!/usr/bin/env bash
# Installs dependencies, builds, and runs the quickstart agent against the
# bundled mock provider with faults injected.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target quickstart
./build/examples/quickstart
