#!/usr/bin/env bash
# Configures and builds into ./build (binaries in build/bin).
#   deploy/build.sh                  everything (servers, tools, tests, benchmarks)
#   deploy/build.sh ca-server ...    only these targets
# BUILD_TYPE (default Release) selects the CMake build type; keep it the same between runs, or
# CMake reconfigures and rebuilds everything.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" >/dev/null
if [ $# -gt 0 ]; then
  cmake --build "$root/build" -j"$(nproc)" --target "$@"
else
  cmake --build "$root/build" -j"$(nproc)"
fi
