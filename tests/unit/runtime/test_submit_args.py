"""The submit script's arguments: spark-submit options before `--`, the environment file's
Spark settings as --conf, the file shipped in cluster mode, list options joined."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from etlc.codegen.render import jvm_jar_name, render, runtime_zip, runtime_zip_name
from etlc.dsl.checker import check_file
from etlc.runtime.submit_args import Options, SubmitError, arguments, main

OURS = Options.parse(
    [
        *("--jars", "/p/jars/etlc.jar,/p/jars/avro.jar"),
        *("--py-files", "/p/generated/etlc-runtime.zip"),
        *("--conf", "spark.redaction.regex=(?i)secret|password|token|access[.]?key|key|vault"),
    ]
)
SETTINGS = {
    "spark.executor.memory": "2g",
    "spark.sql.adaptive.enabled": True,
    "spark.yarn.queue": "etl",
    "spark.hadoop.fs.s3a.secret.key": "hunter2",
    "spark.ssl.keyPassword": "hunter3",
}


@pytest.fixture
def env_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "env"
    folder.mkdir()
    for name in ("local", "prod"):
        doc = {"spark": {**SETTINGS, "spark.app.env": name}}
        (folder / f"{name}.json").write_text(json.dumps(doc), encoding="utf-8")
    return folder


def run(env_dir: Path, *args: str, **environ: str) -> tuple[list[str], list[str]]:
    return arguments(OURS, str(env_dir), list(args), environ)


def confs(options: list[str]) -> list[str]:
    return [options[i + 1] for i, o in enumerate(options) if o == "--conf"][1:]


def test_without_a_double_dash_everything_goes_to_the_driver_as_before(env_dir: Path) -> None:
    options, driver = run(env_dir, "--run-id", "r1")
    assert driver == ["--env-file", str(env_dir / "local.json"), "--run-id", "r1"]
    assert options[:4] == [
        *("--jars", "/p/jars/etlc.jar,/p/jars/avro.jar"),
        *("--py-files", "/p/generated/etlc-runtime.zip"),
    ]
    # Every setting of the file, sorted, except those named like a secret: `ps` shows them.
    assert confs(options) == [
        "spark.app.env=local",
        "spark.executor.memory=2g",
        "spark.sql.adaptive.enabled=true",
        "spark.yarn.queue=etl",
    ]
    assert not any("hunter" in o for o in options)
    assert "--files" not in options


def test_spark_submit_options_come_after_the_scripts_own_so_they_win(env_dir: Path) -> None:
    options, driver = run(
        env_dir,
        *("--master", "yarn", "--conf", "spark.executor.memory=4g", "--verbose", "--"),
        *("--env", "prod"),
    )
    assert driver == ["--env-file", str(env_dir / "prod.json")]
    assert options[-5:] == ["--master", "yarn", "--conf", "spark.executor.memory=4g", "--verbose"]
    assert "spark.app.env=prod" in confs(options)


def test_cluster_mode_ships_the_environment_file_and_names_it_in_the_working_directory(
    env_dir: Path, tmp_path: Path
) -> None:
    options, driver = run(
        env_dir,
        *("--deploy-mode=cluster", "--files", "extra.txt", "--jars", "/mine.jar", "--"),
        *("--env", "prod", "--run-id", "r2"),
    )
    assert driver == ["--env-file", "prod.json", "--run-id", "r2"]
    # One of each list option: spark-submit would keep only the last one given.
    assert options.count("--files") == options.count("--jars") == 1
    assert options[options.index("--files") + 1] == f"{env_dir / 'prod.json'},extra.txt"
    assert options[options.index("--jars") + 1] == "/p/jars/etlc.jar,/p/jars/avro.jar,/mine.jar"


@pytest.mark.parametrize(
    ("given", "environ", "cluster"),
    [
        (["--conf", "spark.submit.deployMode=cluster"], {}, True),
        (["-c", "spark.submit.deployMode=cluster", "--deploy-mode", "client"], {}, False),
        ([], {"DEPLOY_MODE": "cluster"}, True),
        ([], {}, False),
    ],
)
def test_the_deploy_mode_is_read_as_spark_submit_reads_it(
    env_dir: Path, given: list[str], environ: dict[str, str], cluster: bool
) -> None:
    options, driver = run(env_dir, *given, "--", **environ)
    assert ("--files" in options) is cluster
    assert driver[1] == ("local.json" if cluster else str(env_dir / "local.json"))


def test_a_cluster_deploy_mode_in_the_environment_file_ships_it_too(tmp_path: Path) -> None:
    (tmp_path / "yarn.json").write_text(
        json.dumps({"spark": {"spark.submit.deployMode": "cluster"}}), encoding="utf-8"
    )
    options, driver = run(tmp_path, "--env", "yarn")
    assert driver == ["--env-file", "yarn.json"] and "--files" in options


def test_the_environment_is_chosen_as_the_driver_chooses_it(env_dir: Path, tmp_path: Path) -> None:
    assert run(env_dir, ETLC_ENV="prod")[1][1] == str(env_dir / "prod.json")
    chosen = tmp_path / "chosen.json"
    chosen.write_text("{}", encoding="utf-8")
    assert run(env_dir, ETLC_ENV_FILE=str(chosen))[1][1] == str(chosen)
    assert run(env_dir, f"--env-file={chosen}", ETLC_ENV="prod")[1][1] == str(chosen)
    # --env on the command line beats $ETLC_ENV_FILE, as the driver's own parsing does.
    assert run(env_dir, "--env", "prod", ETLC_ENV_FILE=str(chosen))[1][1] == str(
        env_dir / "prod.json"
    )


def test_help_reaches_the_driver_without_an_environment_file(tmp_path: Path) -> None:
    options, driver = run(tmp_path / "none", "--help")
    assert driver == ["--help"] and "--py-files" in options


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "missing"], "environment file {dir}/missing.json not found"),
        (["prod.json", "--", "--env", "prod"], "`prod.json` before `--` is not a spark-submit"),
        (["--master", "--"], "spark-submit option --master needs a value"),
        (["--", "--env"], "driver option --env needs a value"),
    ],
)
def test_what_cannot_be_submitted_is_said_before_spark_submit_starts(
    env_dir: Path, args: list[str], message: str
) -> None:
    with pytest.raises(SubmitError) as caught:
        run(env_dir, *args)
    assert message.format(dir=env_dir) in str(caught.value)


def test_a_malformed_environment_file_is_named_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "local.json").write_text('{\n  "spark": {"a": [1]}\n}', encoding="utf-8")
    with pytest.raises(SubmitError, match=r"local.json: `spark.a` must be a string"):
        run(tmp_path)
    (tmp_path / "local.json").write_text('{\n  "spark": \n}', encoding="utf-8")
    with pytest.raises(SubmitError, match=r"local.json:3:1: malformed JSON"):
        run(tmp_path)


def test_main_prints_the_count_the_options_and_the_driver_arguments(
    env_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--env-dir", str(env_dir), "--jars", "a.jar", "---", "--run-id", "x"]) == 0
    printed = capsys.readouterr().out.split("\0")
    count = int(printed[0])
    assert printed[1 : 1 + count][:2] == ["--jars", "a.jar"]
    assert printed[1 + count :] == ["--env-file", str(env_dir / "local.json"), "--run-id", "x", ""]
    assert main(["--env-dir", str(env_dir), "---", "--env", "nope"]) == 1
    assert capsys.readouterr().err == f"etlc: environment file {env_dir}/nope.json not found\n"
    assert main(["--jars", "a.jar"]) == 1
    assert "usage: submit_args --env-dir DIR" in capsys.readouterr().err


def test_it_runs_from_the_runtime_zip_on_a_python_without_site_packages(
    env_dir: Path, tmp_path: Path
) -> None:
    """The submitting machine's python3 need not have pyspark, cryptography or anything else
    installed: -S leaves out every site-packages folder."""
    zipped = tmp_path / runtime_zip_name()
    zipped.write_bytes(runtime_zip())
    command = [sys.executable, "-S", "-m", "etlc.runtime.submit_args"]
    done = subprocess.run(
        [*command, "--env-dir", str(env_dir), "---", "--env", "prod"],
        env={"PYTHONPATH": str(zipped), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.split(b"\0")[-3:] == [
        b"--env-file",
        str(env_dir / "prod.json").encode(),
        b"",
    ]


# --- the generated script, end to end, against a stand-in spark-submit ----------------------

K8S = ("--master", "k8s://https://cluster.example:6443", "--deploy-mode", "cluster")


def submitted(
    tmp_path: Path, spark: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """Compile an example beside ``tmp_path``, then run its submit script, recording argv."""
    result = check_file(
        Path(__file__).resolve().parents[3] / "pipelines" / "orders_to_postgres.json"
    )
    assert result.plan is not None
    out = tmp_path / "generated"
    out.mkdir()
    for output in render(result.plan, out):
        output.path.write_bytes(output.content)
    jars = tmp_path / "jars"
    jars.mkdir()
    for name in (jvm_jar_name(), *(a.jar_name for a in result.plan.artifacts)):
        (jars / name).write_bytes(b"")
    (tmp_path / "prod.json").write_text(json.dumps({"spark": spark}), encoding="utf-8")
    stub = tmp_path / "spark-submit"
    stub.write_text('#!/bin/bash\nprintf "%s\\0" "$@" > "$RECORD"\n', encoding="utf-8")
    stub.chmod(0o755)
    return subprocess.run(
        ["bash", str(out / "orders_to_postgres.submit.sh"), *args],
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "ETLC_JARS_DIR": str(jars),
            "SPARK_SUBMIT": str(stub),
            "RECORD": str(tmp_path / "argv"),
        },
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_kubernetes_cluster_submit_names_no_path_a_pod_cannot_see(tmp_path: Path) -> None:
    reference = "spark.kubernetes.driver.secretKeyRef.ETLC_SECRET_DB_PASSWORD"
    upload = {
        "spark.kubernetes.file.upload.path": "s3a://bucket/etlc-uploads",
        reference: "db-credentials:password",  # names a secret: the pod is made with it
        "spark.hadoop.fs.s3a.secret.key": "hunter2",  # is one: not on the command line
    }
    done = submitted(tmp_path, upload, *K8S, "--", "--env-file", "prod.json")
    assert done.returncode == 0, done.stderr
    argv = (tmp_path / "argv").read_text(encoding="utf-8").split("\0")[:-1]
    application = next(a for a in argv if a.endswith("orders_to_postgres.py"))
    at = argv.index(application)
    options, driver = Options.parse(argv[:at]), argv[at + 1 :]
    # What the driver is told names nothing on this machine: the file is in its working dir.
    assert driver == ["--env-file", "prod.json"]
    # Everything it needs is a local file spark-submit uploads to the upload path.
    shipped = [application] + [
        path
        for name in ("--jars", "--py-files", "--files")
        for v in options.values(name)
        for path in v.split(",")
    ]
    assert {Path(p).name for p in shipped} >= {
        "orders_to_postgres.py",
        runtime_zip_name(),
        jvm_jar_name(),
        "prod.json",
    }
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in shipped), shipped
    assert options.conf()["spark.kubernetes.file.upload.path"] == "s3a://bucket/etlc-uploads"
    assert options.conf()[reference] == "db-credentials:password"
    assert not any("hunter2" in a for a in argv)
    assert options.values("--master")[-1] == K8S[1]


def test_a_kubernetes_cluster_submit_without_an_upload_path_says_so_before_submitting(
    tmp_path: Path,
) -> None:
    done = submitted(tmp_path, {}, *K8S, "--", "--env-file", "prod.json")
    assert done.returncode == 1
    assert done.stderr.startswith("etlc: a Kubernetes cluster-mode driver cannot read")
    assert "spark.kubernetes.file.upload.path" in done.stderr
    assert not (tmp_path / "argv").exists()  # spark-submit never ran


@pytest.mark.parametrize(
    ("given", "attempts"),
    [
        (["--master", "yarn", "--deploy-mode", "cluster"], "1"),
        (
            [
                "--master",
                "yarn",
                "--deploy-mode",
                "cluster",
                "--conf",
                "spark.yarn.maxAppAttempts=2",
            ],
            "2",
        ),
        (["--master", "yarn"], None),  # client mode: the driver is here, not in YARN's hands
        (["--master", "spark://host:7077", "--deploy-mode", "cluster"], None),
    ],
)
def test_yarn_starts_a_cluster_mode_driver_once_unless_told_otherwise(
    env_dir: Path, given: list[str], attempts: str | None
) -> None:
    options, _ = run(env_dir, *given, "--")
    assert Options.parse(options).conf().get("spark.yarn.maxAppAttempts") == attempts


def test_an_environment_file_can_only_add_to_what_spark_hides(tmp_path: Path) -> None:
    """A file that sets the redaction pattern (to `(?i)nothing`, say) would show every secret
    in the Spark UI and the event log: its pattern is an alternative to etlc's, never instead."""
    folder = tmp_path / "env"
    folder.mkdir()
    weak = {"spark.redaction.regex": "(?i)nothing", "spark.sql.redaction.options.regex": ""}
    (folder / "local.json").write_text(json.dumps({"spark": weak}), encoding="utf-8")
    options, _ = arguments(OURS, str(folder), [], {})
    ours = OURS.conf()["spark.redaction.regex"]
    assert confs(options) == [
        f"spark.redaction.regex={ours}|(?i)nothing",
        "spark.sql.redaction.options.regex=",  # none of ours to keep on this command line
    ]
