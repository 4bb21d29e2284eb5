#!/usr/bin/env bash
# The sidecar's suite (npm test), closed by the plain line "sidecar: N passed, N failed" from tap's summary.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp "${TMPDIR:-/tmp}/rivven-npm-test-XXXXXX")
npm test 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
node -e '
  const log = require("fs").readFileSync(process.argv[1], "utf8");
  const m = [...log.matchAll(/# \{ total: (\d+), pass: (\d+)(?:, fail: (\d+))?/g)].pop();
  const pass = m ? Number(m[2]) : 0;
  const fail = m ? Number(m[3] ?? 0) : 1;
  console.log(`sidecar: ${pass} passed, ${fail} failed`);
' "$log"
exit "$rc"
