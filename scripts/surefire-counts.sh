#!/usr/bin/env bash
# Usage: surefire-counts.sh SUITE LOG EXIT_CODE
# Prints Surefire's total from a Maven log ("Tests run: N, Failures: F, Errors: E, Skipped: S", the last one) as
# the plain line scripts/test-all.sh adds up, "SUITE: N passed, N failed", and exits non-zero unless Maven
# passed and nothing failed. Skipped tests count as failed: none may be skipped.
set -euo pipefail
suite=$1 log=$2 rc=$3
summary="$(grep -E '^\[(INFO|WARNING|ERROR)\] Tests run: [0-9]+, Failures: [0-9]+, Errors: [0-9]+, Skipped: [0-9]+$' "$log" | tail -1 || true)"
# Maven leaves a colour reset at the end of its output: the counts line starts a line of its own.
echo
if [ -z "$summary" ]; then
  echo "$suite: 0 passed, 1 failed"
  exit 1
fi
read -r run failures errors skipped < <(echo "$summary" | sed -E 's/.*Tests run: ([0-9]+), Failures: ([0-9]+), Errors: ([0-9]+), Skipped: ([0-9]+)/\1 \2 \3 \4/')
failed=$((failures + errors + skipped))
echo "$suite: $((run - failed)) passed, $failed failed"
[ "$rc" = 0 ] && [ "$failed" = 0 ]
