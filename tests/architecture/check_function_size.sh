#!/usr/bin/env bash
# The function-size rule of .clang-tidy (readability-function-size, 80 lines) refuses a function
# one line too long and passes one at the limit, with the project's own configuration. (The rule is
# applied to every production unit by tests/architecture/lint.sh.)
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
tidy="$(command -v clang-tidy-19 || true)"
[ -n "$tidy" ] || { echo "clang-tidy-19 is not installed (deploy/install-deps.sh installs it)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# A function written on `lines` lines; clang-tidy counts those after the line of its opening brace.
write_function() {
  local file="$1" lines="$2"
  {
    echo "int sum(int x) {"
    for ((i = 0; i < lines - 2; ++i)); do echo "  x += $i;"; done
    echo "  return x; }"
  } >"$file"
}
run_tidy() {
  "$tidy" --config-file="$root/.clang-tidy" --checks='-*,readability-function-size' "$1" -- -std=c++20 2>&1
}
write_function "$work/at_limit.cpp" 81
write_function "$work/too_long.cpp" 82
status=0
if out="$(run_tidy "$work/at_limit.cpp")"; then
  echo "ok: a function of 80 lines passes"
else
  echo "FAIL: a function of 80 lines was refused:"; echo "$out"; status=1
fi
if out="$(run_tidy "$work/too_long.cpp")"; then
  echo "FAIL: a function of 81 lines passed:"; echo "$out"; status=1
elif grep -q "81 lines including whitespace and comments (threshold 80)" <<<"$out"; then
  echo "ok: a function of 81 lines is refused"
else
  echo "FAIL: refused, but not for its size:"; echo "$out"; status=1
fi
exit $status
