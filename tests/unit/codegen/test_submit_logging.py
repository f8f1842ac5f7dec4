"""The submit script's choice of Spark's logging: etlc's WARN configuration for the JVM it
starts, unless a log4j configuration is chosen already."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from etlc.codegen.render import LOG_CONFIG_NAME, jvm_jar_name, render
from etlc.dsl.checker import check_file, default_options

ROOT = Path(__file__).resolve().parents[3]


def submit(folder: Path, **environ: str) -> str:
    """Compile filter_orders into ``folder``, run its submit script against a stand-in
    spark-submit, and return the LOG4J_CONFIGURATION_FILE that spark-submit was given."""
    definition = ROOT / "pipelines" / "filter_orders.json"
    result = check_file(definition, default_options(definition))
    assert result.plan is not None
    folder.mkdir(parents=True, exist_ok=True)
    for out in render(result.plan, folder):
        out.path.write_bytes(out.content)
    script = folder / "filter_orders.submit.sh"
    jars = folder / "jars"
    jars.mkdir(exist_ok=True)
    (jars / jvm_jar_name()).write_bytes(b"")
    record = folder / "seen"
    stand_in = folder / "spark-submit"
    stand_in.write_text('#!/bin/bash\nprintf "%s" "${LOG4J_CONFIGURATION_FILE-unset}" > "$SEEN"\n')
    stand_in.chmod(0o755)
    env_file = folder / "env.json"
    env_file.write_text(json.dumps({}), encoding="utf-8")
    base = {
        "PATH": "/usr/bin:/bin",
        "ETLC_JARS_DIR": str(jars),
        "SPARK_SUBMIT": str(stand_in),
        "SEEN": str(record),
        "ETLC_ENV_FILE": str(env_file),
    }
    done = subprocess.run(
        ["bash", str(script)], env={**base, **environ}, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return record.read_text()


def test_the_compiled_configuration_is_spark_submits_by_default(tmp_path: Path) -> None:
    seen = submit(tmp_path / "gen")
    assert seen == str(tmp_path / "gen" / LOG_CONFIG_NAME)
    text = Path(seen).read_text()
    assert "rootLogger.level = warn" in text
    assert "FileStreamSink" in text  # the glob probe's stack trace
    # spark-submit still says which application it submitted, and how it goes.
    assert "logger.yarnclient.name = org.apache.spark.deploy.yarn.Client" in text


def test_a_configuration_chosen_already_is_kept(tmp_path: Path) -> None:
    assert submit(tmp_path / "a", LOG4J_CONFIGURATION_FILE="/etc/mine.xml") == "/etc/mine.xml"
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "log4j2.properties").write_text("rootLogger.level = info\n")
    assert submit(tmp_path / "b", SPARK_CONF_DIR=str(conf)) == "unset"
    home = tmp_path / "spark"
    shutil.copytree(conf, home / "conf")
    assert submit(tmp_path / "c", SPARK_HOME=str(home)) == "unset"


@pytest.mark.parametrize("folder", ["with,comma", "with space"])
def test_a_folder_log4j_would_misread_is_left_to_sparks_defaults(
    tmp_path: Path, folder: str
) -> None:
    seen = submit(tmp_path / folder)
    expected = "unset" if "," in folder else str(tmp_path / folder / LOG_CONFIG_NAME)
    assert seen == expected
