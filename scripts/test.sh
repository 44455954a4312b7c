#!/usr/bin/env bash
# The whole test suite: sets up what is missing, then the Python tests (encoders) and the Node tests
# (unit, integration, end-to-end). `scripts/test.sh --fast` skips the slow end-to-end tier.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"

echo "== typecheck + lint + format" >&2
npm run --silent typecheck
npm run --silent lint
npm run --silent format:check >/dev/null

echo "== python: encoders/tests" >&2
(cd encoders && /usr/bin/python3 -m pytest -q tests)

echo "== node: unit + integration${1:- + e2e}" >&2
tiers=(test/unit test/integration)
[ "${1:-}" = "--fast" ] || tiers+=(test/e2e)
files=$(find "${tiers[@]}" -name '*.test.ts' 2>/dev/null | sort)
npm run --silent test:node -- $files
