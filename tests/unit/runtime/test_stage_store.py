"""The stage store's write: validity partitions, counts, and the session left as it was."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from etlc.runtime.stage_store import StageStore

RULES = (("rule:positive", "(n > 0) IS NOT FALSE"),)


@pytest.mark.parametrize("before", [None, "7"])
def test_a_validated_write_counts_and_leaves_the_session_conf_as_it_was(
    spark: Any, tmp_path: Path, before: str | None
) -> None:
    key = "spark.sql.maxConcurrentOutputFileWriters"
    if before is not None:
        spark.conf.set(key, before)
    try:
        store = StageStore(spark, str(tmp_path), "run", 1)
        df = spark.createDataFrame([(1,), (-2,), (3,)], "n INT")
        result = store.write_validated("numbers", df, RULES)
        assert (result.records, result.invalid, result.violations) == (3, 1, {"rule:positive": 1})
        assert spark.conf.get(key, None) == before
        valid = store.read_valid("numbers", df.schema)
        assert sorted(r.n for r in valid.collect()) == [1, 3]
    finally:
        spark.conf.unset(key)
