"""How a benchmark runs a job: etlc's compiled driver or a hand-written script, each through
spark-submit on ``local[2]`` with the same Spark settings, sampled from /proc while it runs.

A job's time is measured inside the job, with its SparkSession already up (etlc's
``run_finished.duration_ms``; the hand-written script's ``handwritten_finished.seconds``), so
JVM start-up is reported apart, as the wall time of the whole spark-submit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.procstat import Sampler, ServiceSamplers
from etlc.cli import local_submit_env
from etlc.codegen.render import STAGE_LISTENER, jvm_jar_name
from etlc.dsl.checker import check_file
from etlc.plugins import MavenArtifact

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
JARS = ROOT / "jars"
SPARK_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.memory": "4g",
}


class JobFailedError(RuntimeError):
    pass


def compile_pipeline(definition: Path, out: Path) -> Path:
    """The definition compiled into ``out``; returns its generated submit script."""
    done = subprocess.run(
        [str(BIN / "etlc"), "compile", str(definition), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise JobFailedError(f"etlc compile {definition} failed:\n{done.stderr}")
    return out / f"{definition.stem}.submit.sh"


def artifacts(definition: Path) -> tuple[MavenArtifact, ...]:
    """The jars etlc ships with this pipeline: a hand-written job gets the same ones."""
    plan = check_file(definition).plan
    if plan is None:
        raise JobFailedError(f"{definition} does not compile")
    return plan.artifacts


def submit(
    args: Sequence[str],
    log: Path,
    extra_env: Mapping[str, str] | None = None,
    *,
    cwd: Path = ROOT,
) -> tuple[int, dict[str, Any], list[dict[str, Any]]]:
    """Run ``args`` in ``cwd``, sampling its process tree and the local services'; returns
    the exit code, the usage (the job's, and each service's CPU under ``services_cpu_pct``)
    and the JSON log lines."""
    environ = local_submit_env("local[2]", "local")
    environ.update(ETLC_JARS_DIR=str(JARS), SPARK_LOCAL_IP="127.0.0.1", **(extra_env or {}))
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(args, cwd=cwd, env=environ, stdout=out, stderr=subprocess.STDOUT)
        sampler = Sampler(proc.pid).start()
        around = ServiceSamplers().start()
        code = proc.wait()
    usage: dict[str, Any] = sampler.stop() | {"wall_s": round(time.monotonic() - started, 2)}
    busy = {name: u.get("cpu_avg_pct") for name, u in around.stop().items()}
    usage["services_cpu_pct"] = {name: pct for name, pct in sorted(busy.items()) if pct}
    found = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return code, usage, found


def etlc_job(
    name: str,
    script: Path,
    env: Mapping[str, Any],
    work: Path,
    records: int,
    *,
    extra_env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Submit an etlc driver with the environment file ``env``; ``records`` is what its
    extracts must have read (checked against the run's own metrics)."""
    env_file = work / f"{name}.env.json"
    env_file.write_text(json.dumps(env), encoding="utf-8")
    log = work / f"{name}.log"
    code, usage, events = submit(["bash", str(script), "--env-file", str(env_file)], log, extra_env)
    finished = [e for e in events if e.get("event") == "run_finished"]
    if code != 0 or not finished:
        raise JobFailedError(f"{name} failed ({code}); see {log}")
    report = finished[-1]
    seconds = report["duration_ms"] / 1000
    read = sum(s["records_in"] for s in report["steps"] if s["stage"] == "extract")
    if read != records:
        raise JobFailedError(f"{name} read {read} records, expected {records}; see {log}")
    return timed(name, seconds, records) | {"steps": report["steps"]} | stages(events) | usage


def handwritten_job(
    name: str,
    script: Path,
    script_args: Sequence[str],
    work: Path,
    records: int,
    *,
    jars: Sequence[MavenArtifact] = (),
    extra_env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """spark-submit a plain PySpark script with the same conf and jars; it prints one
    ``handwritten_finished`` JSON line with its seconds."""
    # etlc's stage listener on the hand-written job too: both sides log the same stage lines.
    listener = {"spark.extraListeners": STAGE_LISTENER}
    conf = [a for k, v in (SPARK_CONF | listener).items() for a in ("--conf", f"{k}={v}")]
    paths = [JARS / jvm_jar_name(), *(JARS / a.jar_name for a in jars)]
    shipped = ["--jars", ",".join(str(p) for p in paths)]
    args = [str(BIN / "spark-submit"), "--master", "local[2]", *conf, *shipped, str(script)]
    log = work / f"{name}.log"
    code, usage, events = submit([*args, *script_args], log, extra_env)
    done = [e for e in events if e.get("event") == "handwritten_finished"]
    if code != 0 or not done:
        raise JobFailedError(f"the hand-written job {name} failed ({code}); see {log}")
    # A script may time its parts too ("<part>_s"), e.g. each target of a two-target load.
    parts = {k: round(v, 2) for k, v in done[-1].items() if k.endswith("_s")}
    return timed(name, float(done[-1]["seconds"]), records) | parts | stages(events) | usage


def stages(events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What the Spark stages of a job spent, summed from the stage listener's lines: where
    the time of one job went against another's."""
    lines = [e for e in events if e.get("event") == "spark_stage_completed"]
    keys = ("executor_run_time_ms", "executor_cpu_time_ms", "jvm_gc_time_ms")
    totals = {k: sum(int(e.get(k, 0)) for e in lines) for k in keys}
    slowest = sorted(lines, key=lambda e: -int(e.get("duration_ms", 0)))[:3]
    return {
        "stages": len(lines),
        **{f"stages_{k}": v for k, v in totals.items()},
        "slowest_stages": [
            {"name": e.get("stage_name"), "ms": e.get("duration_ms")} for e in slowest
        ],
    }


def timed(name: str, seconds: float, records: int) -> dict[str, Any]:
    return {"job": name, "seconds": round(seconds, 2), "records_per_s": round(records / seconds)}


def comparison(jobs: Sequence[Mapping[str, Any]], etlc: str = "etlc") -> dict[str, float | None]:
    """etlc / hand-written and the Avro boundary's cost, from one run's jobs."""
    by = {j["job"]: j for j in jobs}

    def ratio(a: str, b: str) -> float | None:
        return round(by[a]["seconds"] / by[b]["seconds"], 3) if a in by and b in by else None

    boundary = ratio(etlc, f"{etlc}_no_avro_boundary")
    floor = ratio("floor", etlc)  # etlc's records/s as a fraction of the floor's
    sdp = ratio(etlc, "sdp")
    return {
        "etlc_over_handwritten": ratio(etlc, "handwritten"),
        "avro_boundary_cost": None if boundary is None else round(boundary - 1, 3),
        **({} if floor is None else {"etlc_of_floor": floor}),
        **({} if sdp is None else {"etlc_over_sdp": sdp}),
    }
