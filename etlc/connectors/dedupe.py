"""One row per key before an upsert: a target must never see the same key twice in one batch.

Which row survives is decided by data, never by row order: Spark does not keep input order
through joins and shuffles (a broadcast hash join emits a key's matches newest first, for
one), so "the last row" only means something with a column that says which row is later.
With ``sequence_by`` the row with its greatest value wins; rows tied on it, or every row when
there is no ``sequence_by``, are ordered by all their columns, so a retry picks the same row.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

from pyspark.sql import Column, DataFrame, Observation, Window
from pyspark.sql import functions as F

from etlc.runtime.observed import observed_metrics

_RANK = "_etlc_rank"


def _count() -> Column:
    return F.count(F.lit(1)).alias("records")


def none_superseded() -> int:
    """The superseded count of a write that does not de-duplicate."""
    return 0


def latest_per_key(
    df: DataFrame, keys: Sequence[str], sequence_by: str | None = None
) -> tuple[DataFrame, Callable[[], int]]:
    """``df`` with one row per ``keys``, and a function giving (once the result has been
    written) how many rows were superseded. Both counts ride on the write's own job."""
    tag = uuid.uuid4().hex[:12]
    seen, kept = Observation(f"etlc_in_{tag}"), Observation(f"etlc_kept_{tag}")
    order = [F.col(f"`{sequence_by}`").desc_nulls_last()] if sequence_by else []
    order += [F.col(f"`{c}`").desc_nulls_last() for c in df.columns if c not in keys]
    spec = Window.partitionBy(*(F.col(f"`{k}`") for k in keys)).orderBy(*order)
    ranked = df.observe(seen, _count()).withColumn(_RANK, F.row_number().over(spec))
    latest = ranked.where(F.col(_RANK) == 1).drop(_RANK).observe(kept, _count())

    def superseded() -> int:
        before = int(observed_metrics(seen, "upsert").get("records", 0))
        return before - int(observed_metrics(kept, "upsert").get("records", 0))

    return latest, superseded
