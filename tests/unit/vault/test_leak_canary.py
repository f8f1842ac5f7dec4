"""The leak canary, end to end through the real runtime: no secret value escapes a run.

A pipeline resolves two canary secrets from the vault, hands them to a step that uses them as
carelessly as a real driver might (reader options, a printed plan, a log line, an error
message quoting the value), fails once transiently (retried), then fails authentication (not
retried). Every byte the run produced is searched for every spelling of every canary.
"""

from __future__ import annotations

import base64
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from etlc.codegen.output import write
from etlc.codegen.render import render
from etlc.connectors.files import FilesLoader
from etlc.dsl.checker import CheckOptions, check_file
from etlc.runtime import driver
from etlc.runtime.environment import Environment
from etlc.runtime.errors import AuthenticationError
from etlc.runtime.graph import DatasetSchema, ExtractStep, LoadStep, PipelineGraph
from etlc.runtime.strategies import Extractor
from etlc.vault import MasterKey, Secret
from etlc.vault.redaction import SPARK_REDACTION_CONF
from tests.leak_canary import Canary, assert_no_leak, files, seed_vault

ROOT = Path(__file__).resolve().parents[3]
MASTER = "canary-master-password"
SCHEMA = DatasetSchema(
    {"type": "record", "name": "r", "fields": [{"name": "id", "type": "long"}]}, "`id` BIGINT"
)


class CarelessExtractor(Extractor):
    """Leaks its secrets every way a third-party driver might, if etlc let it."""

    def __init__(self, password: Secret, token: Secret, path: str) -> None:
        self.password = password
        self.token = token
        self.path = path
        self.calls = 0

    def describe(self) -> dict[str, Any]:
        return {"system": "careless", "password": self.password}

    def extract(self, spark: Any) -> Any:
        self.calls += 1
        password, token = self.password.reveal(), self.token.reveal()
        frame = (
            spark.read.format("csv")
            .option("header", "true")
            .option("password", password)
            .schema(SCHEMA.ddl)
            .load(self.path)
        )
        frame.explain(extended=True)
        plan = spark.sql(
            "EXPLAIN EXTENDED CREATE TEMPORARY VIEW etlc_canary USING csv OPTIONS "
            f"(path '{self.path}', credential '{password}', vault_token '{token}')"
        ).first()[0]
        print(plan)
        basic = base64.b64encode(f"etl:{password}".encode()).decode()
        logging.getLogger("etlc.connectors.careless").warning(
            "connecting with %s, token %s, Authorization: Basic %s", password, token, basic
        )
        if self.calls == 1:
            raise ConnectionRefusedError(
                f"connection refused: postgresql://etl:{quote(password, safe='')}@127.0.0.1:1/crm"
            )
        raise AuthenticationError(
            f'FATAL: password authentication failed for user "etl" (password "{password}", '
            f"token {base64.b64encode(token.encode()).decode()})"
        )


@pytest.fixture
def options_redaction(spark: Any) -> Iterator[None]:
    """The session-level part of etlc's Spark redaction (the submit command sets the rest)."""
    key = "spark.sql.redaction.options.regex"
    before = spark.conf.get(key)
    spark.conf.set(key, dict(SPARK_REDACTION_CONF)[key])
    yield
    spark.conf.set(key, before)


def test_a_failed_authentication_leaks_nothing(
    spark: Any,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    options_redaction: None,
) -> None:
    vault_file = tmp_path / "vault.json"
    canaries = seed_vault(
        vault_file, MasterKey.from_password(MASTER), ["db/canary#password", "db/canary#token"]
    )
    monkeypatch.setenv("ETLC_VAULT_PASSWORD", MASTER)
    monkeypatch.delenv("ETLC_VAULT_KEY_FILE", raising=False)
    monkeypatch.delenv("ETLC_VAULT_FILE", raising=False)
    src = tmp_path / "in.csv"
    src.write_text("id\n1\n2\n")
    env_path = tmp_path / "pipelines" / "env" / "canary.json"
    env_path.parent.mkdir(parents=True)
    env_path.write_text(
        json.dumps(
            {
                "variables": {
                    "data_dir": str(tmp_path),
                    "out_dir": str(tmp_path / "out"),
                    "db_password": canaries[0].ref,
                },
                "vault": {"backend": "file", "path": str(vault_file)},
                "etlc": {"stage_dir": str(tmp_path / "stage"), "runs_dir": str(tmp_path / "runs")},
            }
        )
    )
    extractors: list[CarelessExtractor] = []

    def build(env: Environment) -> PipelineGraph:
        careless = CarelessExtractor(
            env.secret("db_password"), env.secret(canaries[1].ref), str(src)
        )
        extractors.append(careless)
        return PipelineGraph(
            "canary",
            (ExtractStep("src", careless, SCHEMA),),
            (),
            (LoadStep("out", "src", FilesLoader(env.interpolate("${out_dir}"), "json"), "append"),),
        )

    code = driver.run_driver(
        build,
        pipeline="canary",
        mode="batch",
        max_retries=3,
        delay_seconds=0.0,
        argv=["--env-file", str(env_path)],
        session_factory=lambda name, env, context: spark,
    )
    out, err = capfd.readouterr()

    assert code == 1
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    failed = [e for e in events if e["event"] == "attempt_failed"]
    assert [(e["attempt"], e["error_kind"]) for e in failed] == [
        (1, "transient"),
        (2, "authentication"),
    ]
    assert extractors[0].calls == 2  # the authentication failure was not retried
    finished = events[-1]
    assert (finished["event"], finished["status"], finished["attempts"]) == (
        "run_finished",
        "FAILED",
        2,
    )
    assert "password authentication failed" in finished["error"]
    assert "*********(redacted)" in out  # Spark's plan redaction was in the path

    # The run's own files, scanned below with the rest: every line, and the results.
    assert {p.suffix for p in (tmp_path / "runs" / "canary").iterdir()} == {".json", ".jsonl"}
    generated = compile_with_references(tmp_path, env_path)
    assert generated
    texts: dict[str, str | bytes] = {"stdout": out, "stderr": err}
    texts |= files(tmp_path, exclude=[vault_file])
    assert_no_leak(texts, canaries)
    # The vault file holds the values, encrypted: not one spelling in the clear.
    assert_no_leak({"vault": vault_file.read_bytes()}, canaries)


def compile_with_references(tmp_path: Path, env_path: Path) -> list[Path]:
    """Compile a definition whose environment holds the vault references: the compiler's
    output (driver, submit command, runtime zip) never sees a value."""
    definition = env_path.parent.parent / "filter_orders.json"
    shutil.copy(ROOT / "pipelines" / "filter_orders.json", definition)
    options = CheckOptions((ROOT / "schemas" / "avro",), env_path.parent)
    result = check_file(definition, options)
    assert result.plan is not None, result.diagnostics
    return write(render(result.plan, tmp_path / "generated"))


def test_the_canary_sees_what_the_redaction_would_miss(tmp_path: Path) -> None:
    """The helper itself is not fooled: a value written around etlc's logs is found."""
    canaries = seed_vault(tmp_path / "v.json", MasterKey.from_password(MASTER), ["a#b"])
    (tmp_path / "report.txt").write_text(quote(canaries[0].value, safe=""))
    with pytest.raises(AssertionError, match="url-quoted of vault://a#b"):
        assert_no_leak(files(tmp_path), canaries)
    assert isinstance(canaries[0], Canary)
