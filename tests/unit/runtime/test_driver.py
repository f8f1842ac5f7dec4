"""run_driver in process: arguments, environment, faults, the final report and exit codes."""

from __future__ import annotations

import functools
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from etlc.connectors.files import FilesExtractor, FilesLoader
from etlc.runtime import driver, jvm_config
from etlc.runtime.environment import Environment, Settings
from etlc.runtime.errors import ConfigurationError, TransientError
from etlc.runtime.graph import DatasetSchema, ExtractStep, LoadStep, PipelineGraph
from etlc.runtime.logs import RunContext
from etlc.runtime.report import RunReport, Status, StepMetrics
from etlc.runtime.session import ATTEMPT_PROPERTY
from tests import faults

SCHEMA = DatasetSchema(
    {"type": "record", "name": "r", "fields": [{"name": "id", "type": "long"}]}, "`id` BIGINT"
)


def build(env: Environment) -> PipelineGraph:
    return PipelineGraph(
        "tiny",
        (
            ExtractStep(
                "src",
                FilesExtractor(env.interpolate("${src}"), "csv", SCHEMA, {"header": "true"}),
                SCHEMA,
                (("not_null:id", "`id` IS NOT NULL"),),
            ),
        ),
        (),
        (LoadStep("out", "src", FilesLoader(env.interpolate("${out}"), "json"), "append"),),
    )


class Captured:
    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def getvalue(self) -> str:
        return self.capsys.readouterr().out


@pytest.fixture
def stdout(capsys: pytest.CaptureFixture[str]) -> Captured:
    return Captured(capsys)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runs folder's default is relative: the drivers here run in a folder of their own."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ETLC_LOG_FORMAT", raising=False)


def env_file(tmp_path: Path, src: Path) -> Path:
    path = tmp_path / "env.json"
    path.write_text(
        json.dumps(
            {
                "variables": {"src": str(src), "out": str(tmp_path / "out")},
                "etlc": {"stage_dir": str(tmp_path / "stage")},
            }
        )
    )
    return path


def run(spark: Any, argv: list[str], retries: int = 0, wrap: driver.Wrap | None = None) -> int:
    return driver.run_driver(
        build,
        pipeline="tiny",
        mode="batch",
        max_retries=retries,
        delay_seconds=0.0,
        argv=argv,
        session_factory=lambda name, env, context: spark,
        wrap=wrap,
    )


def events(stream: Captured) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


def test_a_successful_run_exits_zero_and_reports(
    spark: Any, tmp_path: Path, stdout: Captured
) -> None:
    src = tmp_path / "in.csv"
    src.write_text("id\n1\n2\n")
    assert run(spark, ["--env-file", str(env_file(tmp_path, src)), "--run-id", "abc"]) == 0
    finished = events(stdout)[-1]
    assert (finished["event"], finished["status"], finished["run_id"]) == (
        "run_finished",
        "SUCCESS",
        "abc",
    )
    assert {s["step"]: s["records_out"] for s in finished["steps"]} == {"src": 2, "out": 2}


def test_validation_failure_exits_two(spark: Any, tmp_path: Path, stdout: Captured) -> None:
    src = tmp_path / "in.csv"
    src.write_text("id\n1\nx\n")
    assert run(spark, ["--env-file", str(env_file(tmp_path, src))], retries=3) == 2
    names = [e["event"] for e in events(stdout)]
    assert names.count("attempt_started") == 1 and "validation_failed" in names


def test_injected_faults_are_retried(
    spark: Any, tmp_path: Path, stdout: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "in.csv"
    src.write_text("id\n1\n")
    flaky = functools.partial(faults.inject, spec="extract:src:1")
    assert run(spark, ["--env-file", str(env_file(tmp_path, src))], retries=1, wrap=flaky) == 0
    failed = [e for e in events(stdout) if e["event"] == "attempt_failed"]
    assert [(e["attempt"], e["error_kind"]) for e in failed] == [(1, "transient")]
    # Spark jobs carry the attempt they ran in, for the JVM stage metrics listener.
    assert spark.sparkContext.getLocalProperty(ATTEMPT_PROPERTY) == "2"


def python_environment(path: Path, defaults: Settings) -> Environment:
    """The environment file read by the Python side alone: no JVM for tests without Spark."""
    return Environment.load(path, defaults=defaults)


def run_without_spark(argv: list[str], mode: str = "batch") -> int:
    """``run_driver`` with a session factory that fails the test if Spark is started."""

    def no_spark(name: str, env: Environment, context: RunContext) -> Any:
        raise AssertionError("Spark must not start")

    return driver.run_driver(
        build,
        pipeline="tiny",
        mode=mode,
        max_retries=3,
        delay_seconds=5.0,
        argv=argv,
        session_factory=no_spark,
        load_environment=python_environment,
    )


def test_missing_environment_file_exits_one_before_spark(tmp_path: Path, stdout: Captured) -> None:
    code = run_without_spark(["--env", "nope"])
    assert code == 1
    last = events(stdout)[-1]
    assert last["error_kind"] == "configuration" and "pipelines/env/nope.json" in last["error"]


@pytest.mark.parametrize(("value", "said"), [("0 seconds", "longer than 0"), ("soon", "duration")])
def test_a_stream_with_a_bad_retry_reset_exits_one_before_spark(
    tmp_path: Path, stdout: Captured, value: str, said: str
) -> None:
    path = tmp_path / "env.json"
    path.write_text(json.dumps({"etlc": {"retry_reset_after": value}}))
    code = run_without_spark(["--env-file", str(path)], mode="streaming")
    assert code == 1
    last = events(stdout)[-1]
    assert last["error_kind"] == "configuration" and said in last["error"], last
    assert f"{path}: `etlc.retry_reset_after`" in last["error"]


def test_fault_spec_must_be_well_formed() -> None:
    graph = PipelineGraph("g", (), (), ())
    assert faults.inject(graph, None) is graph
    with pytest.raises(ConfigurationError, match="extract:<step>:<count>"):
        faults.inject(graph, "load:x:1")
    with pytest.raises(ConfigurationError, match="no extract step"):
        faults.inject(graph, "extract:x:1")
    with pytest.raises(ConfigurationError, match="no load step"):
        faults.inject(graph, "crash-after-commit:x:1")


def test_a_crash_can_only_follow_a_marked_commit() -> None:
    from etlc.connectors.files import FilesLoader
    from etlc.runtime.graph import LoadStep

    graph = PipelineGraph("g", (), (), (LoadStep("out", "x", FilesLoader("/o", "json"), "append"),))
    with pytest.raises(ConfigurationError, match="does not commit batches with markers"):
        faults.inject(graph, "crash-after-commit:out:3")


def test_flaky_extractor_fails_then_delegates() -> None:
    class Inner(FilesExtractor):
        def __init__(self) -> None:
            self.calls = 0

        def describe(self) -> dict[str, Any]:
            return {"system": "inner"}

        def extract(self, spark: Any) -> Any:
            self.calls += 1
            return "frame"

    inner = Inner()
    flaky = faults.FlakyExtractor(inner, 2)
    for _ in range(2):
        with pytest.raises(TransientError):
            flaky.extract(None)  # type: ignore[arg-type]
    assert flaky.extract(None) == "frame"  # type: ignore[arg-type]
    assert flaky.describe() == {"system": "inner"} and inner.calls == 1


def test_report_exit_codes_and_log_shape() -> None:
    ok = RunReport("p", "r", Status.SUCCESS, steps=[StepMetrics("s", "extract", 1, 1)])
    assert ok.exit_code == 0 and ok.as_log()["steps"] == [
        {"step": "s", "stage": "extract", "records_in": 1, "records_out": 1}
    ]
    partial = RunReport("p", "r", Status.PARTIAL)
    assert partial.exit_code == 3
    failed = RunReport("p", "r", Status.FAILED, error=TransientError("down", "s"))
    assert failed.exit_code == 1
    assert (
        failed.as_log()["error"] == "step `s`: down"
        and failed.as_log()["error_kind"] == "transient"
    )


def test_the_session_never_substitutes_variables_in_sql_text(spark: Any, tmp_path: Path) -> None:
    # `'${env:...}'` in an expression would otherwise read the driver's environment (and
    # `${spark.hadoop...}` its secrets) into the data the pipeline writes.
    from pyspark.sql import functions as F

    from etlc.runtime.session import create_session

    conf = {"spark.sql.variable.substitute": "true"}
    env = Environment("test", plain_env(tmp_path), spark_conf=conf)
    session = create_session("etlc-test", env, RunContext("tiny"))
    assert session is spark  # the test session, as getOrCreate returns it
    [row] = session.range(1).select(F.expr("'${env:HOME}'").alias("text")).collect()
    assert row.text == "${env:HOME}"


def test_a_setting_the_driver_was_launched_with_is_not_set_again_from_the_environment(
    spark: Any, tmp_path: Path
) -> None:
    """spark-submit's --conf (the submit command's copy of the environment file's settings,
    then the user's own) ends up as the JVM's system properties; those win."""
    from etlc.runtime.session import create_session, launch_conf_keys

    system = spark.sparkContext._jvm.java.lang.System
    system.setProperty("spark.etlc.test.launched", "from-the-command-line")
    try:
        assert "spark.etlc.test.launched" in launch_conf_keys()
        conf = {"spark.etlc.test.launched": "from-the-file", "spark.etlc.test.other": "file"}
        session = create_session(
            "etlc-test", Environment("t", plain_env(tmp_path), spark_conf=conf), RunContext("t")
        )
        assert session.conf.get("spark.etlc.test.launched", None) is None  # left as launched
        assert session.conf.get("spark.etlc.test.other") == "file"
    finally:
        system.clearProperty("spark.etlc.test.launched")
        spark.conf.unset("spark.etlc.test.other")


def test_the_session_quiets_spark_lines_that_repeat_etlcs_own(spark: Any, tmp_path: Path) -> None:
    from etlc.runtime.session import QUIET_LOGGERS, create_session

    create_session("etlc-test", Environment("t", plain_env(tmp_path)), RunContext("t"))
    manager = spark.sparkContext._jvm.org.apache.logging.log4j.LogManager
    for name, level in QUIET_LOGGERS:
        assert str(manager.getLogger(name).getLevel()) == level, name
    # Not Spark's other lines: a stage failure's own logger keeps the session's level.
    assert str(manager.getLogger("org.apache.spark.scheduler.TaskSetManager").getLevel()) == "WARN"


def plain_env(tmp_path: Path, doc: Any = None) -> str:
    """An environment file on disk: the session has etlc's Scala classes read it first."""
    path = tmp_path / "t.json"
    path.write_text(json.dumps({} if doc is None else doc), encoding="utf-8")
    return str(path)


# A complete PostgreSQL profile but for its port.
WAREHOUSE = {"system": "postgres", "host": "h", "database": "d", "user": "u"} | {
    "password": "vault://db#password"
}


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        (
            {"connections": {"warehouse": {"system": "postgres", "port": "5432"}}},
            '$.connections.warehouse: missing required key "host"',
        ),
        (
            {"connections": {"w": {**WAREHOUSE, "port": 70000}}},
            "$.connections.w.port: must be at most 65535",
        ),
        (
            {"connections": {"w": {**WAREHOUSE, "port": True}}},
            "$.connections.w.port: expected integer or string, got boolean",
        ),
        ({"etlc": {"sample_size": "20"}}, "$.etlc.sample_size: expected integer, got string"),
        ({"vault": {"backend": "hadoop"}}, '$.vault: missing required key "provider_path"'),
        (
            {"connections": {"w": {"system": "hunter2-pasted-here"}}},
            "$.connections.w.system: not a known connection system",
        ),
        (
            {"connections": {"lake": {"system": "s3", "bucket": "b"}}},
            '$.connections.lake: unknown key "bucket"',
        ),
    ],
)
def test_a_file_the_scala_classes_refuse_stops_before_the_session(
    spark: Any, tmp_path: Path, doc: Any, where: str
) -> None:
    path = plain_env(tmp_path, doc)
    with pytest.raises(ConfigurationError) as refused:
        jvm_config.load_environment(Path(path), Settings())
    assert str(refused.value).startswith(f"{path}: {where}")
    # A value in the wrong place may be a secret: no message shows one.
    assert "5432" not in str(refused.value) and "hunter2" not in str(refused.value)


def test_without_etlcs_jvm_module_the_driver_says_how_to_submit(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyspark import SparkContext

    nowhere = spark.sparkContext._jvm.no.such.package  # what py4j makes of an unknown name

    class NoModule:
        def __getattr__(self, name: str) -> Any:
            return getattr(nowhere, name)

    monkeypatch.setattr(SparkContext, "_jvm", NoModule())
    with pytest.raises(ConfigurationError, match="etlc-jvm\\) is not on the driver's class path"):
        jvm_config.read_environment(Path(plain_env(tmp_path)))
    with pytest.raises(ConfigurationError, match=r"missing\.json not found"):
        jvm_config.read_environment(tmp_path / "missing.json")
    (tmp_path / "folder.json").mkdir()
    with pytest.raises(ConfigurationError, match=r"folder\.json: cannot read"):
        jvm_config.read_environment(tmp_path / "folder.json")


def test_the_driver_takes_its_environment_from_the_scala_classes_reading(
    spark: Any, tmp_path: Path
) -> None:
    doc = {
        "variables": {"n": 5, "on": True, "pw": "vault://db#password"},
        "etlc": {"sample_size": 3},
        "vault": {"backend": "env"},
        "connections": {
            "w": {**WAREHOUSE, "port": "5433"},
            "k": {"system": "kafka", "bootstrap_servers": "b:9092"},
        },
    }
    project = Settings(stage_dir="tmp/stage", checkpoint_dir="tmp/checkpoints")
    env = jvm_config.load_environment(Path(plain_env(tmp_path, doc)), project)
    assert env.variables == {"n": "5", "on": "true", "pw": "vault://db#password"}
    # The schema's defaults, filled in by the classes; the project's folders where it has none.
    assert env.settings == replace(project, sample_size=3)
    assert env.profiles["k"] == {
        "system": "kafka",
        "bootstrap_servers": "b:9092",
        "security_protocol": "PLAINTEXT",
        "properties": {},
    }
    assert env.profiles["w"]["port"] == "5433"
    assert env.vault.kind == "env" and env.vault.prefix == "ETLC_SECRET_"  # type: ignore[attr-defined]
    assert jvm_config.present({"a": [{"b": None, "c": 1}], "d": None}) == {"a": [{"c": 1}]}


def test_a_driver_whose_environment_the_scala_classes_refuse_exits_1_before_any_job(
    spark: Any, tmp_path: Path, stdout: Captured
) -> None:
    from etlc.runtime.session import create_session

    path = plain_env(tmp_path, {"connections": {"warehouse": {**WAREHOUSE, "port": 0}}})
    tracker = spark.sparkContext.statusTracker()
    jobs = set(tracker.getJobIdsForGroup())
    code = driver.run_driver(
        build,
        pipeline="tiny",
        mode="batch",
        max_retries=0,
        delay_seconds=0.0,
        argv=["--env-file", path],
        session_factory=create_session,
    )
    assert code == 1
    [finished] = [e for e in events(stdout) if e["event"] == "run_finished"]
    assert finished["status"] == "FAILED"
    assert finished["error"] == f"{path}: $.connections.warehouse.port: must be at least 1"
    assert set(tracker.getJobIdsForGroup()) == jobs


def test_a_definition_the_scala_classes_refuse_stops_the_driver_before_its_session(
    spark: Any, tmp_path: Path, stdout: Captured
) -> None:
    """What a driver edited by hand, or compiled by another etlc than its jar's, would hand
    over: the run ends with the definition's file and JSON path, and no session is made."""
    definition = {
        "name": "tiny",
        "extract": [
            {"id": "a", "type": "files", "path": "/in", "format": "csv", "schema": "a.avsc"}
        ],
        "load": [{"input": "a", "type": "files", "path": "/out", "format": "csv", "mode": "merge"}],
    }

    def no_session(name: str, env: Environment, context: RunContext) -> Any:
        raise AssertionError("the session must not start")

    code = driver.run_driver(
        build,
        pipeline="tiny",
        mode="batch",
        max_retries=0,
        delay_seconds=0.0,
        argv=["--env-file", plain_env(tmp_path)],
        session_factory=no_session,
        definition=definition,
        definition_file="pipelines/tiny.json",
    )
    assert code == 1
    [finished] = [e for e in events(stdout) if e["event"] == "run_finished"]
    assert finished["error"] == (
        'pipelines/tiny.json: $.load[0].mode: expected one of ["append","overwrite","upsert"]'
    )
    assert finished["error_kind"] == "configuration"
    definition["load"][0]["mode"] = "append"  # type: ignore[index]
    jvm_config.check_definition(definition, "pipelines/tiny.json")


def test_a_run_for_a_person_prints_text_and_keeps_its_json_lines_and_results(
    spark: Any, tmp_path: Path, stdout: Captured
) -> None:
    src = tmp_path / "in.csv"
    src.write_text("id\n1\n2\n")
    argv = ["--env-file", str(env_file(tmp_path, src)), "--run-id", "r-1", "--log-format", "text"]
    assert run(spark, argv) == 0
    shown = stdout.getvalue().splitlines()
    assert not [line for line in shown if line.startswith("{")]
    assert shown[0].endswith("run r-1 of tiny started: batch, env env")
    # The status, then the table: header, rule, a row per step, rule.
    assert " run SUCCESS in " in shown[-6] and shown[-6].endswith(", 1 attempt, exit code 0")
    assert shown[-5].split() == ["step", "stage", "rows", "in", "rows", "out", "time"]
    assert [line.split()[:4] for line in shown[-3:-1]] == [
        ["src", "extract", "2", "2"],
        ["out", "load", "2", "2"],
    ]
    # The relative default runs folder, in the folder the driver ran in.
    runs = tmp_path / ".etlc" / "runs" / "tiny"
    lines = [json.loads(line) for line in (runs / "r-1.jsonl").read_text().splitlines()]
    # The lineage events are in the run's file, though not on the terminal.
    assert [e["event"] for e in lines][:3] == ["run_started", "openlineage", "attempt_started"]
    assert lines[-1]["event"] == "run_finished" and lines[-1]["status"] == "SUCCESS"
    results = json.loads((runs / "r-1.json").read_text())
    assert (results["status"], results["exit_code"], results["env"]) == ("SUCCESS", 0, "env")
    assert {s["step"]: s["records_out"] for s in results["steps"]} == {"src": 2, "out": 2}


def test_json_lines_are_the_default_away_from_a_terminal(
    tmp_path: Path, stdout: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert driver.text_console("auto") is False  # pytest captures stdout
    assert driver.text_console("text") and not driver.text_console("json")
    monkeypatch.setenv("ETLC_LOG_FORMAT", "text")
    assert driver.parse_args("tiny", []).log_format == "text"
    monkeypatch.setenv("ETLC_LOG_FORMAT", "yaml")
    with pytest.raises(SystemExit) as exited:
        driver.parse_args("tiny", [])
    assert exited.value.code == 1  # failed: 2 would say records failed validation


@pytest.mark.parametrize("run_id", ["../../outside", "a/b", ".x", "a:b"])
def test_a_run_id_that_is_not_a_name_ends_the_run_before_anything_is_made(
    tmp_path: Path, stdout: Captured, run_id: str
) -> None:
    path = tmp_path / "env.json"
    path.write_text(json.dumps({"etlc": {"stage_dir": str(tmp_path / "stage")}}))
    assert run_without_spark(["--env-file", str(path), "--run-id", run_id]) == 1
    [finished] = events(stdout)
    assert finished["event"] == "run_finished" and finished["error_kind"] == "configuration"
    assert "letters, digits" in finished["error"] and finished["run_id"] != run_id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["env.json"]


def test_a_runs_folder_that_cannot_be_made_costs_the_files_not_the_run(
    tmp_path: Path, stdout: Captured
) -> None:
    (tmp_path / "taken").write_text("a file where the folder would go")
    path = tmp_path / "env.json"
    path.write_text(json.dumps({"etlc": {"runs_dir": "taken", "retry_reset_after": "soon"}}))
    assert run_without_spark(["--env-file", str(path)], mode="streaming") == 1
    unavailable, finished = events(stdout)
    assert (unavailable["event"], unavailable["runs_dir"]) == ("run_files_unavailable", "taken")
    assert finished["event"] == "run_finished" and "duration" in finished["error"]
    # A failure after the environment was read still leaves its results.
    path.write_text(json.dumps({"etlc": {"retry_reset_after": "soon"}}))
    assert run_without_spark(["--env-file", str(path), "--run-id", "r"], mode="streaming") == 1
    results = json.loads((tmp_path / ".etlc" / "runs" / "tiny" / "r.json").read_text())
    assert (results["status"], results["error_kind"], results["mode"]) == (
        "FAILED",
        "configuration",
        "streaming",
    )


@pytest.mark.parametrize(
    ("argv", "mode", "says"),
    [
        (["--extract", "orders"], "batch", "--extract, --load and --to go with --state reset"),
        (
            ["--state", "show", "--to", "5"],
            "batch",
            "--extract, --load and --to go with --state reset",
        ),
        (["--state", "show", "--full-refresh"], "batch", "--full-refresh is for a batch run"),
        (["--full-refresh"], "streaming", "a stream resumes from its checkpoint"),
    ],
)
def test_incremental_options_that_do_not_go_together_fail_the_run(
    argv: list[str], mode: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        driver.parse_args("tiny", argv, mode=mode)
    assert exited.value.code == 1
    assert says in capsys.readouterr().err


def test_a_full_refresh_and_a_reset_parse_for_a_batch() -> None:
    args = driver.parse_args("tiny", ["--full-refresh"])
    assert args.full_refresh and args.state is None
    args = driver.parse_args("tiny", ["--state", "reset", "--extract", "orders", "--to", "7"])
    assert (args.state, args.extract, args.to, args.full_refresh) == ("reset", "orders", "7", False)


def test_a_state_run_reads_no_source_and_ends_like_a_run(
    spark: Any, tmp_path: Path, stdout: Captured
) -> None:
    src = tmp_path / "in.csv"
    src.write_text("id\n1\n2\n")
    argv = ["--env-file", str(env_file(tmp_path, src)), "--run-id", "s-1", "--state", "show"]
    assert run(spark, argv) == 0
    said = [e["event"] for e in events(stdout)]
    assert said == ["run_started", "incremental_position", "run_finished"]
    assert not (tmp_path / "out").exists()
    results = json.loads((tmp_path / ".etlc" / "runs" / "tiny" / "s-1.json").read_text())
    assert (results["status"], results["exit_code"], results["mode"]) == (
        "SUCCESS",
        0,
        "state show",
    )
