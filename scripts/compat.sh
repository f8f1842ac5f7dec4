#!/usr/bin/env bash
# etlc on another Python (`make compat`, COMPAT_PYTHON=python3.10 by default): build the wheel,
# install it into a fresh venv of that interpreter, and check that `etlc lint` and
# `etlc compile` of pipelines/ give byte for byte what the project's .venv gives; then run the
# compiler's unit tests (no pyspark) there, on this checkout's sources.
#
# etlc's own dependencies come from the package index at their lowest accepted versions (the
# pins of constraints.txt, which are the lower bounds in pyproject.toml); COMPAT_NEWEST=1 takes
# the newest the ranges allow instead. The test tools come at the newest version the
# interpreter supports. Everything lives in a temporary folder, removed at the end.
set -euo pipefail

python=${1:?usage: scripts/compat.sh PYTHON}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$root/.venv/bin
work=$(mktemp -d "${TMPDIR:-/tmp}/etlc-compat.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$root"

"$bin/pip" wheel . --no-deps --no-build-isolation --quiet --wheel-dir "$work/dist"
"$python" -m venv "$work/venv"
venv=$work/venv/bin
echo "compat: $("$venv/python" --version) against $("$bin/python" --version)"

# etlc's direct dependencies, pinned as in constraints.txt (the rest is left to pip).
"$bin/python" - "$work/lowest.txt" <<'EOF'
import sys, tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

with open("pyproject.toml", "rb") as f:
    direct = {canonicalize_name(Requirement(d).name) for d in tomllib.load(f)["project"]["dependencies"]}
with open("constraints.txt", encoding="utf-8") as f:
    pins = [line for line in f if "==" in line and canonicalize_name(line.split("==")[0]) in direct]
with open(sys.argv[1], "w", encoding="utf-8") as f:
    f.writelines(pins)
EOF
constraints=(-c "$work/lowest.txt")
[[ ${COMPAT_NEWEST:-} == 1 ]] && constraints=()
"$venv/pip" install --quiet "${constraints[@]}" "$work"/dist/etlc-*.whl
# ruff as pinned: a test formats generated drivers with it, and its output must not move.
"$venv/pip" install --quiet pytest hypothesis hatchling "$(grep -i '^ruff==' constraints.txt)"
"$venv/pip" freeze --exclude-editable | grep -iFf <(sed 's/==.*/==/' "$work/lowest.txt") |
  paste -sd' ' | sed 's/^/compat: /'

# The same commands, the same folder names (they appear in the output), one after the other.
for side in reference candidate; do
  etlc=$bin/etlc
  [[ $side == candidate ]] && etlc=$venv/etlc
  set +e
  "$etlc" lint pipelines/ >"$work/$side.lint" 2>&1
  echo "exit $?" >>"$work/$side.lint"
  "$etlc" lint --format json pipelines/ >"$work/$side.lint.json" 2>&1
  set -e
  "$etlc" compile pipelines/ --out "$work/generated" >"$work/$side.compile" 2>&1
  mv "$work/generated" "$work/$side.generated"
done
cmp "$work/reference.lint" "$work/candidate.lint"
cmp "$work/reference.lint.json" "$work/candidate.lint.json"
cmp "$work/reference.compile" "$work/candidate.compile"
diff -r "$work/reference.generated" "$work/candidate.generated"
echo "compat: etlc lint and etlc compile of pipelines/ byte-identical" \
  "($(find "$work/candidate.generated" -type f | wc -l) generated files)"

# The compiler's tests. A test module that needs pyspark to import is left out (and named);
# one that fails to import for any other reason fails the check.
tests=(tests/unit/dsl tests/unit/codegen tests/unit/security tests/unit/vault
  tests/unit/test_cli.py tests/unit/test_jars.py tests/unit/test_packaging.py)
"$venv/python" -m pytest -p no:cacheprovider -q --collect-only --continue-on-collection-errors \
  "${tests[@]}" >"$work/collect.txt" 2>&1 || true
"$bin/python" - "$work/collect.txt" >"$work/needs-pyspark.txt" <<'EOF'
import re, sys

text = open(sys.argv[1], encoding="utf-8").read()
sections = re.findall(r"_ ERROR collecting (\S+) _+\n(.*?)(?=\n_+ ERROR collecting |\n=+ )", text, re.S)
for module, body in sections:
    if "No module named 'pyspark'" not in body:
        sys.exit(f"compat: {module} cannot be collected:\n{body}")
    print(module)
EOF
ignored=()
while read -r module; do
  ignored+=(--ignore "$module")
  echo "compat: left out $module (it imports pyspark)"
done <"$work/needs-pyspark.txt"
"$venv/python" -m pytest -p no:cacheprovider -q "${tests[@]}" "${ignored[@]}"
