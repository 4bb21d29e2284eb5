#!/usr/bin/env bash
# The Kafka benchmark of the README (one run side by side): direct, Kroxylicious without the filter, with it.
# Needs what test.sh needs; prints a markdown table and writes it to target/e2e-logs/bench-results.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
if [ -z "${JAVA_HOME:-}" ] && [ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ]; then
  export JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
fi
if [ -n "${JAVA_HOME:-}" ]; then
  export PATH="$JAVA_HOME/bin:$PATH"
fi
[ -d "$repo/dist/cli" ] || (cd "$repo" && npm run build)
if [ -f "$repo/clients/java/pom.xml" ]; then
  mvn -B -q -f "$repo/clients/java/pom.xml" install -DskipTests
fi
mvn -B -q -f "$here/pom.xml" test-compile
cd "$here"
exec java -Xmx1g -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
  -Drivven.repo="$repo" -Drivven.classpath.file="$here/target/test-classpath.txt" \
  -Drivven.classes="$here/target/classes:$here/target/test-classes" \
  -cp "$here/target/classes:$here/target/test-classes:$(cat "$here/target/test-classpath.txt")" \
  dev.rivven.kroxylicious.KafkaBench "$@"
