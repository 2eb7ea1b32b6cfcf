#!/usr/bin/env bash
# Installs llmguard into a scratch prefix and builds a consumer three ways:
# find_package, add_subdirectory and pkg-config. Each consumer must run.
set -euo pipefail
source_dir=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake -S "$source_dir" -B "$work/lib" -G Ninja -DLLMGUARD_BUILD_TESTS=OFF -DLLMGUARD_BUILD_TOOLS=ON \
      -DLLMGUARD_BUILD_BENCH=OFF -DLLMGUARD_BUILD_EXAMPLES=OFF -DLLMGUARD_INSTALL=ON \
      -DCMAKE_INSTALL_PREFIX="$work/prefix" >/dev/null
cmake --build "$work/lib" >/dev/null
cmake --install "$work/lib" >/dev/null

echo "== the installed command line and mock"
"$work/prefix/bin/llmguard" --help >/dev/null
"$work/prefix/bin/llmguard-mock" --help >/dev/null
"$work/prefix/bin/llmguard" classify <<<'{"status": 429, "body": "{}"}' | grep -q '"category":"rate_limit"'
echo "cli and mock ok"

echo "== find_package"
cmake -S "$source_dir/tests/package" -B "$work/fp" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" \
      -DLLMGUARD_EXAMPLES_DIR="$source_dir/examples" >/dev/null
cmake --build "$work/fp" >/dev/null
"$work/fp/consumer"
echo "== an example built against the prefix, run against the prefix's mock"
"$source_dir/tests/check_example.sh" --mock "$work/prefix/bin/llmguard-mock" \
  --script "$source_dir/tests/examples/tool_agent.json" --expect "Oslo: 4 °C and overcast" -- "$work/fp/tool_agent"

echo "== add_subdirectory"
cmake -S "$source_dir/tests/package" -B "$work/sub" -G Ninja -DLLMGUARD_SOURCE_DIR="$source_dir" >/dev/null
cmake --build "$work/sub" >/dev/null
test ! -e "$work/sub/llmguard/tests" || { echo "tests were built for a subproject"; exit 1; }
"$work/sub/consumer"

echo "== pkg-config"
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig:$work/prefix/lib/x86_64-linux-gnu/pkgconfig"
# shellcheck disable=SC2046
g++ -std=c++20 "$source_dir/tests/package/consumer.cc" -o "$work/pc" $(pkg-config --cflags --libs llmguard)
"$work/pc"
for example in quickstart tool_agent streaming_chat service config_agent; do
  # shellcheck disable=SC2046
  g++ -std=c++20 "$source_dir/examples/$example.cc" -o "$work/pc-$example" $(pkg-config --cflags --libs llmguard)
done
"$source_dir/tests/check_example.sh" --mock "$work/prefix/bin/llmguard-mock" \
  --script "$source_dir/examples/quickstart.json" --expect "answered by gemini" -- "$work/pc-quickstart"
