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
exec bash "$root/scripts/surefire-counts.sh" java "$log" "$rc"
