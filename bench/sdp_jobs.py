"""How a benchmark runs the declarative peer: a Spark Declarative Pipelines project (pyspark's
``spark-pipelines run``) beside etlc's and the hand-written job, with the same Spark settings.

The project's definitions live under ``bench/sdp/<scenario>/``; each run copies them into its
work folder and writes the spec there (the source folder in its ``configuration``), so the
tables it makes land in that folder. Its time comes from the CLI's own log, from "Starting
run..." (the session up, the graph registered) to "Run is COMPLETED.", to the second: the CLI
logs no finer. Spark Connect runs the pipeline in a local server with every core (both here).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.jobs import BIN, SPARK_CONF, JobFailedError, submit, timed

PROJECTS = Path(__file__).resolve().parent / "sdp"
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d): (Starting run\.\.\.|Run is COMPLETED\.)$")
_FAILED = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d: (Run is FAILED|Run is CANCELED)")


def run_project(
    scenario: str, work: Path, conf: Mapping[str, str], *, name: str = "sdp"
) -> tuple[int, Path, dict[str, Any], list[dict[str, Any]], str]:
    """``spark-pipelines run`` of the scenario's project in ``work/name``; returns the exit
    code, the project's folder, the usage, the JSON log lines and the log's text."""
    home = work / name
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(PROJECTS / scenario, home)
    spec = {
        "name": scenario,
        "storage": (home / "storage").as_uri(),
        "configuration": dict(conf),
        "libraries": [{"glob": {"include": "transformations/**"}}],
    }
    # JSON is YAML: the spec's values are never parsed as YAML's own syntax.
    (home / "spark-pipeline.yml").write_text(json.dumps(spec, indent=2), encoding="utf-8")
    # The same settings as the other jobs', to the launcher. Its tables land in the folder's
    # spark-warehouse/ (it runs there).
    args = [str(BIN / "spark-pipelines")]
    args += [a for k, v in SPARK_CONF.items() for a in ("--conf", f"{k}={v}")]
    args += ["run", "--spec", str(home / "spark-pipeline.yml")]
    log = work / f"{name}.log"
    code, usage, events = submit(args, log, cwd=home)
    return code, home, usage, events, log.read_text(encoding="utf-8", errors="replace")


def sdp_job(
    scenario: str, work: Path, records: int, conf: Mapping[str, str], *, name: str = "sdp"
) -> dict[str, Any]:
    """The scenario's SDP project run over ``records`` records, timed by its own log."""
    code, _, usage, _, text = run_project(scenario, work, conf, name=name)
    stamps = {}
    for line in text.splitlines():
        found = _STAMP.match(line.strip())
        if found:
            stamps[found.group(2)] = datetime.fromisoformat(found.group(1))
    if code != 0 or len(stamps) != 2 or any(_FAILED.match(x) for x in text.splitlines()):
        raise JobFailedError(f"the SDP job {name} failed ({code}); see {work / f'{name}.log'}")
    seconds = (stamps["Run is COMPLETED."] - stamps["Starting run..."]).total_seconds()
    return timed(name, max(seconds, 1.0), records) | usage
