#!/usr/bin/env bash
# Builds the libFuzzer target with clang (ASan + UBSan) and runs it.
#   fuzz/run.sh [seconds=600] [jobs=1]
# Seeds come from the classifier corpus; findings land in fuzz/findings/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
jobs=${2:-1}
command -v clang++ >/dev/null || { echo "fuzz: needs clang (apt-get install clang)" >&2; exit 1; }
build=build-fuzz
cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DLLMGUARD_BUILD_FUZZERS=ON -DLLMGUARD_BUILD_TESTS=OFF -DLLMGUARD_BUILD_TOOLS=OFF \
      -DLLMGUARD_BUILD_BENCH=OFF -DLLMGUARD_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" --target classify_fuzzer
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
python3 - "$seeds" <<'PY'
import json, sys, os, hashlib
out = sys.argv[1]
for line in open('tests/corpus/errors.jsonl'):
    d = json.loads(line)
    data = (d['status'] % 500).to_bytes(2, 'little') + d['body'].encode()
    open(os.path.join(out, hashlib.sha1(data).hexdigest()), 'wb').write(data)
PY
mkdir -p fuzz/findings fuzz/corpus-run
# libFuzzer writes fuzz-N.log files into the working directory when -jobs is set.
mkdir -p fuzz/logs
(cd fuzz/logs && "../../$build/fuzz/classify_fuzzer" ../corpus-run "$seeds" -max_total_time="$seconds" -jobs="$jobs" -workers="$jobs" \
  -rss_limit_mb=2048 -max_len=65536 -timeout=10 -artifact_prefix=../findings/ -print_final_stats=1)
