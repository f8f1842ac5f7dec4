"""`etlc schema infer` (etlc/dsl/schema_infer.py): a schema from sample data, no Spark."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from etlc.cli import app
from etlc.dsl.schema_infer import InferError, infer
from etlc.dsl.types import parse_avro_schema

runner = CliRunner()

HEADER = "id,flag,amount,ratio,seen_at,day,status,note,big"
ROWS = [
    "1,true,10.50,1.5,2026-01-02T16:12:55Z,2026-01-02,NEW,hello,12",
    "2,false,7.25,2,2026-01-03T00:00:00.123+01:00,2026-01-03,PAID,,99999999999999999999",
    "3,TRUE,1000.00,3e2,2026-01-04T10:00,2026-01-04,NEW,x y,1",
    "4,false,0.01,0.25,2026-01-05T10:00:00Z,2026-01-05,PAID,a-b,2",
]


def types(doc: dict[str, Any]) -> dict[str, Any]:
    return {f["name"]: f["type"] for f in doc["fields"]}


def write_csv(path: Path, rows: list[str] = ROWS, header: str = HEADER) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_csv_columns_get_the_narrowest_type_their_values_take(tmp_path: Path) -> None:
    doc = infer(write_csv(tmp_path / "s.csv"), "csv", "Sample", namespace="ns")
    parse_avro_schema(doc)
    assert (doc["name"], doc["namespace"]) == ("Sample", "ns")
    assert "4 record(s) of s.csv" in doc["doc"]
    t = types(doc)
    assert t["id"] == "long" and t["flag"] == "boolean"
    # Two decimals in every value: a decimal(4 + 2 + 4 headroom, 2).
    assert t["amount"] == {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}
    assert t["ratio"] == "double"  # scales differ, an exponent
    assert t["seen_at"] == {"type": "long", "logicalType": "timestamp-micros"}
    assert t["day"] == {"type": "int", "logicalType": "date"}
    assert t["status"] == {"type": "enum", "name": "status_enum", "symbols": ["NEW", "PAID"]}
    assert t["note"] == ["null", "string"]  # an empty value; too varied for an enum
    assert t["big"] == "double"  # beyond a long
    assert [f.get("default", "-") for f in doc["fields"]].count(None) == 1


def test_a_folder_of_files_is_one_sample_and_rows_are_bounded(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv", ROWS[:2])
    write_csv(tmp_path / "b.csv", ROWS[2:])
    (tmp_path / "notes.txt").write_text("ignored")
    assert "4 record(s) of " in infer(tmp_path, "csv", "Both")["doc"]
    assert "1 record(s)" in infer(tmp_path, "csv", "Both", max_rows=1)["doc"]
    write_csv(tmp_path / "c.csv", ROWS, header="id,other")
    with pytest.raises(InferError, match="header differs"):
        infer(tmp_path, "csv", "Both")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty file"),
        ("a,b\n1\n", r"s\.csv:2: 1 values for 2 columns"),
        ("a,b\n", "no records"),
        ("a b,c\n1,2\n", "column 'a b' is not an Avro name"),
    ],
)
def test_a_csv_sample_etlc_cannot_use_says_why(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "s.csv").write_text(text, encoding="utf-8")
    with pytest.raises(InferError, match=problem):
        infer(tmp_path / "s.csv", "csv", "S")


def test_json_lines_keys_that_come_and_go_are_nullable(tmp_path: Path) -> None:
    lines = [
        {"id": 1, "ok": True, "x": 1.5, "segment": "A", "at": "2026-01-02T00:00:00Z"},
        {"id": 2, "ok": False, "x": 2.5, "segment": "B", "at": "2026-01-03T00:00:00Z", "late": 1},
        {"id": 3, "ok": True, "x": None, "segment": "A", "at": "2026-01-04T00:00:00Z"},
        {"id": 4, "ok": True, "x": 4.0, "segment": "B", "at": "2026-01-05T00:00:00Z"},
    ]
    sample = tmp_path / "s.jsonl"
    sample.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n", encoding="utf-8")
    t = types(infer(sample, "json", "S"))
    assert (t["id"], t["ok"]) == ("long", "boolean")
    assert t["x"] == ["null", "double"] and t["late"] == ["null", "long"]
    assert t["segment"]["symbols"] == ["A", "B"]
    assert t["at"]["logicalType"] == "timestamp-micros"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"a": {"b": 1}}\n', "column `a` holds a nested value"),
        ('{"a": 1\n', r"s\.json:1: not JSON"),
        ("[1, 2]\n", r"s\.json:1: not a JSON object"),
    ],
)
def test_json_that_is_no_flat_record_is_refused(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "s.json").write_text(text, encoding="utf-8")
    with pytest.raises(InferError, match=problem):
        infer(tmp_path / "s.json", "json", "S")


def test_names_and_missing_samples_are_checked(tmp_path: Path) -> None:
    with pytest.raises(InferError, match="not an Avro name"):
        infer(write_csv(tmp_path / "s.csv"), "csv", "my record")
    with pytest.raises(InferError, match="no such file or folder"):
        infer(tmp_path / "nope.csv", "csv", "S")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InferError, match="no csv file in the folder"):
        infer(tmp_path / "empty", "csv", "S")


def test_the_command_prints_or_writes_once_and_never_over_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "daily-orders.csv")
    printed = runner.invoke(app, ["schema", "infer", "daily-orders.csv"])
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.stdout)["name"] == "DailyOrders"
    written = runner.invoke(app, ["schema", "infer", "daily-orders.csv", "-o", "o.avsc"])
    assert written.exit_code == 0 and json.loads((tmp_path / "o.avsc").read_text())["fields"]
    again = runner.invoke(app, ["schema", "infer", "daily-orders.csv", "-o", "o.avsc"])
    assert again.exit_code == 1 and "never overwrites" in again.stderr
    (tmp_path / "mixed").mkdir()
    write_csv(tmp_path / "mixed" / "a.csv")
    (tmp_path / "mixed" / "b.json").write_text("{}\n")
    mixed = runner.invoke(app, ["schema", "infer", "mixed"])
    assert mixed.exit_code == 1 and "pass --format" in mixed.stderr
    typed = runner.invoke(app, ["schema", "infer", "mixed", "--format", "csv", "--name", "M"])
    assert typed.exit_code == 0 and json.loads(typed.stdout)["name"] == "M"
    bad = runner.invoke(app, ["schema", "infer", "nope.csv"])
    assert bad.exit_code == 1 and bad.stderr.startswith("error: ")
    (tmp_path / "1st.csv").write_text("a\n1\n")
    assert (
        json.loads(runner.invoke(app, ["schema", "infer", "1st.csv"]).stdout)["name"] == "Record1st"
    )


def test_whole_numbers_widen_a_decimal_and_leading_zeros_stay_text(tmp_path: Path) -> None:
    sample = write_csv(tmp_path / "n.csv", ["123456789012,02134", "1.5,10001"], header="n,zip")
    t = types(infer(sample, "csv", "N"))
    # 12 integer digits and one decimal, plus the headroom: nothing the sample holds overflows.
    assert t["n"] == {"type": "bytes", "logicalType": "decimal", "precision": 17, "scale": 1}
    assert t["zip"] == "string"


def test_json_text_that_looks_like_a_number_stays_text_and_keys_span_files(tmp_path: Path) -> None:
    first = [{"id": str(i), "ok": "true" if i % 2 else "false"} for i in range(1, 5)]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(x) for x in first), encoding="utf-8")
    (tmp_path / "b.jsonl").write_text(
        json.dumps({"id": "5", "ok": "true", "late": 2}), encoding="utf-8"
    )
    t = types(infer(tmp_path, "json", "S"))
    assert t["id"] == "string"  # Spark's JSON reader keeps "123" a string
    assert t["ok"] != "boolean"
    # Absent from every record of the first file: nullable.
    assert t["late"] == ["null", "long"]


def test_a_repeated_header_and_an_unknown_format_are_errors(tmp_path: Path) -> None:
    with pytest.raises(InferError, match="column 'a' appears twice"):
        infer(write_csv(tmp_path / "d.csv", ["1,2"], header="a,a"), "csv", "D")
    with pytest.raises(InferError, match="no sample format 'xml'"):
        infer(tmp_path / "d.csv", "xml", "D")
