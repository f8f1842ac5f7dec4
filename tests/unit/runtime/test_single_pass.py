"""A batch run that validates its extracts in the pass that writes its load: files held back
in the target's pending folder until the counts are known, then published or removed."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from etlc.connectors import pending_files
from etlc.connectors.files import FilesExtractor, FilesLoader
from etlc.runtime.environment import Environment, Settings
from etlc.runtime.errors import SchemaIncompatibleError, TerminalError, ValidationFailedError
from etlc.runtime.graph import ExtractStep, LoadStep, PipelineGraph, TransformStep
from etlc.runtime.logs import EventLog, RunContext
from etlc.runtime.pipeline import BatchPipeline
from etlc.runtime.report import Status
from etlc.runtime.stage_store import StageStore
from etlc.transforms.derive import derive_columns
from etlc.transforms.filter import filter_rows
from tests.unit.runtime.items import SCHEMA
from tests.unit.runtime.log_lines import events

RULES = (
    ("not_null:id", "`id` IS NOT NULL"),
    ("not_null:kind", "`kind` IS NOT NULL"),
    ("enum:kind", "`kind` IS NULL OR `kind` IN ('A', 'B')"),
)
GOOD = "id,kind,qty\n1,A,3\n2,B,\n3,A,7\n"


def extract(source: Path, step: str = "items") -> ExtractStep:
    reader = FilesExtractor(str(source), "csv", SCHEMA, {"header": "true"})
    return ExtractStep(step, reader, SCHEMA, RULES)


def big(*, reads_all: bool = True) -> TransformStep:
    return TransformStep(
        "big", ("items",), filter_rows("qty > 2"), SCHEMA, (), reads_every_record=reads_all
    )


def pipeline(
    spark: Any,
    tmp_path: Path,
    loads: tuple[LoadStep, ...],
    transforms: tuple[TransformStep, ...] = (),
    extracts: tuple[ExtractStep, ...] = (),
    **settings: Any,
) -> BatchPipeline:
    source = tmp_path / "items.csv"
    if not source.exists():
        source.write_text(GOOD, encoding="utf-8")
    g = PipelineGraph("items", extracts or (extract(source),), transforms, loads)
    e = Environment("t", "t.json", settings=Settings(stage_dir=str(tmp_path / "stage"), **settings))
    return BatchPipeline(g, spark, e, EventLog(RunContext("items", run_id="r1")))


def files(path: Path, mode: str = "overwrite", **kwargs: Any) -> LoadStep:
    return LoadStep(
        "out", kwargs.pop("input", "big"), FilesLoader(str(path), "json", **kwargs), mode
    )


def rows(spark: Any, path: Path) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in spark.read.json(str(path)).select("id", "kind").collect())


def test_one_pass_writes_the_load_without_staging_and_counts_the_extract(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    out = tmp_path / "out"
    report = pipeline(spark, tmp_path, (files(out),), (big(),)).run()
    assert report.status is Status.SUCCESS, report.error
    assert rows(spark, out) == [(1, "A"), (3, "A")]
    counts = {m.step: (m.records_in, m.records_out) for m in report.steps}
    assert counts == {"items": (3, 3), "big": (3, 2), "out": (2, 2)}
    finished = {e["step"]: e for e in events(log_stream, "step_finished")}
    assert finished["items"]["validated_with"] == "out"
    assert not (tmp_path / "stage").exists()  # nothing went through the stage store
    assert not [p for p in out.iterdir() if p.name.startswith(pending_files.PENDING_PREFIX)]


def test_an_invalid_record_leaves_the_target_as_it_was(
    spark: Any, tmp_path: Path, log_stream: io.StringIO
) -> None:
    out = tmp_path / "out"
    assert pipeline(spark, tmp_path, (files(out),), (big(),)).run().status is Status.SUCCESS
    before = sorted(p.name for p in out.iterdir())
    (tmp_path / "items.csv").write_text("id,kind,qty\n5,A,9\n,B,4\n6,Q,8\n", encoding="utf-8")
    fresh = pipeline(spark, tmp_path, (files(tmp_path / "fresh" / "deep"),), (big(),)).run()
    assert isinstance(fresh.error, ValidationFailedError)
    assert not (tmp_path / "fresh").exists()  # the folders the run would have made: not made
    report = pipeline(spark, tmp_path, (files(out),), (big(),)).run()
    assert isinstance(report.error, ValidationFailedError)
    assert report.error.step == "items"
    assert report.error.violations == {"not_null:id": 1, "enum:kind": 1}
    assert sorted(p.name for p in out.iterdir()) == before  # old files kept, nothing pending
    assert rows(spark, out) == [(1, "A"), (3, "A")]
    failed = events(log_stream, "validation_failed")[-1]
    assert (failed["records"], failed["invalid"]) == (3, 2)
    assert sorted(r["_etlc_violation"] for r in failed["sample"]) == ["enum:kind", "not_null:id"]
    assert (Path(failed["stage_path"]) / "_etlc_valid=false").is_dir()  # kept to inspect


def test_append_adds_files_and_a_partitioned_overwrite_replaces_only_its_partitions(
    spark: Any, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    for _ in range(2):
        load = files(out, "append", input="items")
        assert pipeline(spark, tmp_path, (load,)).run().status is Status.SUCCESS
    assert len(rows(spark, out)) == 6
    by_kind = tmp_path / "by_kind"
    load = files(by_kind, "overwrite", input="items", partition_by=("kind",))
    assert pipeline(spark, tmp_path, (load,)).run().status is Status.SUCCESS
    (tmp_path / "items.csv").write_text("id,kind,qty\n9,B,1\n", encoding="utf-8")
    load = files(by_kind, "overwrite", input="items", partition_by=("kind",))
    assert pipeline(spark, tmp_path, (load,)).run().status is Status.SUCCESS
    found = sorted((r.id, r.kind) for r in spark.read.json(str(by_kind)).collect())
    assert found == [(1, "A"), (3, "A"), (9, "B")]  # A kept, B replaced
    load = files(by_kind, "append", input="items", partition_by=("kind",))
    assert pipeline(spark, tmp_path, (load,)).run().status is Status.SUCCESS
    assert len(spark.read.json(str(by_kind)).where("kind = 'B'").collect()) == 2


@pytest.mark.parametrize(
    "case", ["two_loads", "a_join", "keep_stage", "a_transform_fail_rule", "an_unused_extract"]
)
def test_what_keeps_the_stage_store(
    spark: Any, tmp_path: Path, log_stream: io.StringIO, case: str
) -> None:
    out = tmp_path / "out"
    loads: tuple[LoadStep, ...] = (files(out),)
    transforms: tuple[TransformStep, ...] = (big(),)
    extracts: tuple[ExtractStep, ...] = ()
    settings: dict[str, Any] = {}
    if case == "two_loads":
        loads = (
            files(out),
            LoadStep("copy", "big", FilesLoader(str(tmp_path / "c"), "json"), "overwrite"),
        )
    elif case == "a_join":
        transforms = (big(reads_all=False),)
    elif case == "keep_stage":
        settings["keep_stage"] = True
    elif case == "a_transform_fail_rule":
        from etlc.runtime.expectations import Expectation

        rule = Expectation("small", "qty < 100", "fail")
        transforms = (
            TransformStep("big", ("items",), filter_rows("qty > 2"), SCHEMA, (), (rule,), True),
        )
    else:
        (tmp_path / "items.csv").write_text(GOOD, encoding="utf-8")
        extracts = (extract(tmp_path / "items.csv"), extract(tmp_path / "items.csv", "spare"))
    report = pipeline(spark, tmp_path, loads, transforms, extracts, **settings).run()
    assert report.status is Status.SUCCESS, report.error
    finished = {e["step"]: e for e in events(log_stream, "step_finished")}
    assert "validated_with" not in finished["items"]


def test_a_read_failure_in_the_load_job_names_the_extract(spark: Any, tmp_path: Path) -> None:
    (tmp_path / "items.csv").write_text("kind,id,qty\nA,1,3\n", encoding="utf-8")
    report = pipeline(spark, tmp_path, (files(tmp_path / "out"),), (big(),)).run()
    assert isinstance(report.error, SchemaIncompatibleError)
    assert report.error.step == "items"
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_derive_crosses_the_boundary_after_the_extract_did(spark: Any, tmp_path: Path) -> None:
    bad = TransformStep(
        "big",
        ("items",),
        derive_columns({"kind": "'Q'"}),
        SCHEMA,
        ("kind",),
        reads_every_record=True,
    )
    report = pipeline(spark, tmp_path, (files(tmp_path / "out"),), (bad,)).run()
    assert report.status is Status.FAILED and report.error is not None
    assert report.error.step == "out"
    assert not (tmp_path / "out").exists()


def test_a_failed_publish_says_where_the_files_wait(spark: Any, tmp_path: Path) -> None:
    target = tmp_path / "t"
    target.mkdir()
    (tmp_path / "other").write_text("kept\n", encoding="utf-8")
    pending = target / f"{pending_files.PENDING_PREFIX}x"
    with pytest.raises(TerminalError, match="files not moved yet are in"):
        pending_files.publish(spark, str(pending), str(target), "all", 0)  # nothing written
    made = [str(target), str(tmp_path)]
    assert pending_files.discard(spark, str(pending), made=made) is None
    assert not target.exists()  # the folder the write made, empty, goes too
    assert tmp_path.exists()  # one that holds something else stays


@pytest.mark.parametrize("boundary", [True, False])
def test_records_a_plan_never_reads_still_halt_the_run(
    spark: Any, tmp_path: Path, boundary: bool
) -> None:
    # Spark drops a filter it proves false, and the check below it, from the plan; with no
    # Avro crossing, a column nothing uses would not even be parsed.
    (tmp_path / "items.csv").write_text("id,kind,qty\n1,A,3\n2,B,abc\n", encoding="utf-8")
    never = TransformStep(
        "big", ("items",), filter_rows("1 = 0"), SCHEMA, (), reads_every_record=True
    )
    report = pipeline(
        spark, tmp_path, (files(tmp_path / "a"),), (never,), avro_boundary=boundary
    ).run()
    assert isinstance(report.error, ValidationFailedError), report.error
    assert report.error.violations == {"parse": 1}

    def ids(df: Any) -> Any:
        return df.select("id", "kind")

    narrow = TransformStep("big", ("items",), ids, SCHEMA, (), reads_every_record=True)
    report = pipeline(
        spark, tmp_path, (files(tmp_path / "b"),), (narrow,), avro_boundary=boundary
    ).run()
    assert isinstance(report.error, ValidationFailedError), report.error
    assert report.error.violations == {"parse": 1}


def test_an_extract_the_plan_never_read_is_staged_once_even_when_invalid(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log_stream: io.StringIO
) -> None:
    # Its staging for the count is also the failure path's second read: no third.
    (tmp_path / "items.csv").write_text("id,kind,qty\n1,A,3\n2,B,abc\n", encoding="utf-8")
    staged: list[str] = []
    write = StageStore.write_validated

    def counted(store: StageStore, step: str, *args: Any) -> Any:
        staged.append(step)
        return write(store, step, *args)

    monkeypatch.setattr(StageStore, "write_validated", counted)
    never = TransformStep(
        "big", ("items",), filter_rows("1 = 0"), SCHEMA, (), reads_every_record=True
    )
    report = pipeline(spark, tmp_path, (files(tmp_path / "a"),), (never,)).run()
    assert isinstance(report.error, ValidationFailedError), report.error
    assert staged == ["items"]
    [failed] = events(log_stream, "validation_failed")
    assert "sample_read_again" not in failed  # the sample is from the one staging


def test_a_transform_may_be_named_like_the_checks_of_its_extract(
    spark: Any, tmp_path: Path
) -> None:
    step = TransformStep(
        "validate_items", ("items",), filter_rows("qty > 2"), SCHEMA, (), reads_every_record=True
    )
    load = files(tmp_path / "out", input="validate_items")
    assert pipeline(spark, tmp_path, (load,), (step,)).run().status is Status.SUCCESS


def test_an_overwrite_leaves_another_runs_pending_files_alone(spark: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    other = out / f"{pending_files.PENDING_PREFIX}other"
    other.mkdir(parents=True)
    (other / "part-0.json").write_text("{}\n", encoding="utf-8")
    assert pipeline(spark, tmp_path, (files(out),), (big(),)).run().status is Status.SUCCESS
    assert (other / "part-0.json").exists()


def test_an_append_that_stopped_part_way_names_the_files_it_added() -> None:
    moved = [f"k=A/part-{i}.json" for i in range(7)]
    text = pending_files._part_way("t", "t/_etlc_pending-x", "none", moved, "disk gone")
    assert "7 file(s) were added" in text and "k=A/part-0.json" in text
    assert "and 2 more" in text and "Remove the added files" in text
    assert "nothing was added" in pending_files._part_way("t", "p", "none", [], "x")
    assert "writes it whole" in pending_files._part_way("t", "p", "all", moved, "x")
