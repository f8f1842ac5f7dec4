#!/usr/bin/env bash
# The test suite as `make test` runs it, once the linters have passed and the services are up:
#
#   1. tests/integration, and beside it tests/unit: an integration test leaves a core idle much
#      of its time (a stream waiting for its trigger, a retry's delay, YARN's heartbeats), which
#      the unit tests take. Measured on the two-core machine: the streaming and YARN tests with
#      the unit tests beside them took 633 s, against 495 s + 322 s one after the other.
#   2. tests/perf alone: the benchmark smokes time themselves.
#   3. The coverage of all three runs, combined, with the gate (fail_under in pyproject.toml).
#
# Every run runs even when one fails, so one report shows every failure; the unit tests' output
# is printed after the integration tests', not interleaved with it. Exit 1 when anything failed.
#
# Usage: scripts/test.sh [pytest arguments for the integration run, e.g. --durations=40]
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="$ROOT/.venv/bin"
work="$(mktemp -d -t etlc-tests-XXXXXX)"
trap 'rm -rf "$work"' EXIT
rm -f .coverage .coverage.*

failed=0
COVERAGE_FILE=.coverage.unit "$BIN/pytest" -q -p no:cacheprovider --durations=10 \
	--cov=etlc --cov-report= tests/unit >"$work/unit.log" 2>&1 &
unit=$!
COVERAGE_FILE=.coverage.integration "$BIN/pytest" -q --cov=etlc --cov-report= "$@" \
	tests/integration || failed=1
wait "$unit" || failed=1
echo "--- tests/unit (run beside tests/integration) ---"
cat "$work/unit.log"
echo "--- tests/perf ---"
COVERAGE_FILE=.coverage.perf "$BIN/pytest" -q -p no:cacheprovider --durations=10 \
	--cov=etlc --cov-report= tests/perf || failed=1
"$BIN/coverage" combine -q .coverage.unit .coverage.integration .coverage.perf || failed=1
"$BIN/coverage" report || failed=1
exit "$failed"
