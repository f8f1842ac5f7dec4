#!/usr/bin/env bash
# The test suite as `make test` runs it, once the linters have passed and the services are up:
#
#   1. The streaming and YARN integration tests, and beside them tests/unit: those leave a core
#      idle much of their time (a stream waiting for its trigger, a retry's delay, YARN's
#      heartbeats), which the unit tests take. Measured on the two-core machine: 633 s
#      together, against 495 s + 322 s one after the other. (Beside the whole of
#      tests/integration they gained almost nothing: the files pytest runs first are
#      CPU-bound, and the unit tests ended before the idle ones started.)
#   2. The rest of tests/integration in two shards side by side: a test waits much of its
#      time on a JVM starting, a retry's delay or a service, which the other shard's test
#      takes. The shards share no table, bucket prefix, fixed path or Maven run (shard A: the
#      files that share tables and S3 prefixes; B: the rest, whose tests name their own), and
#      no test in either stops a service. Measured on the two-core machine: 962 s and 818 s
#      side by side, then 198 s for 3., against 1,368 s for all of them in one run.
#   3. tests/integration/test_database_loads.py alone: it crashes the database servers.
#   4. tests/perf alone: the benchmark smokes time themselves.
#   5. The coverage of the runs, combined, and its gate (fail_under in pyproject.toml): no run
#      checks its own part, which alone is below the gate.
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
shard=""
# A background job ignores the terminal's SIGINT: stopping this script stops those runs too.
stop_background() {
	for pid in $unit $shard; do
		kill -TERM "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	rm -rf "$work"
}
trap stop_background EXIT
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
integration=(-q -p no:cacheprovider "${cov[@]}" "$@")
shard_a=(test_s3.py test_s3_commit_faults.py test_incremental.py test_ddl.py test_kafka_postgres.py
	test_databases.py)
shard_a=("${shard_a[@]/#/tests/integration/}")
alone=(tests/integration/test_database_loads.py)
COVERAGE_FILE=.coverage.shard-a "$BIN/pytest" "${integration[@]}" --basetemp="$work/shard-a" \
	"${shard_a[@]}" >"$work/shard-a.log" 2>&1 &
shard=$!
echo "--- tests/integration, shard B (shard A beside it: ${shard_a[*]}) ---"
ignored=("${idle[@]}" "${shard_a[@]}" "${alone[@]}")
COVERAGE_FILE=.coverage.shard-b "$BIN/pytest" "${integration[@]}" --basetemp="$work/shard-b" \
	"${ignored[@]/#/--ignore=}" tests/integration || failed=1
wait "$shard" || failed=1
shard=""
echo "--- tests/integration, shard A ---"
cat "$work/shard-a.log"
echo "--- ${alone[*]}, alone ---"
COVERAGE_FILE=.coverage.alone "$BIN/pytest" "${integration[@]}" "${alone[@]}" || failed=1
echo "--- tests/perf ---"
COVERAGE_FILE=.coverage.perf "$BIN/pytest" -q -p no:cacheprovider --durations=10 "${cov[@]}" \
	tests/perf || failed=1
# Whatever runs wrote their data (a run that crashed writes none, and fails above).
"$BIN/coverage" combine -q || failed=1
"$BIN/coverage" report || failed=1
exit "$failed"
