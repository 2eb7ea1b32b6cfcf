#!/usr/bin/env bash
# Installs dependencies, builds, and runs the quickstart agent against the
# bundled mock provider, which plays real providers' failures from
# examples/quickstart.json.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target quickstart llmguard-mock
scripts/with-mock.sh --mock build/tools/mock/llmguard-mock --script examples/quickstart.json -- build/examples/quickstart
