"""The columns a record set aside in quarantine gains, named once for both sides: the compiler
gives a quarantined load's input these columns, and the runtime writes them.

After the dataset's own columns: the raw text of a record the reader could not parse (an
extract whose ``on_invalid`` is quarantine; null for a record that was parsed), then the rule
it broke, its step and the run that set it aside.
"""

from __future__ import annotations

RESERVED_PREFIX = "_etlc_"  # no column of a step that sets records aside starts so
RAW_TEXT = "_etlc_corrupt"
RULE = "_etlc_rule"
STEP = "_etlc_step"
RUN_ID = "_etlc_run_id"
ADDED = (RULE, STEP, RUN_ID)


def load_columns(columns: tuple[str, ...], raw_text: bool) -> tuple[str, ...]:
    """The columns of a quarantined load's input, in order: the step's ``columns``, the raw
    text where the step is an extract under ``on_invalid``, then ``ADDED``."""
    return (*columns, *((RAW_TEXT,) if raw_text else ()), *ADDED)
