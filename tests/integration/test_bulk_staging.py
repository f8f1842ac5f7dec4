"""A database load stages its rows through the database's bulk path (PostgreSQL's COPY, MySQL's
LOAD DATA LOCAL) and every value lands as it would through INSERTs: strings that hold quotes,
commas, line breaks, backslashes or the loaders' own NULL and end-of-data markers, the empty
string apart from NULL, decimals, doubles at their limits, dates and microsecond timestamps.
A MySQL load with a binary column goes through INSERTs instead, and lands the same rows.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.integration import databases as db
from tests.integration.conftest import compile_variant, submit
from tests.integration.test_database_loads import CHECK_ENV

STRINGS = [
    'say "hi", then go',
    "line one\nline two",
    "crlf\r\nend",
    "back\\slash",
    "\\N",
    "NULL",
    "",
    "\\.",
    "tab\there",
    "ünïcödé 🎉",
    ",",
    '"',
    '""',
    " padded ",
    "it's",
    None,
]
DOUBLES = [0.1, -1e-300, 1.7976931348623157e308, 123456789.123456789, 0.0, None]
AMOUNTS = ["-12345678901234.5678", "0.0001", "1000", None]
DAYS = ["1970-01-01", "2026-12-31", "1900-02-28", None]
TIMES = ["2026-01-02T03:04:05.123456Z", "1969-12-31T23:59:59.999999Z", "2026-06-30T00:00:00Z", None]
FLAGS = [True, False, None]
SCHEMA = {
    "type": "record",
    "name": "tricky",
    "fields": [
        {"name": "id", "type": "long"},
        {"name": "name", "type": ["null", "string"]},
        {"name": "flag", "type": ["null", "boolean"]},
        {"name": "ratio", "type": ["null", "double"]},
        {
            "name": "amount",
            "type": [
                "null",
                {"type": "bytes", "logicalType": "decimal", "precision": 20, "scale": 4},
            ],
        },
        {"name": "day", "type": ["null", {"type": "int", "logicalType": "date"}]},
        {"name": "at", "type": ["null", {"type": "long", "logicalType": "timestamp-micros"}]},
    ],
}
BLOB = {"name": "payload", "type": ["null", "bytes"]}


def _records() -> list[dict[str, Any]]:
    out = []
    for i in range(64):
        out.append(
            {
                "id": i,
                "name": STRINGS[i % len(STRINGS)],
                "flag": FLAGS[i % len(FLAGS)],
                "ratio": DOUBLES[i % len(DOUBLES)],
                "amount": AMOUNTS[i % len(AMOUNTS)],
                "day": DAYS[i % len(DAYS)],
                "at": TIMES[i % len(TIMES)],
                "payload": base64.b64encode(bytes([i, 0, 255, 10, 34])).decode() if i % 5 else None,
            }
        )
    return out


def _expected(r: dict[str, Any], mysql: bool) -> tuple[Any, ...]:
    """The row as each database's client hands it back."""
    at = r["at"] and datetime.fromisoformat(r["at"]).astimezone(UTC).replace(tzinfo=None)
    flag = r["flag"] if r["flag"] is None or not mysql else int(r["flag"])
    amount = r["amount"] and Decimal(r["amount"]).quantize(Decimal("0.0001"))
    day = r["day"] and date.fromisoformat(r["day"])
    return (r["id"], r["name"], flag, r["ratio"], amount, day, at)


def _definition(tmp: Path) -> Path:
    defs = tmp / "defs"
    defs.mkdir(parents=True)
    (defs / "tricky.avsc").write_text(json.dumps(SCHEMA), encoding="utf-8")
    with_blob = {**SCHEMA, "name": "tricky_blob", "fields": [*SCHEMA["fields"], BLOB]}
    (defs / "tricky_blob.avsc").write_text(json.dumps(with_blob), encoding="utf-8")

    def extract(step: str, schema: str) -> dict[str, Any]:
        path = "${data_dir}/*.json"
        return {"id": step, "type": "files", "path": path, "format": "json", "schema": schema}

    def load(step: str, source: str, system: str, table: str, mode: str) -> dict[str, Any]:
        connection = {"postgres": "warehouse", "mysql": "crm"}[system]
        keys = {"keys": ["id"]} if mode == "upsert" else {}
        return {
            "id": step,
            "input": source,
            "type": system,
            "connection": connection,
            "table": table,
            "mode": mode,
            "create_table": "if_missing",
            **keys,
        }

    doc = {
        "name": "bulk_staging",
        "extract": [extract("rows", "tricky.avsc"), extract("with_blob", "tricky_blob.avsc")],
        "load": [
            load("to_postgres", "with_blob", "postgres", "bulk_tricky", "upsert"),
            load("to_mysql", "rows", "mysql", "bulk_tricky", "upsert"),
            load("to_mysql_blob", "with_blob", "mysql", "bulk_tricky_blob", "append"),
        ],
    }
    return compile_variant(tmp, doc, CHECK_ENV)


def test_every_value_lands_through_the_bulk_path_as_inserts_would_land_it(
    creds: dict[str, Any], vault: tuple[Path, str], tmp_path: Path
) -> None:
    with db.postgres(creds) as conn:
        conn.execute("DROP TABLE IF EXISTS bulk_tricky")
    db.my_execute(
        creds, ["DROP TABLE IF EXISTS bulk_tricky", "DROP TABLE IF EXISTS bulk_tricky_blob"]
    )
    records = _records()
    data = tmp_path / "data"
    data.mkdir()
    (data / "rows.json").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8"
    )
    driver = _definition(tmp_path)
    env = db.env_file(
        tmp_path / "env.json",
        creds,
        vault[0],
        {"data_dir": str(data)},
        stage_dir=str(tmp_path / "s"),
    )
    done = submit(driver, env, extra_env={"ETLC_VAULT_PASSWORD": vault[1]})
    assert done.returncode == 0, f"{done.events[-3:]}\n{done.stderr[-3000:]}"

    staged = {
        e["step"]: e.get("staged_with") for e in done.event("step_finished") if e["stage"] == "load"
    }
    assert staged == {"to_postgres": "copy", "to_mysql": "copy", "to_mysql_blob": "insert"}

    columns = "id, name, flag, ratio, amount, day, at"
    pg = db.pg_rows(creds, f"SELECT {columns}, payload FROM bulk_tricky ORDER BY id")
    assert [row[:-1] for row in pg] == [_expected(r, mysql=False) for r in records]
    assert [row[-1] for row in pg] == [
        r["payload"] and base64.b64decode(r["payload"]) for r in records
    ]

    my = db.my_rows(creds, f"SELECT {columns} FROM bulk_tricky ORDER BY id")
    assert my == [_expected(r, mysql=True) for r in records]
    # The same rows through INSERTs (a binary column keeps LOAD DATA out).
    my_blob = db.my_rows(creds, f"SELECT {columns}, payload FROM bulk_tricky_blob ORDER BY id")
    assert [row[:-1] for row in my_blob] == my
    assert [row[-1] for row in my_blob] == [
        r["payload"] and base64.b64decode(r["payload"]) for r in records
    ]
