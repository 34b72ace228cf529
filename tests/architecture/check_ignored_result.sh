#!/usr/bin/env bash
# An ignored Result or Status fails the build: compiles a call that drops one (must be refused,
# naming the nodiscard type) and the same call discarded with (void) or checked (must compile),
# with the project's own flag for it (-Werror=unused-result, CMakeLists.txt).
#   check_ignored_result.sh CXX SOURCE_ROOT
set -euo pipefail
cxx="$1"
src="$2/ca-server/src"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
compile() { "$cxx" -std=c++23 -fsyntax-only -Werror=unused-result -I"$src" -x c++ - 2>&1; }
preamble='#include "core/error.hpp"
ca::Status save();
ca::Result<int> count();'
if out=$(printf '%s\nvoid f() { save(); }\n' "$preamble" | compile); then
  echo "FAIL: a dropped Status compiled"; exit 1
fi
grep -q "nodiscard" <<<"$out" || { echo "FAIL: refused for another reason: $out"; exit 1; }
if out=$(printf '%s\nvoid f() { count(); }\n' "$preamble" | compile); then
  echo "FAIL: a dropped Result<int> compiled"; exit 1
fi
if ! out=$(printf '%s\nvoid f() { (void)save(); if (auto n = count(); !n) return; }\n' "$preamble" | compile); then
  echo "FAIL: a Result discarded on purpose or checked was refused: $out"; exit 1
fi
echo "an ignored Result or Status does not compile"
