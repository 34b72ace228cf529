#!/usr/bin/env bash
# The house's tidiness, on production code (ca-server/src, clone-tools/src):
#   - clang-format (.clang-format): every file formatted;
#   - clang-tidy (.clang-tidy): bugprone-*, performance-*, and readability-function-size (no
#     function over 80 lines), every warning an error.
# Usage: tests/architecture/lint.sh [BUILD_DIR]   (default ./build; needs its compile_commands.json,
#        which every configure writes). Prints each finding with file and line; exit 1 if any.
# Options (environment): LINT_ONLY=format|tidy, LINT_JOBS (default: the number of cores).
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${1:-$root/build}"
tidy="$(command -v clang-tidy-19 || true)"
format="$(command -v clang-format || true)"
jobs="${LINT_JOBS:-$(nproc)}"
status=0
cd "$root"
mapfile -t sources < <(git ls-files 'ca-server/src/*.cpp' 'ca-server/src/*.hpp' 'clone-tools/src/*.cpp' 'clone-tools/src/*.hpp')

if [ "${LINT_ONLY:-format}" != tidy ]; then
  [ -n "$format" ] || { echo "lint: clang-format is not installed (deploy/install-deps.sh installs it)" >&2; exit 2; }
  if ! "$format" --dry-run -Werror "${sources[@]}"; then
    echo "lint: clang-format: the files above are not formatted (clang-format -i FILE fixes them)"
    status=1
  else
    echo "lint: clang-format: ${#sources[@]} files formatted"
  fi
fi

if [ "${LINT_ONLY:-tidy}" != format ]; then
  [ -n "$tidy" ] || { echo "lint: clang-tidy-19 is not installed (deploy/install-deps.sh installs it)" >&2; exit 2; }
  [ -f "$build/compile_commands.json" ] || { echo "lint: no $build/compile_commands.json (configure with cmake first)" >&2; exit 2; }
  mapfile -t units < <(printf '%s\n' "${sources[@]}" | grep '\.cpp$')
  SECONDS=0
  # One unit per clang-tidy process, $jobs at a time; each prints its findings with file:line.
  out="$(printf '%s\n' "${units[@]}" |
    xargs -P "$jobs" -n 1 "$tidy" -p "$build" --quiet 2>/dev/null | grep -E '(warning|error):' | sort -u)"
  if [ -n "$out" ]; then
    echo "$out"
    echo "lint: clang-tidy: $(echo "$out" | wc -l) finding(s) in ${#units[@]} units (${SECONDS}s)"
    status=1
  else
    echo "lint: clang-tidy: ${#units[@]} units clean (${SECONDS}s)"
  fi
fi
exit $status
