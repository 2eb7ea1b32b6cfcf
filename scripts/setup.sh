#!/usr/bin/env bash
# Installs the Debian packages llmguard builds with. Idempotent: installs only
# what is missing. Needs root (or sudo) the first time.
#   scripts/setup.sh           what the library, the demo and the tests need
#   scripts/setup.sh --bench   also what bench/ needs (nginx as the upstream, valgrind)
set -euo pipefail

packages=(g++ cmake ninja-build pkg-config
          libcurl4-openssl-dev libssl-dev libsimdjson-dev libfmt-dev libabsl-dev
          doctest-dev libbenchmark-dev
          libhiredis-dev redis-server  # shared state across processes; the tests start their own server
          python3-prometheus-client)  # the tests read metrics back with Prometheus's own parser
if [ "${1:-}" = "--bench" ]; then
  packages+=(nginx valgrind)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: need root to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "setup: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
