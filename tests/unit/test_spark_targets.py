"""The Spark line a driver is compiled for: its jars, what it refuses, and the driver's check."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from etlc.cli import app
from etlc.dsl import resources
from etlc.dsl.checker import check_file, default_options
from etlc.jars import all_artifacts, read_checksums
from etlc.project import ProjectError, find_project
from etlc.runtime.driver import check_spark_line
from etlc.runtime.errors import ConfigurationError
from etlc.spark_targets import TARGETS, line_of, spark_target, target_problem

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_a_line_is_named_by_major_and_minor_only() -> None:
    assert [target_problem(line) for line in TARGETS] == [None] * len(TARGETS)
    assert target_problem("3.5.7") == (
        "name the Spark line, not a release: `3.5` (etlc compiles for 3.5, 4.0, 4.1, 4.2)"
    )
    assert target_problem("3.4") == "etlc compiles drivers for Spark 3.5, 4.0, 4.1, 4.2, not `3.4`"
    with pytest.raises(ValueError, match=r"not `2\.4`"):
        spark_target("2.4")
    assert [line_of(v) for v in ("3.5.7", "4.1.0-SNAPSHOT", "4.2")] == ["3.5", "4.1", "4.2"]


@pytest.mark.parametrize("line", list(TARGETS))
def test_every_jar_of_every_line_is_pinned_and_built_for_its_scala(line: str) -> None:
    target = TARGETS[line]
    artifacts = all_artifacts(target)
    pins = read_checksums(resources.jar_checksums_path())
    assert {a.jar_name for a in artifacts} <= set(pins)
    scala_built = [a for a in artifacts if "_2." in a.artifact]
    assert scala_built and all(a.artifact.endswith(f"_{target.scala}") for a in scala_built)
    spark = {
        a.artifact.split("_")[0]: a.version for a in artifacts if a.group == "org.apache.spark"
    }
    # spark-hadoop-cloud may come from another release (4.2 has none), and a patched module
    # from a later patch release of the line.
    patched = dict(target.patched)
    others = {k: v for k, v in spark.items() if k != "spark-hadoop-cloud"}
    assert others == {k: patched.get(k, target.release) for k in others}
    assert {line_of(v) for v in others.values()} == {line}
    hadoop_aws = [a for a in artifacts if a.artifact == "hadoop-aws"]
    assert [a.version for a in hadoop_aws] == [target.hadoop]


def test_a_kafka_pipeline_compiled_for_spark_3_5_takes_that_lines_jars() -> None:
    path = ROOT / "pipelines" / "orders_from_kafka.json"
    options = replace(default_options(path), spark=spark_target("3.5"))
    result = check_file(path, options)
    assert result.plan is not None, result.diagnostics
    assert result.plan.spark.line == "3.5"
    assert {a.coordinate for a in result.plan.artifacts} >= {
        "org.apache.spark:spark-avro_2.12:3.5.7",
        "org.apache.spark:spark-sql-kafka-0-10_2.12:3.5.7",
        "org.apache.kafka:kafka-clients:3.4.1",
        "org.apache.commons:commons-pool2:2.11.1",
    }


def test_delta_on_a_line_without_a_delta_release_is_refused_naming_the_line() -> None:
    # Every line etlc compiles for has a Delta release today; the refusal is what a line
    # without one gets, so the line is given none here.
    path = ROOT / "pipelines" / "orders_s3_delta_upsert.json"
    bare = replace(TARGETS["4.1"], delta=None, delta_note="none is built for Spark 4.1")
    result = check_file(path, replace(default_options(path), spark=bare))
    assert result.plan is None
    [refused] = [d for d in result.diagnostics if d.code == "E412"]
    assert refused.message == (
        "load `load_1_live`: Delta Lake has no release built for Spark 4.1 (none is built for "
        "Spark 4.1)"
    )
    assert refused.param("line") == "4.1"
    assert "3.5, 4.0, 4.2" in refused.hint
    text = path.read_text().splitlines()
    assert text[refused.span.line - 1][refused.span.col - 1 :].startswith('"delta"')


def test_the_project_file_names_the_line_and_a_release_is_refused_where_written(
    tmp_path: Path,
) -> None:
    (tmp_path / "etlc.toml").write_text('generated = "out"\nspark_version = "3.5"\n')
    assert find_project(tmp_path).spark_version == "3.5"
    (tmp_path / "etlc.toml").write_text('\nspark_version = "3.5.7"\n')
    with pytest.raises(ProjectError) as refused:
        find_project(tmp_path)
    assert (refused.value.line, refused.value.col) == (2, 1)
    assert "name the Spark line, not a release: `3.5`" in refused.value.message
    (tmp_path / "etlc.toml").write_text("spark_version = 3.5\n")
    with pytest.raises(ProjectError, match=r"must be a string, e\.g\. \"4\.2\""):
        find_project(tmp_path)


def test_compile_for_another_line_writes_it_into_the_driver_and_its_submit_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    out = tmp_path / "out"
    definition = "pipelines/orders_from_kafka.json"
    result = runner.invoke(app, ["compile", definition, "-o", str(out), "--spark-version", "3.5"])
    assert result.exit_code == 0, result.output
    driver = (out / "orders_from_kafka.py").read_text()
    assert 'spark_line="3.5",' in driver and "Compiled for Spark 3.5 (Scala 2.12)." in driver
    submit = (out / "orders_from_kafka.submit.sh").read_text()
    assert "org.apache.spark.spark-sql-kafka-0-10_2.12-3.5.7.jar" in submit
    assert "_2.13" not in submit


def test_an_unknown_spark_version_on_the_command_line_is_one_line(tmp_path: Path) -> None:
    for command in (["lint"], ["compile", "-o", str(tmp_path)], ["jars", "--dest", str(tmp_path)]):
        result = runner.invoke(app, [*command, "--spark-version", "2.4"])
        assert result.exit_code == 2, result.output
        assert result.output == (
            "error: --spark-version 2.4: etlc compiles drivers for Spark 3.5, 4.0, 4.1, 4.2, "
            "not `2.4`\n"
        )


def test_a_driver_on_another_spark_line_stops_before_any_jvm_names_the_fix() -> None:
    check_spark_line("4.2", "4.2.1")  # a patch release of the same line runs
    with pytest.raises(ConfigurationError) as refused:
        check_spark_line("4.2", "3.5.7")
    assert str(refused.value) == (
        "this driver was compiled for Spark 4.2 (its jars and etlc's JVM module are built for "
        "it), but runs on Spark 3.5.7: compile it for that line, `etlc compile --spark-version "
        "3.5` (or `spark_version` in etlc.toml)"
    )


def test_run_driver_reports_the_wrong_line_as_a_configuration_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from etlc.runtime.driver import run_driver

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ETLC_LOG_FORMAT", raising=False)

    def no_session(*_: object) -> None:
        raise AssertionError("the session must not start")

    code = run_driver(
        lambda env: None,  # type: ignore[arg-type,return-value]
        pipeline="tiny",
        mode="batch",
        max_retries=0,
        delay_seconds=0.0,
        argv=["--env-file", str(tmp_path / "missing.json")],
        session_factory=no_session,  # type: ignore[arg-type]
        spark_line="3.5",
        running="4.2.0",
    )
    assert code == 1
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    [finished] = [e for e in lines if e["event"] == "run_finished"]
    assert finished["error_kind"] == "configuration"
    assert finished["error"].startswith("this driver was compiled for Spark 3.5")


def test_a_value_that_is_no_version_is_not_repeated() -> None:
    assert target_problem("\x1b[2J4.2") == "etlc compiles drivers for Spark 3.5, 4.0, 4.1, 4.2"


def test_a_driver_on_a_line_etlc_does_not_compile_for_says_which_it_does() -> None:
    with pytest.raises(
        ConfigurationError, match=r"etlc compiles for Spark 3\.5, 4\.0, 4\.1, 4\.2$"
    ):
        check_spark_line("4.2", "3.4.1")


def test_etlc_test_refuses_a_local_pyspark_of_another_line_than_the_projects() -> None:
    from etlc.pipeline_testing import TestRunError, _check_local_spark

    _check_local_spark(spark_target())  # the venv's pyspark is the default line's
    with pytest.raises(TestRunError, match=r"compiles for Spark 3\.5 .* install pyspark 3\.5"):
        _check_local_spark(spark_target("3.5"))


def test_a_plugin_giving_its_jars_as_a_list_still_works() -> None:
    from etlc.plugins import MavenArtifact, PluginSpec

    jar = MavenArtifact("com.example", "x", "1")
    spec = PluginSpec("x", "extract", "m:X", artifacts=[jar])  # type: ignore[arg-type]
    assert spec.jars(spark_target("3.5")) == (jar,)
