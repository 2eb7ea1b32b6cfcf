#!/usr/bin/env bash
# Builds a libFuzzer target with clang (ASan + UBSan) and runs it.
#   fuzz/run.sh [target=classify_fuzzer] [seconds=600] [jobs=1]
# Targets: classify_fuzzer (seeds: the classifier corpus), config_fuzzer
# (seeds: every config in the repo's tests, examples and docs),
# eventstream_fuzzer (seeds: the event-stream test vectors), request_fuzzer
# (seeds: the request files in the CLI's tests), reply_fuzzer (seeds: the
# nginx benchmark's reply bodies and JSON strings with every escape).
# Findings land in fuzz/findings/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
target=classify_fuzzer
# The target is optional; a number first is the seconds, as before.
if [[ $# -gt 0 && ! $1 =~ ^[0-9]+$ ]]; then target=$1; shift; fi
seconds=${1:-600}
jobs=${2:-1}
case "$target" in
  classify_fuzzer|config_fuzzer|eventstream_fuzzer|request_fuzzer|reply_fuzzer) ;;
  *) echo "fuzz: unknown target $target (classify_fuzzer, config_fuzzer, eventstream_fuzzer, request_fuzzer, reply_fuzzer)" >&2; exit 2 ;;
esac
command -v clang++ >/dev/null || { echo "fuzz: needs clang (apt-get install clang)" >&2; exit 1; }
build=build-fuzz
cmake -S . -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DLLMGUARD_BUILD_FUZZERS=ON -DLLMGUARD_BUILD_TESTS=OFF -DLLMGUARD_BUILD_TOOLS=OFF \
      -DLLMGUARD_BUILD_BENCH=OFF -DLLMGUARD_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" --target "$target"
seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
case "$target" in
  classify_fuzzer)
    corpus=fuzz/corpus-run  # where earlier runs kept theirs
    python3 - "$seeds" <<'PY'
import json, sys, os, hashlib
out = sys.argv[1]
for line in open('tests/corpus/errors.jsonl'):
    d = json.loads(line)
    data = (d['status'] % 500).to_bytes(2, 'little') + d['body'].encode()
    open(os.path.join(out, hashlib.sha1(data).hexdigest()), 'wb').write(data)
PY
    ;;
  config_fuzzer)
    corpus=fuzz/corpus-run-config
    # Config files, the ```json blocks of the docs, and the JSON objects the
    # tests write as C++ raw strings.
    python3 - "$seeds" <<'PY'
import glob, hashlib, json, os, re, sys
out = sys.argv[1]
texts = []
for path in glob.glob('tests/**/*.json', recursive=True) + glob.glob('examples/**/*.json', recursive=True) + \
        glob.glob('docs/**/*.json', recursive=True):
    texts.append(open(path, encoding='utf-8', errors='replace').read())
for path in glob.glob('docs/**/*.md', recursive=True) + ['README.md']:
    if os.path.exists(path):
        texts += re.findall(r'```json\n(.*?)```', open(path, encoding='utf-8').read(), re.S)
for path in glob.glob('tests/*.cc') + glob.glob('examples/*.cc'):
    texts += re.findall(r'R"\((\{.*?\})\)"', open(path, encoding='utf-8').read(), re.S)
n = 0
for t in texts:
    try:
        if not isinstance(json.loads(t), dict):
            continue
    except ValueError:
        continue
    data = t.encode()
    open(os.path.join(out, hashlib.sha1(data).hexdigest()), 'wb').write(data)
    n += 1
print(f'fuzz: {n} config seeds', file=sys.stderr)
PY
    ;;
  eventstream_fuzzer)
    corpus=fuzz/corpus-run-eventstream
    # Each vector, and all of them as one stream; the first byte is the piece size.
    for f in tests/data/eventstream/encoded/*/*; do
      { printf '\x07'; cat "$f"; } >"$seeds/$(basename "$(dirname "$f")")-$(basename "$f")"
    done
    { printf '\x03'; cat tests/data/eventstream/encoded/positive/*; } >"$seeds/all-positive"
    ;;
  request_fuzzer)
    corpus=fuzz/corpus-run-request
    # The request objects the CLI's tests write as C++ raw strings.
    python3 - "$seeds" <<'PY'
import hashlib, json, os, re, sys
out = sys.argv[1]
texts = re.findall(r'R"\((\{.*?\})\)"', open('tests/cli_test.cc', encoding='utf-8').read(), re.S)
n = 0
for t in texts:
    if '"messages"' not in t:
        continue
    data = t.encode()
    open(os.path.join(out, hashlib.sha1(data).hexdigest()), 'wb').write(data)
    n += 1
print(f'fuzz: {n} request seeds', file=sys.stderr)
PY
    ;;
  reply_fuzzer)
    corpus=fuzz/corpus-run-reply
    # Whole bodies (first byte even), and content pieces to be repeated (odd).
    python3 bench/nginx/gen_fixtures.py "$seeds/fixtures" 1 >/dev/null
    for f in "$seeds"/fixtures/www/plain-*/v1/chat/completions; do
      { printf '\x00'; cat "$f"; } >"$seeds/body-$(basename "$(dirname "$(dirname "$(dirname "$f")")")")"
    done
    rm -rf "$seeds/fixtures"
    printf '\x07line \\"1\\" of code:\\n\\tx = y \\\\ 2;\\n' >"$seeds/escapes"
    printf '\x05caf\\u00e9 \\/ \\b\\f\\r' >"$seeds/unicode"
    ;;
esac
dict=()
[[ -f fuzz/$target.dict ]] && dict=(-dict="../$target.dict")
mkdir -p "fuzz/findings/$target" "$corpus"
# libFuzzer writes fuzz-N.log files into the working directory when -jobs is set.
mkdir -p fuzz/logs
(cd fuzz/logs && "../../$build/fuzz/$target" "../../$corpus" "$seeds" "${dict[@]}" -max_total_time="$seconds" \
  -jobs="$jobs" -workers="$jobs" -rss_limit_mb=2048 -max_len=65536 -timeout=10 \
  -artifact_prefix="../findings/$target/" -print_final_stats=1)
