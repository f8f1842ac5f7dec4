"""What reading the configuration through etlc's Scala classes adds to a driver's start-up.

Each round is two fresh spark-submits of a probe that starts as a generated driver does: the
environment file, then the SparkSession (the first thing any driver needs). One reads the file
and the definition through etlc's Scala classes (``jvm_config.load_environment`` and
``jvm_config.check_definition``, as every driver does); the other reads the file in Python
alone (``Environment.load``, as drivers did before). Each reports the time from the probe's
start to a ready session. What the classes add is the difference of the medians: the JVM work
a session pays anyway (the gateway's first calls, Jackson's classes, which Spark uses too) is
counted once, as in a real driver. The two kinds alternate, so drift in the machine's load
falls on both.

    python -m bench.startup [--rounds 7]
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
import time
t0 = time.perf_counter()
import json, sys
from pathlib import Path
from etlc.runtime import jvm_config
from etlc.runtime.environment import Environment, Settings
from pyspark.sql import SparkSession

env_file, definition_file, scala = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "scala"
if scala:
    env = jvm_config.load_environment(env_file, Settings())
    jvm_config.check_definition(json.loads(definition_file.read_text()), str(definition_file))
else:
    env = Environment.load(env_file, defaults=Settings())
t1 = time.perf_counter()
builder = SparkSession.builder.master("local[1]")
for key, value in env.spark_conf.items():
    builder = builder.config(key, value)
spark = builder.getOrCreate()
t2 = time.perf_counter()
spark.stop()
print("STARTUP " + json.dumps({"config": t1 - t0, "session_ready": t2 - t0}))
"""


def round_once(
    probe: Path, env_file: Path, definition: Path, jar: Path, reader: str
) -> dict[str, float]:
    environ = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    spark_submit = shutil.which("spark-submit", path=str(Path(sys.executable).parent))
    assert spark_submit, "spark-submit is not beside this Python (install pyspark)"
    command = [spark_submit, "--master", "local[1]", "--jars", str(jar), str(probe)]
    done = subprocess.run(
        [*command, str(env_file), str(definition), reader],
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
    parser.add_argument("--rounds", type=int, default=7, help="driver pairs (7)")
    args = parser.parse_args(argv)
    jar = next((ROOT / "jars").glob("etlc-jvm-*.jar"))
    env_file = ROOT / "pipelines" / "env" / "local.json"
    definition = ROOT / "pipelines" / "customer_revenue.json"
    rows: dict[str, list[dict[str, float]]] = {"scala": [], "python": []}
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.py"
        probe.write_text(PROBE, encoding="utf-8")
        for _ in range(args.rounds):
            for reader, runs in rows.items():  # alternating: the machine's drift hits both
                runs.append(round_once(probe, env_file, definition, jar, reader))
    ready = {}
    for reader, runs in rows.items():
        config = [r["config"] * 1000 for r in runs]
        ready[reader] = statistics.median(r["session_ready"] * 1000 for r in runs)
        print(
            f"{reader:7} configuration read: median {statistics.median(config):7.1f} ms; "
            f"session ready: median {ready[reader]:7.1f} ms"
        )
    print(f"added by the Scala classes: {ready['scala'] - ready['python']:+.1f} ms (medians)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
