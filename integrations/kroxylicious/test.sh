#!/usr/bin/env bash
# The Kroxylicious filter's tests: unit tests, then the end-to-end test on a real Kafka 4 broker (KRaft, jars from
# Maven Central), the Kroxylicious proxy, rivven sidecars (this repository's bin/rivven) and a private redis-server.
# Run from anywhere; the README's test command and .ci/run call it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

# Java 17 is what Kroxylicious 0.12 and Kafka 4.0 need; prefer the machine's JDK 17 when JAVA_HOME is unset.
if [ -z "${JAVA_HOME:-}" ] && [ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ]; then
  export JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
fi
if [ -n "${JAVA_HOME:-}" ]; then
  export PATH="$JAVA_HOME/bin:$PATH"
fi
need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "integrations/kroxylicious: '$1' is not installed: $2" >&2
    exit 1
  fi
}
need java "install a JDK 17 or newer (Debian: apt-get install openjdk-17-jdk-headless)"
need mvn "install Maven 3.8+ (Debian: apt-get install maven)"
need node "install Node.js 20 (the sidecar under test is bin/rivven)"
need redis-server "install Redis (Debian: apt-get install redis-server); the fleet case starts a private one"
java_major="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/ *java.specification.version = //p')"
if [ "${java_major%%.*}" -lt 17 ] 2>/dev/null; then
  echo "integrations/kroxylicious: Java $java_major found; Java 17 or newer is needed (set JAVA_HOME)" >&2
  exit 1
fi

# The sidecar the test starts is the repository's own build.
if [ ! -d "$repo/dist/cli" ]; then
  (cd "$repo" && npm run build)
fi
# The filter runs on the project's Java client: install it into the local Maven repository first.
if [ ! -f "$repo/clients/java/pom.xml" ]; then
  echo "integrations/kroxylicious: $repo/clients/java is missing: the filter is built on the Java client" >&2
  exit 1
fi
mvn -B -q -f "$repo/clients/java/pom.xml" install -DskipTests
log="$(mktemp "${TMPDIR:-/tmp}/rivven-kroxylicious-test-XXXXXX")"
set +e
mvn -B -Dstyle.color=never -f "$here/pom.xml" test 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
exec bash "$repo/scripts/surefire-counts.sh" kroxylicious "$log" "$rc"
