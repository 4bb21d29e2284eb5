#!/usr/bin/env bash
# Runs the Java client's tests: the conformance vectors, the scenarios against real sidecars (started by the tests
# through conformance/harness.ts), and the unit tests. Maven downloads what it needs from Maven Central the first
# time. A missing JDK, Maven or Node is an error here, never a skipped test.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "clients/java/test.sh: $1 is not installed; $2" >&2
    exit 1
  fi
}
need java "install a JDK 17 or newer (Debian: apt-get install openjdk-17-jdk-headless)"
need mvn "install Maven 3.8 or newer (Debian: apt-get install maven)"
need node "install Node.js 20 or newer: the tests start the sidecar and the conformance harness with it"
major="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
if [ "${major%%.*}" -lt 17 ]; then
  echo "clients/java/test.sh: Java $major found; the client needs Java 17 or newer" >&2
  exit 1
fi
# The tests run bin/rivven (dist/) and conformance/harness.ts (tsx, from node_modules).
if [ ! -d "$root/node_modules" ]; then (cd "$root" && npm ci); fi
if [ ! -f "$root/dist/cli/main.js" ]; then (cd "$root" && npm run build); fi
cd "$here"
log="$(mktemp "${TMPDIR:-/tmp}/rivven-java-test-XXXXXX")"
set +e
mvn -B -Dstyle.color=never test "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
# Surefire's summary ("Tests run: N, Failures: F, Errors: E, Skipped: S", the last one is the total) as the plain
# line scripts/test-all.sh adds up. Skipped tests count as failed: none may be skipped.
summary="$(grep -E '^\[(INFO|WARNING|ERROR)\] Tests run: [0-9]+, Failures: [0-9]+, Errors: [0-9]+, Skipped: [0-9]+$' "$log" | tail -1)"
if [ -z "$summary" ]; then
  echo "java: 0 passed, 1 failed"
  exit 1
fi
read -r run failures errors skipped < <(echo "$summary" | sed -E 's/.*Tests run: ([0-9]+), Failures: ([0-9]+), Errors: ([0-9]+), Skipped: ([0-9]+)/\1 \2 \3 \4/')
failed=$((failures + errors + skipped))
echo  # Maven leaves a colour reset at the end of its output: the counts line starts a line of its own
echo "java: $((run - failed)) passed, $failed failed"
[ "$rc" = 0 ] && [ "$failed" = 0 ]
