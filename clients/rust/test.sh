#!/usr/bin/env bash
# The Rust client's checks: clippy (warnings are errors), rustfmt, and cargo test (unit tests, tests against a
# real sidecar, every conformance vector and scenario). Ends with the line "rust: N passed, N failed": the test
# results, plus one failure for each of clippy and rustfmt that did not pass.
#
# The tests start sidecars from the repository's dist/ (built here when missing) and the conformance harness
# from conformance/ at the repository root (RIVVEN_CONFORMANCE_DIR overrides it).
set -uo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)

report() { echo "rust: $1 passed, $2 failed"; }

if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then export PATH="$HOME/.cargo/bin:$PATH"; fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "rust: cargo is missing: install Rust with rustup (https://rustup.rs), which provides cargo, clippy and rustfmt, then run again" >&2
  report 0 1
  exit 1
fi
for tool in clippy fmt; do
  if ! cargo "$tool" --version >/dev/null 2>&1; then
    component=$([ "$tool" = fmt ] && echo rustfmt || echo clippy)
    if command -v rustup >/dev/null 2>&1; then rustup component add "$component" >/dev/null 2>&1; fi
    cargo "$tool" --version >/dev/null 2>&1 || { echo "rust: cargo $tool is missing: rustup component add $component" >&2; report 0 1; exit 1; }
  fi
done
if [ ! -f "$ROOT/dist/app.js" ]; then
  echo "rust: building the sidecar (npm run build) for the tests"
  (cd "$ROOT" && npm run build) || { echo "rust: npm run build failed" >&2; report 0 1; exit 1; }
fi

failed=0
echo "=== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings || failed=$((failed + 1))
echo "=== cargo fmt --check"
cargo fmt --check || failed=$((failed + 1))
echo "=== cargo test"
log=$(mktemp)
cargo test --no-fail-fast 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
passed=0
while read -r p f; do
  passed=$((passed + p))
  failed=$((failed + f))
done < <(sed -nE 's/^test result: [a-zA-Z]+\. ([0-9]+) passed; ([0-9]+) failed.*/\1 \2/p' "$log")
rm -f "$log"
# A build failure or a crashed test binary leaves no result line: never report it as a pass.
if [ "$rc" != 0 ] && [ "$failed" = 0 ]; then failed=1; fi
report "$passed" "$failed"
[ "$failed" = 0 ]
