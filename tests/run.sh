#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (unit + real slapd/ca-server).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/deploy/install-deps.sh"
"$root/deploy/build.sh"
cd "$root/build"
ctest --output-on-failure --timeout 600 -j"$(nproc)" "$@"
