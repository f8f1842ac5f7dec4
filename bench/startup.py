"""What reading the configuration through etlc's Scala classes adds to a driver's start-up.

Each round is a fresh spark-submit of a probe that does, on the driver, what a generated
driver does before its session: read the environment file through ``EnvironmentConfig``
(``jvm_config.load_environment``) and the definition through ``PipelineConfig``
(``jvm_config.check_definition``), both cold (the first use of the classes in that JVM); then,
for comparison, the Python-only reading the driver did before (``Environment.load``). The
added start-up time is the first two minus the third.

    python -m bench.startup [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json, sys, time
from pathlib import Path
from etlc.runtime import jvm_config
from etlc.runtime.environment import Environment, Settings
from pyspark import SparkContext

SparkContext._ensure_initialized()  # the gateway a driver finds already started
env_file, definition_file = Path(sys.argv[1]), Path(sys.argv[2])
definition = json.loads(definition_file.read_text())
t0 = time.perf_counter()
jvm_config.load_environment(env_file, Settings())
t1 = time.perf_counter()
jvm_config.check_definition(definition, str(definition_file))
t2 = time.perf_counter()
Environment.load(env_file, defaults=Settings())
t3 = time.perf_counter()
print("STARTUP " + json.dumps({"environment": t1 - t0, "definition": t2 - t1, "python": t3 - t2}))
"""


def round_once(probe: Path, env_file: Path, definition: Path, jar: Path) -> dict[str, float]:
    environ = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    spark_submit = shutil.which("spark-submit", path=str(Path(sys.executable).parent))
    assert spark_submit, "spark-submit is not beside this Python (install pyspark)"
    command = [spark_submit, "--master", "local[1]", "--jars", str(jar), str(probe)]
    done = subprocess.run(
        [*command, str(env_file), str(definition)],
        capture_output=True,
        text=True,
        env=environ,
        cwd=ROOT,
        timeout=300,
        check=True,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("STARTUP "))
    times: dict[str, float] = json.loads(line.removeprefix("STARTUP "))
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="fresh driver processes (5)")
    args = parser.parse_args(argv)
    jar = next((ROOT / "jars").glob("etlc-jvm-*.jar"))
    env_file = ROOT / "pipelines" / "env" / "local.json"
    definition = ROOT / "pipelines" / "customer_revenue.json"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.py"
        probe.write_text(PROBE, encoding="utf-8")
        for _ in range(args.rounds):
            rows.append(round_once(probe, env_file, definition, jar))
    added = [(r["environment"] + r["definition"] - r["python"]) * 1000 for r in rows]
    for key in ("environment", "definition", "python"):
        values = [r[key] * 1000 for r in rows]
        print(f"{key:12} median {statistics.median(values):7.1f} ms  max {max(values):7.1f} ms")
    print(f"{'added':12} median {statistics.median(added):7.1f} ms  max {max(added):7.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
