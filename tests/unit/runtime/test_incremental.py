"""Incremental batch reads: positions, the position files of loads other than a database's, and
a run's ranges (catching a load up that an earlier run left behind)."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import DataFrame, SparkSession

from etlc.connectors.files import FilesExtractor, FilesLoader
from etlc.runtime import incremental
from etlc.runtime.environment import Environment, Settings
from etlc.runtime.errors import ConfigurationError, TerminalError, TransientError
from etlc.runtime.expectations import Expectation
from etlc.runtime.graph import ExtractStep, LoadStep, PipelineGraph, TransformStep
from etlc.runtime.incremental import IncrementalRun, PositionFile
from etlc.runtime.logs import EventLog, RunContext
from etlc.runtime.pipeline import BatchPipeline
from etlc.runtime.positions import in_range, parsed, shown
from etlc.runtime.report import Status
from etlc.runtime.retry import RetryingPipeline, RetryPolicy
from etlc.runtime.state_command import reset_state, show_state
from etlc.runtime.strategies import Incremental, IncrementalExtractor, LoadResult, Position
from tests.unit.runtime.items import SCHEMA
from tests.unit.runtime.log_lines import events


class NewItems(FilesExtractor, IncrementalExtractor):
    """The items CSV, read incrementally by `id` (as a database extract reads its table)."""

    def __init__(self, path: Path) -> None:
        super().__init__(str(path), "csv", SCHEMA, {"header": "true"})
        self.incremental = Incremental("integer", "id")

    def read_end(self, spark: SparkSession, after: Position | None) -> Position | None:
        return None  # read by its column, as a database extract: the highest observed

    def extract_range(self, spark: SparkSession, after: int | None, upto: int | None) -> DataFrame:
        df = self.extract(spark)
        where = in_range(df["id"], "integer", after, upto)
        return df if where is None else df.where(where)


def write_items(path: Path, ids: range) -> None:
    lines = ["id,kind,qty", *(f"{i},A,{i}" for i in ids)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def graph(source: Path, outs: dict[str, Path]) -> PipelineGraph:
    return PipelineGraph(
        name="items",
        extracts=(ExtractStep("items", NewItems(source), SCHEMA),),
        transforms=(),
        loads=tuple(
            LoadStep(
                load, "items", FilesLoader(str(out), "parquet"), "append", rebuild_mode="overwrite"
            )
            for load, out in outs.items()
        ),
    )


def run(
    spark: SparkSession,
    g: PipelineGraph,
    tmp_path: Path,
    run_id: str,
    *,
    full: bool = False,
    **more: Any,
) -> Any:
    settings = Settings(
        stage_dir=str(tmp_path / "stage"), state_dir=str(tmp_path / "state"), **more
    )
    env = Environment("test", "test.json", settings=settings)
    log = EventLog(RunContext("items", run_id=run_id))
    return BatchPipeline(g, spark, env, log, full_refresh=full).run()


def ids(spark: SparkSession, out: Path) -> list[int]:
    return sorted(r.id for r in spark.read.parquet(str(out)).collect())


def test_each_run_reads_what_is_new_and_commits_where_it_stopped(
    spark: SparkSession, tmp_path: Path, log_stream: io.StringIO
) -> None:
    src, out = tmp_path / "items.csv", tmp_path / "out"
    g = graph(src, {"out": out})
    write_items(src, range(1, 6))
    assert run(spark, g, tmp_path, "r1").status is Status.SUCCESS
    write_items(src, range(1, 9))  # 6, 7 and 8 arrived since
    assert run(spark, g, tmp_path, "r2").status is Status.SUCCESS
    assert run(spark, g, tmp_path, "r3").status is Status.SUCCESS  # nothing new
    assert ids(spark, out) == list(range(1, 9))
    reads = [
        (e.get("after"), e["reached"], e["records"]) for e in events(log_stream, "incremental_read")
    ]
    assert reads == [(None, 5, 5), (5, 8, 3), (8, 8, 0)]
    committed = events(log_stream, "positions_committed")
    assert [Path(e["path"]).name for e in committed] == [
        "positions-000000000001.json",
        "positions-000000000002.json",
        "positions-000000000003.json",
    ]
    # The newest file and the one before it stay: an operator sees the last move.
    folder = tmp_path / "state" / "items" / "out"
    assert sorted(p.name for p in folder.iterdir() if p.suffix == ".json") == [
        "positions-000000000002.json",
        "positions-000000000003.json",
    ]
    assert PositionFile(spark, str(tmp_path / "state"), "items", "out").read() == {"items": 8}


def test_a_full_refresh_reads_every_row_and_rebuilds_the_targets(
    spark: SparkSession, tmp_path: Path, log_stream: io.StringIO
) -> None:
    src, out = tmp_path / "items.csv", tmp_path / "out"
    g = graph(src, {"out": out})
    write_items(src, range(1, 6))
    assert run(spark, g, tmp_path, "r1").status is Status.SUCCESS
    write_items(src, range(3, 9))  # 1 and 2 are gone from the source, 6 to 8 are new
    assert run(spark, g, tmp_path, "r2", full=True).status is Status.SUCCESS
    assert ids(spark, out) == list(range(3, 9))  # rebuilt from what the source holds now
    [_, planned] = events(log_stream, "incremental_range")
    assert planned["full_refresh"] is True and "after" not in planned
    [_, load] = [e for e in events(log_stream, "step_finished") if e["stage"] == "load"]
    assert load["mode"] == "overwrite"
    write_items(src, range(3, 10))
    assert run(spark, g, tmp_path, "r3").status is Status.SUCCESS  # incremental again, from 8
    assert ids(spark, out) == list(range(3, 10))


def test_a_load_left_behind_catches_up_while_the_one_ahead_skips(
    spark: SparkSession, tmp_path: Path, log_stream: io.StringIO
) -> None:
    src, ahead, behind = tmp_path / "items.csv", tmp_path / "ahead", tmp_path / "behind"
    write_items(src, range(1, 11))
    # An earlier run committed `ahead` up to 7; `behind` failed and committed nothing.
    PositionFile(spark, str(tmp_path / "state"), "items", "ahead").write({"items": 7}, "r0")
    g = graph(src, {"ahead": ahead, "behind": behind})
    assert run(spark, g, tmp_path, "r1").status is Status.SUCCESS
    assert not ahead.exists()
    assert ids(spark, behind) == list(range(1, 8))  # up to where `ahead` stands, no further
    [skipped] = events(log_stream, "step_skipped")
    assert skipped["step"] == "ahead" and "catching the other loads up" in skipped["reason"]
    [planned] = events(log_stream, "incremental_range")
    assert (planned["upto"], planned["catch_up"]) == (7, True)
    # Together again: the next run reads the rest for both.
    assert run(spark, g, tmp_path, "r2").status is Status.SUCCESS
    assert ids(spark, ahead) == [8, 9, 10]
    assert ids(spark, behind) == list(range(1, 11))


def test_positions_no_catch_up_can_mend_fail_the_run_with_the_remedy(
    spark: SparkSession, tmp_path: Path, log_stream: io.StringIO
) -> None:
    src = tmp_path / "items.csv"
    write_items(src, range(1, 11))
    state = str(tmp_path / "state")
    for load, at in (("a", 3), ("b", 5), ("c", 7)):
        PositionFile(spark, state, "items", load).write({"items": at}, "r0")
    outs = {load: tmp_path / load for load in "abc"}
    report = run(spark, graph(src, outs), tmp_path, "r1")
    assert report.status is Status.FAILED
    assert isinstance(report.error, ConfigurationError)
    assert "load `b` holds position 5 of `items`" in str(report.error)
    assert "etlc state reset" in str(report.error)
    assert not any(p.exists() for p in outs.values())


def test_a_position_that_is_not_a_columns_fails_the_run_before_any_read(
    spark: SparkSession, tmp_path: Path, log_stream: io.StringIO
) -> None:
    src, out = tmp_path / "items.csv", tmp_path / "out"
    write_items(src, range(1, 4))
    PositionFile(spark, str(tmp_path / "state"), "items", "out").write({"items": "7"}, "r0")
    report = run(spark, graph(src, {"out": out}), tmp_path, "r1")
    assert report.status is Status.FAILED and not out.exists()
    assert str(report.error) == (
        'step `out`: its position of `items` is "7", not a position of its kind (integer); '
        "set it with `etlc state reset`"
    )
    assert shown("7", "integer") == '"7"'


def test_a_position_file_cut_short_does_not_count(spark: SparkSession, tmp_path: Path) -> None:
    store = PositionFile(spark, str(tmp_path), "p", "load")
    assert store.read() == {}
    store.write({"orders": 41}, "r1")
    folder = tmp_path / "p" / "load"
    (folder / "positions-000000000002.json").write_text('{"positions": {"orders": 4', "utf-8")
    (folder / "positions-000000000003.json").write_text('{"positions": [41]}', "utf-8")
    assert store.read() == {"orders": 41}
    path = store.write({"orders": 42}, "r2")
    assert path.endswith("positions-000000000004.json")
    assert json.loads(Path(path).read_text("utf-8")) == {
        "positions": {"orders": 42},
        "run_id": "r2",
    }
    assert store.read() == {"orders": 42}


@pytest.mark.parametrize(
    ("kind", "text", "at", "back"),
    [
        ("timestamp", "2026-01-31T10:00:00Z", 1_769_853_600_000_000, "2026-01-31T10:00:00Z"),
        ("timestamp", "2026-01-31T11:00:00+01:00", 1_769_853_600_000_000, "2026-01-31T10:00:00Z"),
        (
            "timestamp",
            "2026-01-31 10:00:00.5",
            1_769_853_600_500_000,
            "2026-01-31T10:00:00.500000Z",
        ),
        ("date", "2026-01-31", 20_484, "2026-01-31"),
        ("integer", " 42 ", 42, 42),
    ],
)
def test_positions_read_as_an_engineer_writes_them(
    kind: str, text: str, at: int, back: Any
) -> None:
    assert parsed(text, kind) == at
    assert shown(at, kind) == back
    assert shown(None, kind) is None


@pytest.mark.parametrize(
    ("kind", "example"),
    [("timestamp", "2026-01-31T00:00:00Z"), ("date", "2026-01-31"), ("integer", "42")],
)
def test_a_position_that_is_not_one_says_what_to_write(kind: str, example: str) -> None:
    article = "an" if kind == "integer" else "a"
    with pytest.raises(
        ConfigurationError, match=f"is not {article} {kind} position; write e.g. {example}"
    ):
        parsed("yesterday", kind)


def test_a_range_is_the_database_predicate_spark_pushes(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [(1, "2026-01-01 00:00:00"), (2, "2026-01-02 00:00:00"), (3, "2026-01-03 00:00:00")],
        "id LONG, at STRING",
    ).selectExpr("id", "CAST(at AS TIMESTAMP) AS at", "CAST(at AS DATE) AS day")
    assert in_range(df["id"], "integer", None, None) is None

    def kept(column: str, kind: str, after: int | None, upto: int | None) -> list[int]:
        where = in_range(df[column], kind, after, upto)
        assert where is not None
        return sorted(r.id for r in df.where(where).collect())

    assert kept("id", "integer", 1, None) == [2, 3]
    assert kept("id", "integer", None, 2) == [1, 2]
    day2 = parsed("2026-01-02", "date")
    assert kept("day", "date", day2, None) == [3]
    at = spark.sql("SELECT unix_micros(TIMESTAMP'2026-01-02 00:00:00') AS m").first()
    assert at is not None
    assert kept("at", "timestamp", None, int(at.m)) == [1, 2]


def test_a_second_read_in_a_run_does_not_move_the_position(
    spark: SparkSession, tmp_path: Path, log_stream: io.StringIO
) -> None:
    src = tmp_path / "items.csv"
    write_items(src, range(1, 4))
    g = graph(src, {"out": tmp_path / "out"})
    env = Environment("test", "test.json", settings=Settings(state_dir=str(tmp_path / "state")))
    plan = IncrementalRun(g, spark, env, EventLog(RunContext("items", run_id="r1")))
    plan.plan()
    [extract], [load] = g.extracts, g.loads
    assert plan.source(extract).count() == 3  # what the load wrote
    write_items(src, range(1, 6))  # rows committed to the source meanwhile
    assert plan.source(extract).count() == 5  # a second read: a staging for a count, a sample
    positions = plan.positions(load)
    assert positions is not None and positions.values() == {"items": 3}


def test_a_position_file_that_cannot_be_written_stops_the_run_with_the_command_to_set_it(
    spark: SparkSession, tmp_path: Path, log_stream: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(incremental, "COMMIT_DELAY_S", 0.0)
    writes: list[str] = []
    real = PositionFile.write

    def counted(self: PositionFile, values: Any, run_id: str) -> str:
        writes.append(run_id)
        return real(self, values, run_id)

    monkeypatch.setattr(PositionFile, "write", counted)
    src, out = tmp_path / "items.csv", tmp_path / "out"
    write_items(src, range(1, 4))
    (tmp_path / "state").write_text("a file where the folder should be", "utf-8")
    settings = Settings(stage_dir=str(tmp_path / "stage"), state_dir=str(tmp_path / "state"))
    log = EventLog(RunContext("items", run_id="r1"))
    inner = BatchPipeline(
        graph(src, {"out": out}), spark, Environment("t", "t.json", settings=settings), log
    )
    report = RetryingPipeline(inner, RetryPolicy(2, 0.0), log, sleep=lambda _: None).run()
    assert report.status is Status.FAILED and isinstance(report.error, TerminalError)
    assert str(report.error).startswith("step `out`: its rows are committed, but its positions")
    assert "set them: etlc state reset <definition> --load out --extract items --to 3" in str(
        report.error
    )
    assert writes == ["r1"] * incremental.COMMIT_ATTEMPTS  # tried again, then stopped
    assert ids(spark, out) == [1, 2, 3]  # written once: no attempt of the run writes it again
    assert [e["attempt"] for e in events(log_stream, "attempt_started")] == [1]


def test_a_load_past_one_catch_up_and_level_on_another_extract_skips(
    spark: SparkSession, tmp_path: Path, log_stream: io.StringIO
) -> None:
    xs, ys = tmp_path / "x.csv", tmp_path / "y.csv"
    write_items(xs, range(1, 6))
    write_items(ys, range(101, 108))
    state = str(tmp_path / "state")
    # A run committed A (x and y at 5 and 105) and B (y); C (x) failed, and stays at 3.
    for load, at in (("a", {"x": 5, "y": 105}), ("b", {"y": 105}), ("c", {"x": 3})):
        PositionFile(spark, state, "items", load).write(at, "r0")
    both = TransformStep("both", ("x", "y"), lambda x, y: x.unionByName(y), SCHEMA)
    outs = {name: tmp_path / name for name in "abc"}
    g = PipelineGraph(
        name="items",
        extracts=(
            ExtractStep("x", NewItems(xs), SCHEMA),
            ExtractStep("y", NewItems(ys), SCHEMA),
        ),
        transforms=(both,),
        loads=(
            LoadStep("a", "both", FilesLoader(str(outs["a"]), "parquet"), "append"),
            LoadStep("b", "y", FilesLoader(str(outs["b"]), "parquet"), "append"),
            LoadStep("c", "x", FilesLoader(str(outs["c"]), "parquet"), "append"),
        ),
    )
    report = run(spark, g, tmp_path, "r1")
    assert report.status is Status.SUCCESS, report.error
    assert not outs["a"].exists()  # past x's catch-up
    assert ids(spark, outs["c"]) == [4, 5]
    # y's new rows wait for every load of it: `a` stays level with `b` on y.
    assert spark.read.parquet(str(outs["b"])).count() == 0
    [held] = events(log_stream, "incremental_held")
    assert (held["step"], held["at"], held["reason"]) == ("y", 105, "load `a` skips a catch-up")
    assert run(spark, g, tmp_path, "r2").status is Status.SUCCESS  # all level again
    assert ids(spark, outs["a"]) == [106, 107]
    assert ids(spark, outs["b"]) == [106, 107]
    state = str(tmp_path / "state")
    assert [PositionFile(spark, state, "items", n).read() for n in "abc"] == [
        {"x": 5, "y": 107},
        {"y": 107},
        {"x": 5},
    ]


@pytest.mark.parametrize("text", ["1_000", "٣", "9223372036854775808", "1e3"])
def test_an_integer_position_is_plain_ascii_digits_within_64_bits(text: str) -> None:
    with pytest.raises(ConfigurationError):
        parsed(text, "integer")


def test_state_show_and_reset_read_and_set_each_loads_position(
    spark: SparkSession, tmp_path: Path, log_stream: io.StringIO
) -> None:
    src = tmp_path / "items.csv"
    g = graph(src, {"out": tmp_path / "out", "copy": tmp_path / "copy"})
    env = Environment("test", "test.json", settings=Settings(state_dir=str(tmp_path / "state")))
    log = EventLog(RunContext("items", run_id="op1"))
    PositionFile(spark, str(tmp_path / "state"), "items", "out").write({"items": 8}, "r0")
    show_state(g, spark, env, log)
    shown_now = {e["load"]: (e.get("position"), e["next_run"]) for e in events(log_stream)}
    assert shown_now == {
        "out": (8, "the rows above the position"),
        "copy": (None, "every record"),
    }
    reset_state(g, spark, env, log, extract="items", to="5")
    moved = {
        e["load"]: (e.get("before"), e["after"])
        for e in events(log_stream, "incremental_position_set")
    }
    assert moved == {"out": (8, 5), "copy": (None, 5)}
    reset_state(g, spark, env, log, extract=None, to="9", load="copy")
    assert PositionFile(spark, str(tmp_path / "state"), "items", "out").read() == {"items": 5}
    assert PositionFile(spark, str(tmp_path / "state"), "items", "copy").read() == {"items": 9}
    with pytest.raises(ConfigurationError, match="no load `nope` fed by an incremental extract"):
        reset_state(g, spark, env, log, extract=None, to=None, load="nope")
    reset_state(g, spark, env, log, extract=None, to=None)  # every row, next run
    assert PositionFile(spark, str(tmp_path / "state"), "items", "out").read() == {}
    with pytest.raises(ConfigurationError, match="no incremental extract `orders` in items"):
        reset_state(g, spark, env, log, extract="orders", to="5")
    with pytest.raises(ConfigurationError, match="not an integer position"):
        reset_state(g, spark, env, log, extract="items", to="soon")


def test_state_show_of_a_pipeline_without_incremental_extracts_says_so(
    spark: SparkSession, tmp_path: Path, log_stream: io.StringIO
) -> None:
    g = graph(tmp_path / "items.csv", {"out": tmp_path / "out"})
    plain = replace(
        g,
        extracts=(replace(g.extracts[0], extractor=FilesExtractor(str(tmp_path), "csv", SCHEMA)),),
    )
    show_state(plain, spark, Environment("test", "test.json"), EventLog(RunContext("items")))
    [said] = events(log_stream, "incremental_position")
    assert said["reason"] == "the pipeline has no incremental extract"


class Refusing(FilesLoader):
    """A load whose target refuses every write."""

    def load(self, df: DataFrame, mode: str) -> LoadResult:
        raise TerminalError("the target refused the write")

    def gates(self, spark: SparkSession, mode: str) -> bool:
        return False


def test_records_set_aside_go_before_the_loads_move_the_positions(
    spark: SparkSession, tmp_path: Path, log_stream: io.StringIO
) -> None:
    src, out = tmp_path / "items.csv", tmp_path / "out"
    write_items(src, range(1, 6))
    modest = Expectation("modest", "NOT (qty < 4) IS FALSE", "quarantine")
    g = graph(src, {"out": out})
    g = replace(g, extracts=(replace(g.extracts[0], expectations=(modest,)),))
    settings = {"quarantine_dir": str(tmp_path / "q")}
    failed = run(
        spark,
        replace(g, loads=(replace(g.loads[0], loader=Refusing(str(out), "parquet")),)),
        tmp_path,
        "r1",
        **settings,
    )
    assert failed.status is Status.FAILED
    assert not (tmp_path / "q" / "items" / "items" / "r1").exists()  # the next run sets them aside
    assert run(spark, g, tmp_path, "r2", **settings).status is Status.PARTIAL
    order = [
        e["event"]
        for e in events(log_stream)
        if e["event"] in ("records_quarantined", "step_finished")
    ]
    assert order[-2:] == ["records_quarantined", "step_finished"]  # before the load
    aside = spark.read.format("avro").load(str(tmp_path / "q" / "items" / "items" / "r2"))
    assert sorted(r.id for r in aside.collect()) == [4, 5]
    assert ids(spark, out) == [1, 2, 3]


def test_a_retry_counts_no_transform_only_a_load_committed_before_reads(
    spark: SparkSession, tmp_path: Path, log_stream: io.StringIO
) -> None:
    """Not incremental: attempt 1 commits `kept` and fails at `broken`; attempt 2 skips
    `kept`, and the transform only `kept` reads is never run, nor waited for."""
    src = tmp_path / "items.csv"
    write_items(src, range(1, 4))
    plain = FilesExtractor(str(src), "csv", SCHEMA, {"header": "true"})
    big = TransformStep("big", ("items",), lambda df: df.where("qty > 1"), SCHEMA)
    flaky = FlakyOnce(str(tmp_path / "broken"), "parquet")
    g = PipelineGraph(
        name="items",
        extracts=(ExtractStep("items", plain, SCHEMA),),
        transforms=(big,),
        loads=(
            LoadStep("kept", "big", FilesLoader(str(tmp_path / "kept"), "parquet"), "append"),
            LoadStep("broken", "items", flaky, "append"),
        ),
    )
    settings = Settings(stage_dir=str(tmp_path / "stage"))
    log = EventLog(RunContext("items", run_id="r1"))
    inner = BatchPipeline(g, spark, Environment("t", "t.json", settings=settings), log)
    report = RetryingPipeline(inner, RetryPolicy(1, 0.0), log, sleep=lambda _: None).run()
    assert report.status is Status.SUCCESS, report.error
    assert report.duration_ms < 60_000  # no wait on counts that never come
    assert ids(spark, tmp_path / "kept") == [2, 3] and ids(spark, tmp_path / "broken") == [1, 2, 3]
    skipped = events(log_stream, "step_skipped")
    assert [(e["step"], e["reason"]) for e in skipped] == [("kept", "committed earlier")]


class FlakyOnce(FilesLoader):
    """A load whose first write fails as a dropped connection would."""

    failed = False

    def load(self, df: DataFrame, mode: str) -> LoadResult:
        if not FlakyOnce.failed:
            FlakyOnce.failed = True
            raise TransientError("connection reset")
        return super().load(df, mode)

    def gates(self, spark: SparkSession, mode: str) -> bool:
        return False
