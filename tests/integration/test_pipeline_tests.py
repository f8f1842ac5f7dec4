"""`etlc test` from the command line, through spark-submit on local Spark: the examples pass
with exit 0, and one value off fails with exit 1, a diff naming the key and the column, and
JUnit XML."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.integration.conftest import submit_environ

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "tests" / "pipelines"


def _etlc_test(*args: str) -> subprocess.CompletedProcess[str]:
    # The session's JVM options: the runner's JVM starts from the class data archive.
    return subprocess.run(
        [str(Path(sys.executable).parent / "etlc"), "test", *args],
        cwd=ROOT,
        env=submit_environ("local[2]"),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_the_examples_pass_and_one_value_off_fails_naming_key_and_column(tmp_path: Path) -> None:
    passed = _etlc_test("--junit-xml", str(tmp_path / "ok.xml"))
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert passed.stdout.splitlines()[-1] == "5 test(s) in 3 file(s): 5 passed, 0 failed"
    suites = ET.parse(tmp_path / "ok.xml").getroot()
    assert sum(int(s.get("tests", "0")) for s in suites) == 5
    assert not any(s.get("failures") != "0" or s.get("errors") != "0" for s in suites)

    doc = json.loads((EXAMPLES / "orders_by_country.test.json").read_text())
    doc["tests"][0]["expect"]["by_country"]["rows"][0]["revenue_with_vat"] = 120.07
    (tmp_path / "orders_by_country.test.json").write_text(json.dumps(doc))
    shutil.copy(EXAMPLES / "customers.csv", tmp_path)
    failed = _etlc_test(
        str(tmp_path / "orders_by_country.test.json"), "--junit-xml", str(tmp_path / "bad.xml")
    )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    lines = failed.stdout.splitlines()
    assert lines[0].startswith(f"FAIL {tmp_path}/orders_by_country.test.json::revenue_per_country")
    assert lines[1] == (
        '    by_country: row country="DE" differs in revenue_with_vat: expected 120.07, got 120.06'
    )
    assert lines[3] == "2 test(s) in 1 file(s): 1 passed, 1 failed"
    kept = Path(lines[4].removeprefix("the runs' logs are under "))
    assert (kept / "spark-submit.log").is_file()
    shutil.rmtree(kept)
    (suite,) = ET.parse(tmp_path / "bad.xml").getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "0")
