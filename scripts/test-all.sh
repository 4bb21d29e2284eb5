#!/usr/bin/env bash
# Every test of the project: the sidecar's (npm test), then each client's and integration's own suite.
# Installs what the tests need from the package registries when it is missing (redis-server, promtool, openssl
# from Debian's packages when run as root; npm, Maven and cargo dependencies through their own tools), and stops
# with a message naming what to install when something cannot be had. Never skips a suite.
#
# Each suite ends with a plain line "<suite>: N passed, N failed"; this script ends with their sum.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
LOG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/rivven-tests-XXXXXX")

fail() { echo "test-all: $*" >&2; exit 1; }

# Debian packages the tests run: installed when missing if we are root with apt-get, else named.
need_debian() {
  local cmd=$1 pkg=$2
  command -v "$cmd" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test-all: installing $pkg (for $cmd) from Debian's packages"
    if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq >/dev/null 2>&1 || true; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null 2>&1 \
      || fail "could not install $pkg; install it (it provides $cmd) and run again"
  fi
  command -v "$cmd" >/dev/null 2>&1 || fail "$cmd is missing: install the Debian package $pkg (apt-get install $pkg) and run again"
}

command -v node >/dev/null 2>&1 || fail "node is missing: install Node.js 20 or later"
command -v npm >/dev/null 2>&1 || fail "npm is missing: install Node.js 20 or later (it ships npm)"
need_debian redis-server redis-server   # the fleet and Redis store tests start private redis-servers
need_debian redis-cli redis-tools       # Redis Cluster fixtures
need_debian openssl openssl             # the TLS tests make their certificates
need_debian promtool prometheus         # the alert rules are checked and unit-tested
need_debian java openjdk-17-jdk-headless # clients/java and the Kafka integration (Java 17)
need_debian mvn maven                   # their builds and tests
# Kroxylicious 0.12 and Kafka 4.0 run on Java 17: prefer the machine's JDK 17 when JAVA_HOME is unset.
if [ -z "${JAVA_HOME:-}" ] && [ -x /usr/lib/jvm/java-17-openjdk-amd64/bin/java ]; then
  export JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
fi
# Toolchains installed outside the default PATH (rustup, the Go tarball): the suites find them there too.
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
[ -x /usr/local/go/bin/go ] && export PATH="/usr/local/go/bin:$PATH"

[ -d node_modules ] || npm install --no-audit --no-fund || fail "npm install failed"

SUITES=()
run_suite() {
  local name=$1; shift
  echo "=== $name: $*"
  "$@" 2>&1 | tee "$LOG_DIR/$name.log"
  local rc=${PIPESTATUS[0]}
  local line
  # Terminal escape codes a tool leaves (Maven's colour reset) are taken off before the line is looked for.
  line=$(sed -E 's/\x1b\[[0-9;]*[A-Za-z]//g' "$LOG_DIR/$name.log" | grep -E "^$name: [0-9]+ passed, [0-9]+ failed" | tail -1)
  [ -n "$line" ] || line="$name: 0 passed, 1 failed"
  if [ "$rc" != 0 ] && echo "$line" | grep -q ' 0 failed'; then line="$name: 0 passed, 1 failed"; fi
  SUITES+=("$line")
}

echo "=== prometheus rules"
if (cd config/prometheus && promtool check rules rivven-rules.yml && promtool test rules rivven-rules.test.yml); then
  SUITES+=("rules: 1 passed, 0 failed")
else
  SUITES+=("rules: 0 passed, 1 failed")
fi

run_suite sidecar bash scripts/test-sidecar.sh
for dir in clients/java integrations/kroxylicious clients/rust clients/go clients/python; do
  [ -f "$dir/test.sh" ] || continue
  run_suite "$(basename "$dir")" bash "$dir/test.sh"
done

passed=0; failed=0
echo "=== summary"
for s in "${SUITES[@]}"; do
  echo "$s"
  p=$(echo "$s" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\1/'); f=$(echo "$s" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\2/')
  passed=$((passed + p)); failed=$((failed + f))
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
