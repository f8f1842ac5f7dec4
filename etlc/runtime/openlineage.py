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
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pyspark.sql import SparkSession
from pyspark.sql.types import DataType, StructType

import etlc
from etlc.runtime.dataset_names import DatasetName
from etlc.runtime.environment import Environment
from etlc.runtime.errors import ConfigurationError
from etlc.runtime.graph import ColumnLineage, DatasetSchema, LoadStep, PipelineGraph
from etlc.runtime.logs import EventLog
from etlc.runtime.progress import duration_ms
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
SEND_TIMEOUT_S = 5.0

Post = Callable[[str, bytes], None]


def run_uuid(pipeline: str, run_id: str) -> str:
    return str(uuid.uuid5(_RUN_IDS, f"{pipeline}/{run_id}"))


def facet(kind: str, /, **fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": f"{_FACETS}/{FACET_SCHEMAS[kind]}", **fields}


def check_url(url: str, where: str) -> str:
    """The endpoint events are POSTed to: http(s), no user or password (it is logged)."""
    parts = urlsplit(url)
    if url and (parts.scheme not in ("http", "https") or not parts.hostname):
        raise ConfigurationError(f"{where}: write an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError(f"{where}: a URL with a user or password would be logged")
    return url


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
    schema: DatasetSchema
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
        post: Post | None = None,
    ) -> None:
        self.graph = graph
        self.log = log
        self.mode = mode
        self.url = check_url(env.settings.openlineage_url, f"{env.path}: `etlc.openlineage_url`")
        self.namespace = env.settings.openlineage_namespace
        self.interval_s = duration_ms(env.settings.openlineage_interval) / 1000
        self.post = post or _post
        self.spark_version = spark.version
        self.inputs = {
            ex.id: name for ex in graph.extracts if (name := ex.extractor.dataset(spark))
        }
        self.schemas = {ex.id: ex.schema for ex in graph.extracts}
        self.schemas.update({tr.id: tr.schema for tr in graph.transforms})
        by_name: dict[DatasetName, list[LoadStep]] = {}
        for ld in graph.loads:
            name = ld.loader.dataset(spark)
            if name is not None:
                by_name.setdefault(name, []).append(ld)
        self.outputs = [
            _Output(n, self.schemas[lds[0].input], tuple(lds)) for n, lds in sorted(by_name.items())
        ]
        self.sent_at = time.monotonic()

    def start(self) -> None:
        self._emit("START")

    def running(self) -> None:
        """A ``RUNNING`` event when the interval has passed since the last event."""
        if time.monotonic() - self.sent_at >= self.interval_s:
            self._emit("RUNNING")

    def finished(self, report: RunReport) -> None:
        kind = "FAIL" if report.status is Status.FAILED else "COMPLETE"
        self._emit(kind, report)

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
                "errorMessage", message=str(report.error), programmingLanguage="python"
            )
        processing = "STREAMING" if self.mode == "streaming" else "BATCH"
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
            "inputs": self._inputs(report),
            "outputs": [self._output(o, report) for o in self.outputs],
        }

    def _inputs(self, report: RunReport | None) -> list[dict[str, Any]]:
        read = _records(report, "extract", "records_in")
        out: dict[DatasetName, dict[str, Any]] = {}
        for ex in self.graph.extracts:
            name = self.inputs.get(ex.id)
            if name is None:
                continue
            entry = out.setdefault(name, _dataset(name, ex.schema))
            if ex.id in read:
                stats = entry.setdefault("inputFacets", {}).setdefault(
                    "inputStatistics", facet("inputStatistics", rowCount=0)
                )
                stats["rowCount"] += read[ex.id]
        return [out[n] for n in sorted(out)]

    def _output(self, output: _Output, report: RunReport | None) -> dict[str, Any]:
        entry = _dataset(output.name, output.schema)
        lineage = _merged(ld.lineage for ld in output.loads)
        if lineage is not None:
            entry["facets"]["columnLineage"] = column_lineage(lineage, self.inputs)
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
        if not self.url:
            return
        try:
            self.post(self.url, json.dumps(event, ensure_ascii=False).encode())
        except (OSError, ValueError) as exc:
            shown = urlsplit(self.url)._replace(query="", fragment="").geturl()  # no token
            self.log.warning("openlineage_not_sent", event_type=kind, url=shown, error=str(exc))


def _dataset(name: DatasetName, schema: DatasetSchema) -> dict[str, Any]:
    fields = schema_fields(schema.struct())
    return {
        "namespace": name.namespace,
        "name": name.name,
        "facets": {"schema": facet("schema", fields=fields)},
    }


def _records(report: RunReport | None, stage: str, key: str) -> dict[str, int]:
    if report is None:
        return {}
    out: dict[str, int] = {}
    for step in report.steps:
        value = getattr(step, key)
        if step.stage == stage and isinstance(value, int):
            out[step.step] = value
    return out


def _merged(lineages: Iterable[ColumnLineage | None]) -> ColumnLineage | None:
    """Loads that write one dataset: their columns' sources together."""
    known = [lin for lin in lineages if lin is not None]
    if not known:
        return None
    fields: dict[str, tuple[tuple[str, str, str], ...]] = {}
    for lin in known:
        for column, sources in lin.fields.items():
            fields[column] = tuple(sorted({*fields.get(column, ()), *sources}))
    dataset = tuple(sorted({s for lin in known for s in lin.dataset}))
    return ColumnLineage(fields, dataset)


def _now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def _post(url: str, body: bytes) -> None:
    """One POST of one event; anything but a 2xx answer is an error."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=SEND_TIMEOUT_S) as answer:
        if not 200 <= answer.status < 300:
            raise urllib.error.HTTPError(url, answer.status, answer.reason, answer.headers, None)
