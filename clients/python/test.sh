#!/usr/bin/env bash
# The Python client's checks: ruff (lint and format), mypy (strict), pytest, in a virtualenv of its own (.venv).
# The tests start real sidecars from this repository's dist/ (built here when missing). The last line is always
# "python: N passed, N failed" (a lint or type check that fails counts as one failure; no tests ran is a failure).
set -uo pipefail
cd "$(dirname "$0")"
here=$(pwd)
repo=$(cd ../.. && pwd)
PY=${PYTHON:-python3}

summary() { echo "python: $1 passed, $2 failed"; exit $(($2 > 0 ? 1 : 0)); }

if ! command -v "$PY" >/dev/null 2>&1; then
  echo "clients/python: '$PY' not found: install Python 3.11 or newer (or set PYTHON=/path/to/python3)" >&2
  summary 0 1
fi
if ! "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "clients/python: $("$PY" --version 2>&1) is too old: Python 3.11 or newer is required (set PYTHON=...)" >&2
  summary 0 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv || { echo "clients/python: cannot create .venv (python3-venv missing?)" >&2; summary 0 1; }
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]' || { echo "clients/python: pip install failed" >&2; summary 0 1; }
if [ ! -d "$repo/dist" ]; then
  (cd "$repo" && npm run build >/dev/null) || { echo "clients/python: npm run build failed in $repo" >&2; summary 0 1; }
fi

failed=0
.venv/bin/ruff check . || { echo "clients/python: ruff check failed" >&2; failed=$((failed + 1)); }
.venv/bin/ruff format --check . || { echo "clients/python: ruff format --check failed" >&2; failed=$((failed + 1)); }
.venv/bin/mypy || { echo "clients/python: mypy failed" >&2; failed=$((failed + 1)); }

report=$(mktemp)
trap 'rm -f "$report"' EXIT
.venv/bin/python -m pytest -q -p no:cacheprovider --junitxml="$report" "$@"
rc=$?
counts=$(.venv/bin/python - "$report" <<'PY'
import sys
import xml.etree.ElementTree as ET

try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print("0 0")
    raise SystemExit
suites = [root] if root.tag == "testsuite" else list(root)
total = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) + int(s.get("skipped", 0)) for s in suites)
print(total - bad, bad)
PY
)
read -r passed bad <<<"$counts"
failed=$((failed + bad))
if [ "$rc" -eq 5 ]; then
  echo "clients/python: pytest collected no tests" >&2
  failed=$((failed + 1))
elif [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
  echo "clients/python: pytest exited with $rc" >&2
  failed=$((failed + 1))
fi
cd "$here"
summary "$passed" "$failed"
