#!/usr/bin/env bash
# The Go client's checks: gofmt (must list nothing), go vet, go test (the conformance vectors, the scenarios
# against real sidecars started through conformance/harness.ts, and the unit tests). The last line is always
# "go: N passed, N failed", counting top-level tests and subtests as go test reports them; a format or vet
# failure, or a package that does not build, counts as one failure. A missing Go or Node is an error, never a
# skipped test.
set -uo pipefail
cd "$(dirname "$0")"
repo=$(cd ../.. && pwd)

summary() { echo "go: $1 passed, $2 failed"; exit $(($2 > 0 ? 1 : 0)); }

# The official tarball installs to /usr/local/go, which is not always on PATH (CI runs without a login shell).
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then PATH="/usr/local/go/bin:$PATH"; fi
if ! command -v go >/dev/null 2>&1; then
  echo "clients/go: go not found: install Go 1.23 or newer (https://go.dev/doc/install, or Debian: apt-get install golang-go)" >&2
  summary 0 1
fi
if ! command -v node >/dev/null 2>&1; then
  echo "clients/go: node not found: install Node.js 20 or newer (the tests start the sidecar and the conformance harness with it)" >&2
  summary 0 1
fi
if [ ! -d "$repo/node_modules" ]; then (cd "$repo" && npm ci --no-audit --no-fund) || { echo "clients/go: npm ci failed in $repo" >&2; summary 0 1; }; fi
if [ ! -f "$repo/dist/cli/main.js" ]; then (cd "$repo" && npm run build >/dev/null) || { echo "clients/go: npm run build failed in $repo" >&2; summary 0 1; }; fi

failed=0
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "clients/go: gofmt -l lists files to format:" >&2
  echo "$unformatted" >&2
  failed=$((failed + 1))
fi
go vet ./... || { echo "clients/go: go vet failed" >&2; failed=$((failed + 1)); }

report=$(mktemp "${TMPDIR:-/tmp}/rivven-go-test-XXXXXX")
trap 'rm -f "$report"' EXIT
go test -count=1 -json ./... "$@" >"$report"
rc=$?
# Show the run as plain text (the test2json Output lines), then count the pass/fail/skip events of tests.
sed -n 's/.*"Action":"output".*"Output":"\(.*\)"}$/\1/p' "$report" | sed -e 's/\\n$//' -e 's/\\t/\t/g' -e 's/\\"/"/g'
passed=$(grep -c '"Action":"pass","Package":"[^"]*","Test":' "$report")
bad=$(grep -cE '"Action":"(fail|skip)","Package":"[^"]*","Test":' "$report")
failed=$((failed + bad))
if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
  echo "clients/go: go test exited with $rc (a package did not build?)" >&2
  failed=$((failed + 1))
fi
if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then
  echo "clients/go: no test ran" >&2
  failed=1
fi
summary "$passed" "$failed"
