#!/usr/bin/env bash
# The test suite as `make test` runs it, once the linters have passed and the services are up:
#
#   1. The streaming and YARN integration tests, and beside them tests/unit: those leave a core
#      idle much of their time (a stream waiting for its trigger, a retry's delay, YARN's
#      heartbeats), which the unit tests take. Measured on the two-core machine: 633 s
#      together, against 495 s + 322 s one after the other. (Beside the whole of
#      tests/integration they gained almost nothing: the files pytest runs first are
#      CPU-bound, and the unit tests ended before the idle ones started.)
#   2. The rest of tests/integration, alone.
#   3. tests/perf alone: the benchmark smokes time themselves.
#   4. The coverage of the four runs, combined, and its gate (fail_under in pyproject.toml):
#      no run checks its own part, which alone is below the gate.
#
# Every run runs even when one fails, so one report shows every failure; the unit tests' output
# is printed after the integration tests', not interleaved with it. Exit 1 when anything failed.
#
# Usage: scripts/test.sh [pytest arguments for the integration runs, e.g. --durations=40]
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="$ROOT/.venv/bin"
work="$(mktemp -d -t etlc-tests-XXXXXX)"
unit=""
# A background job ignores the terminal's SIGINT: stopping this script stops the unit run too.
stop_unit() {
	if [[ -n $unit ]]; then
		kill -TERM "$unit" 2>/dev/null
		wait "$unit" 2>/dev/null
	fi
	rm -rf "$work"
}
trap stop_unit EXIT
trap 'exit 130' INT TERM
rm -f .coverage .coverage.*

cov=(--cov=etlc --cov-report= --cov-fail-under=0)
failed=0
COVERAGE_FILE=.coverage.unit "$BIN/pytest" -q -p no:cacheprovider --durations=10 "${cov[@]}" \
	tests/unit >"$work/unit.log" 2>&1 &
unit=$!
idle=(tests/integration/test_streaming.py tests/integration/test_yarn.py)
COVERAGE_FILE=.coverage.idle "$BIN/pytest" -q "${cov[@]}" "$@" "${idle[@]}" || failed=1
wait "$unit" || failed=1
unit=""
echo "--- tests/unit (run beside ${idle[*]}) ---"
cat "$work/unit.log"
echo "--- the rest of tests/integration ---"
COVERAGE_FILE=.coverage.integration "$BIN/pytest" -q "${cov[@]}" "$@" \
	"${idle[@]/#/--ignore=}" tests/integration || failed=1
echo "--- tests/perf ---"
COVERAGE_FILE=.coverage.perf "$BIN/pytest" -q -p no:cacheprovider --durations=10 "${cov[@]}" \
	tests/perf || failed=1
# Whatever runs wrote their data (a run that crashed writes none, and fails above).
"$BIN/coverage" combine -q || failed=1
"$BIN/coverage" report || failed=1
exit "$failed"
