"""OpenLineage run events: what a run read and wrote, column by column, as data platforms
collect lineage (Marquez, DataHub, Airflow's provider and the like).

A run sends ``START`` once its steps are bound, ``RUNNING`` at intervals while a stream runs,
and ``COMPLETE`` or ``FAIL`` when it ends. Each event names the run's input and output datasets
as their connectors name them (:mod:`etlc.runtime.dataset_names`), with their schemas, the
compiler's column lineage of every output (``ColumnLineage`` of its load) and, at the end, the
rows read and written. An event is a JSON log line ``openlineage`` (the run's file, and stdout
when it has JSON lines); with ``etlc.openlineage_url`` set it is also POSTed there.

Lineage is a by-product: an event that cannot be built or sent is a warning, never a failed
run. Events carry no secret: they hold names, types and counts, and pass the same scrubbing as
every log line before they leave.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.types import DataType, StructType

import etlc
from etlc.runtime.dataset_names import DatasetName
from etlc.runtime.environment import Environment
from etlc.runtime.errors import EtlcError
from etlc.runtime.graph import (
    ColumnLineage,
    LoadStep,
    PipelineGraph,
)
from etlc.runtime.lineage_sender import Post, Sender, post, shown
from etlc.runtime.logs import EventLog
from etlc.runtime.progress import duration_ms
from etlc.runtime.quarantine import quarantined_struct
from etlc.runtime.report import RunReport, Status
from etlc.vault.redaction import scrub_value

SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
_FACETS = "https://openlineage.io/spec/facets"
# Each facet etlc writes, and the version of its schema.
FACET_SCHEMAS = {
    "schema": "1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
    "columnLineage": "1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet",
    "inputStatistics": (
        "1-0-0/InputStatisticsInputDatasetFacet.json#/$defs/InputStatisticsInputDatasetFacet"
    ),
    "outputStatistics": (
        "1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet"
    ),
    "errorMessage": "1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
    "processing_engine": "1-1-1/ProcessingEngineRunFacet.json#/$defs/ProcessingEngineRunFacet",
    "jobType": "2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
}
PRODUCER = f"urn:etlc:{etlc.__version__}"
# A run's OpenLineage id is derived from its pipeline and etlc run id, so a system that only
# sees etlc's logs finds the same run.
_RUN_IDS = uuid.uuid5(uuid.NAMESPACE_URL, "urn:etlc:run")


def run_uuid(pipeline: str, run_id: str) -> str:
    return str(uuid.uuid5(_RUN_IDS, f"{pipeline}/{run_id}"))


def facet(kind: str, /, **fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": f"{_FACETS}/{FACET_SCHEMAS[kind]}", **fields}


def schema_fields(struct: StructType) -> list[dict[str, Any]]:
    """A Spark schema as the schema facet's fields (a struct's own fields nested)."""
    return [_field(f.name, f.dataType) for f in struct.fields]


def _field(name: str, kind: DataType) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "type": kind.simpleString()}
    if isinstance(kind, StructType):
        out["type"] = "struct"
        out["fields"] = schema_fields(kind)
    return out


def column_lineage(lineage: ColumnLineage, names: Mapping[str, DatasetName]) -> dict[str, Any]:
    """The column-lineage facet of one output: the compiler's sources, each extract named as
    its dataset (an extract etlc cannot name, a database query, is left out)."""

    def field(extract: str, column: str, kind: str, subtype: str) -> dict[str, Any]:
        name = names[extract]
        transformation = {"type": kind, "subtype": subtype, "description": "", "masking": False}
        return {
            "namespace": name.namespace,
            "name": name.name,
            "field": column,
            "transformations": [transformation],
        }

    fields = {
        column: {"inputFields": [field(e, c, "DIRECT", how) for e, c, how in sources if e in names]}
        for column, sources in lineage.fields.items()
        if any(e in names for e, _, _ in sources)
    }
    dataset = [field(e, c, "INDIRECT", how) for e, c, how in lineage.dataset if e in names]
    return facet("columnLineage", fields=fields, dataset=dataset)


@dataclass(frozen=True)
class _Output:
    name: DatasetName
    schemas: tuple[StructType, ...]  # of what each load that writes it reads
    loads: tuple[LoadStep, ...]


class RunLineage:
    """The lineage events of one run (see the module's docstring)."""

    def __init__(
        self,
        graph: PipelineGraph,
        spark: SparkSession,
        env: Environment,
        log: EventLog,
        *,
        mode: str,
        send: Post = post,
    ) -> None:
        self.graph = graph
        self.log = log
        self.mode = mode
        self.namespace = env.settings.openlineage_namespace
        self.interval_s = duration_ms(env.settings.openlineage_interval) / 1000
        self.spark_version = spark.version
        self.inputs = {
            ex.id: name for ex in graph.extracts if (name := ex.extractor.dataset(spark))
        }
        by_name: dict[DatasetName, list[LoadStep]] = {}
        for ld in graph.loads:
            name = ld.loader.dataset(spark)
            if name is not None:
                by_name.setdefault(name, []).append(ld)
        self.outputs = [
            _Output(n, tuple(_read_by(graph, ld) for ld in lds), tuple(lds))
            for n, lds in sorted(by_name.items())
        ]
        self.sender = _sender(env, log, send)
        self.sent_at = time.monotonic()

    def start(self) -> None:
        self._emit("START")

    def running(self) -> None:
        """A ``RUNNING`` event when the interval has passed since the last event."""
        if time.monotonic() - self.sent_at >= self.interval_s:
            self._emit("RUNNING")

    def finished(self, report: RunReport) -> None:
        """``COMPLETE`` (a partial run wrote its outputs too) or ``FAIL``, then what is still
        queued for the endpoint is sent, for a bounded time."""
        self._emit("FAIL" if report.status is Status.FAILED else "COMPLETE", report)
        if self.sender is not None:
            self.sender.close()

    # --- the event ----------------------------------------------------------------------

    def event(self, kind: str, report: RunReport | None = None) -> dict[str, Any]:
        ctx = self.log.context
        run_facets: dict[str, Any] = {
            "processing_engine": facet(
                "processing_engine",
                version=self.spark_version,
                name="spark",
                openlineageAdapterVersion=etlc.__version__,
            )
        }
        if report is not None and report.error is not None and kind == "FAIL":
            run_facets["errorMessage"] = facet(
                "errorMessage", message=_failure(report.error), programmingLanguage="python"
            )
        processing = "STREAMING" if self.mode == "streaming" else "BATCH"
        # A stream's RUNNING events only say it still runs: the datasets' facets were in START.
        detailed = kind != "RUNNING"
        return {
            "eventType": kind,
            "eventTime": _now(),
            "producer": PRODUCER,
            "schemaURL": f"{SPEC}#/$defs/RunEvent",
            "run": {"runId": run_uuid(ctx.pipeline, ctx.run_id), "facets": run_facets},
            "job": {
                "namespace": self.namespace,
                "name": ctx.pipeline,
                "facets": {
                    "jobType": facet(
                        "jobType", processingType=processing, integration="ETLC", jobType="JOB"
                    )
                },
            },
            "inputs": self._inputs(report, detailed),
            "outputs": [self._output(o, report, detailed) for o in self.outputs],
        }

    def _inputs(self, report: RunReport | None, detailed: bool) -> list[dict[str, Any]]:
        read = _records(report, "extract", "records_in")
        out: dict[DatasetName, dict[str, Any]] = {}
        for ex in self.graph.extracts:
            name = self.inputs.get(ex.id)
            if name is None:
                continue
            shape = (ex.schema.struct(),) if detailed else ()
            entry = out.setdefault(name, _dataset(name, shape))
            if ex.id in read:
                stats = entry.setdefault("inputFacets", {}).setdefault(
                    "inputStatistics", facet("inputStatistics", rowCount=0)
                )
                stats["rowCount"] += read[ex.id]
        return [out[n] for n in sorted(out)]

    def _output(self, output: _Output, report: RunReport | None, detailed: bool) -> dict[str, Any]:
        entry = _dataset(output.name, output.schemas if detailed else ())
        lineage = merged(ld.lineage for ld in output.loads)
        if lineage is not None and detailed:
            entry.setdefault("facets", {})["columnLineage"] = column_lineage(lineage, self.inputs)
        written = _records(report, "load", "records_out")
        if any(ld.id in written for ld in output.loads):
            rows = sum(written.get(ld.id, 0) for ld in output.loads)
            entry["outputFacets"] = {"outputStatistics": facet("outputStatistics", rowCount=rows)}
        return entry

    def _emit(self, kind: str, report: RunReport | None = None) -> None:
        self.sent_at = time.monotonic()
        try:
            event = scrub_value(self.event(kind, report))
        except Exception as exc:  # lineage never fails a run
            self.log.warning("openlineage_failed", event_type=kind, error=str(exc))
            return
        self.log.info("openlineage", event_type=kind, openlineage=event)
        if self.sender is not None:
            self.sender.put(kind, json.dumps(event, ensure_ascii=False).encode())


def _sender(env: Environment, log: EventLog, send: Post) -> Sender | None:
    """The endpoint's sender, with the API key from the vault; events stay log lines when
    there is no endpoint, or its key cannot be read (a warning)."""
    url = env.settings.openlineage_url
    if not url:
        return None
    headers: dict[str, str] = {}
    if env.settings.openlineage_api_key:
        try:
            key = env.secret(env.settings.openlineage_api_key)
        except EtlcError as exc:
            log.warning("openlineage_not_sent", url=shown(url), error=str(exc))
            return None
        headers["Authorization"] = f"Bearer {key.reveal()}"
    return Sender(url, log, headers, send)


def _failure(error: EtlcError) -> str:
    """Why a run failed, as an event sent to another system says it: the kind of error and
    where, never its text, which may quote rows (a database's duplicate key, say)."""
    where = f" at step {error.step}" if error.step else ""
    return f"{error.kind} error{where} ({type(error).__name__}); the run's log has the details"


def _read_by(graph: PipelineGraph, load: LoadStep) -> StructType:
    """The columns ``load`` writes: its input's, or what a quarantined load reads of it."""
    made = graph.made(load.input)
    struct = made.schema.struct()
    if not load.quarantined:
        return struct
    return quarantined_struct(struct, raw_text=made.keeps_raw_text)


def _dataset(name: DatasetName, schemas: tuple[StructType, ...]) -> dict[str, Any]:
    entry: dict[str, Any] = {"namespace": name.namespace, "name": name.name}
    if schemas:
        fields: dict[str, dict[str, Any]] = {}
        for schema in schemas:  # several loads into one dataset: every column they write
            for f in schema_fields(schema):
                fields.setdefault(f["name"], f)
        entry["facets"] = {"schema": facet("schema", fields=list(fields.values()))}
    return entry


def _records(report: RunReport | None, stage: str, key: str) -> dict[str, int]:
    if report is None:
        return {}
    out: dict[str, int] = {}
    for step in report.steps:
        value = getattr(step, key)
        if step.stage == stage and isinstance(value, int):
            out[step.step] = value
    return out


# The strongest way a value was made wins where several loads name one source column.
_STRENGTH = {"IDENTITY": 0, "TRANSFORMATION": 1, "AGGREGATION": 2}


def merged(lineages: Iterable[ColumnLineage | None]) -> ColumnLineage | None:
    """Loads that write one dataset: their columns' sources together, each source column once
    per output column (with the strongest subtype)."""
    known = [lin for lin in lineages if lin is not None]
    if not known:
        return None
    fields: dict[str, dict[tuple[str, str], str]] = {}
    for lin in known:
        for column, sources in lin.fields.items():
            found = fields.setdefault(column, {})
            for extract, source, how in sources:
                before = found.get((extract, source), how)
                found[(extract, source)] = max(before, how, key=lambda h: _STRENGTH.get(h, 0))
    dataset = tuple(sorted({s for lin in known for s in lin.dataset}))
    return ColumnLineage(
        {c: tuple((e, s, how) for (e, s), how in sorted(f.items())) for c, f in fields.items()},
        dataset,
    )


def _now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
