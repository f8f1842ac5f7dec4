"""The `expect` block: rules typed against the step's output, names unique in the step,
policies resolved (the rule's, the block's, then fail), and where the block may stand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from etlc.dsl.plan import PlannedExpectation
from tests.unit.dsl.test_checker import ORDERS, check, codes, definition, env_dir, only, transform

__all__ = ["env_dir"]  # the fixture, used by name


def rules(*items: dict[str, Any], policy: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"rules": list(items)}
    if policy is not None:
        block["policy"] = policy
    return block


def test_rules_are_lowered_with_their_policies_on_extracts_and_transforms(
    tmp_path: Path, env_dir: Path
) -> None:
    orders = {
        **ORDERS,
        "expect": rules(
            {"name": "small", "check": "amount < 900"},
            {"name": "coupon", "check": "coupon IS NOT NULL", "policy": "warn"},
            policy="drop",
        ),
    }
    paid = {
        "id": "paid",
        "type": "filter",
        "input": "orders",
        "condition": "status = 'PAID'",
        "expect": rules({"name": "positive", "check": "amount > 0"}),
    }
    result = check(tmp_path, env_dir, {**transform(paid), "extract": [orders]})
    assert result.ok, result.diagnostics
    assert result.plan.step("orders").expectations == (
        PlannedExpectation("small", "NOT (amount < 900) IS FALSE", "drop"),
        PlannedExpectation("coupon", "NOT (NOT coupon IS NULL) IS FALSE", "warn"),
    )
    # No policy anywhere: fail, as the schema's own rules.
    assert result.plan.step("paid").expectations == (
        PlannedExpectation("positive", "NOT (amount > 0) IS FALSE", "fail"),
    )
    assert result.plan.step("load_1_paid").expectations == ()


def test_a_rule_reads_the_steps_output_not_its_input(tmp_path: Path, env_dir: Path) -> None:
    derived = {
        "id": "vat",
        "type": "derive",
        "input": "orders",
        "columns": {"gross": "amount * 1.2"},
        "expect": rules({"name": "gross_above_net", "check": "gross >= amount"}),
    }
    assert check(tmp_path, env_dir, transform(derived)).ok
    unknown = {**ORDERS, "expect": rules({"name": "gross", "check": "gross > 0"})}
    result = check(tmp_path, env_dir, definition(extract=[unknown]))
    assert only(result, "E302").span.line > 0


def test_a_duplicate_name_and_a_bad_condition_each_get_their_diagnostic(
    tmp_path: Path, env_dir: Path
) -> None:
    orders = {
        **ORDERS,
        "expect": rules(
            {"name": "a", "check": "amount > 0"},
            {"name": "a", "check": "amount > 1"},
            {"name": "b", "check": "amount + 1"},
            {"name": "c", "check": "sum(amount) > 0"},
        ),
    }
    result = check(tmp_path, env_dir, definition(extract=[orders]))
    assert sorted(codes(result)) == ["E217", "E304", "E305"]
    duplicate = only(result, "E217")
    assert duplicate.param("rule") == "a" and "two expectations named `a`" in duplicate.message
    assert result.plan is None


def test_the_block_stands_on_extracts_and_transforms_only(tmp_path: Path, env_dir: Path) -> None:
    load = {
        "input": "orders",
        "type": "files",
        "path": "/out",
        "format": "parquet",
        "mode": "overwrite",
        "expect": rules({"name": "a", "check": "amount > 0"}),
    }
    result = check(tmp_path, env_dir, definition(load=[load]))
    assert "`expect`" in only(result, "E101").message


def test_shape_unknown_policy_empty_rules_and_bad_names(tmp_path: Path, env_dir: Path) -> None:
    for block, code in (
        (rules({"name": "a", "check": "amount > 0", "policy": "ignore"}), "E104"),
        ({"rules": []}, "E106"),
        (rules({"name": "has space", "check": "amount > 0"}), "E106"),
        (rules({"name": "a", "check": "amount > 0", "severity": "warn"}), "E101"),
        ({"policy": "warn"}, "E103"),
    ):
        result = check(tmp_path, env_dir, definition(extract=[{**ORDERS, "expect": block}]))
        assert codes(result) == [code], (block, result.diagnostics)


def test_on_invalid_is_lowered_for_an_extract_and_fail_without_it(
    tmp_path: Path, env_dir: Path
) -> None:
    orders = {**ORDERS, "on_invalid": "quarantine"}
    result = check(tmp_path, env_dir, definition(extract=[orders]))
    assert result.ok, result.diagnostics
    assert result.plan.step("orders").on_invalid == "quarantine"
    assert check(tmp_path, env_dir, definition()).plan.step("orders").on_invalid == "fail"
    bad = {**ORDERS, "on_invalid": "warn"}  # a record that breaks the schema is never kept
    assert codes(check(tmp_path, env_dir, definition(extract=[bad]))) == ["E104"]


def test_drop_and_quarantine_rules_decide_rows_in_the_lineage_warn_does_not(
    tmp_path: Path, env_dir: Path
) -> None:
    def gross(policy: str) -> dict[str, Any]:
        rule = {"name": "modest", "check": "gross < 1000", "policy": policy}
        return {
            "id": "vat",
            "type": "derive",
            "input": "orders",
            "columns": {"gross": "amount * 1.2"},
            "expect": rules(rule),
        }

    for policy, decided in (("drop", True), ("quarantine", True), ("warn", False)):
        plan = check(tmp_path, env_dir, transform(gross(policy))).plan
        rows = {(s.dataset, s.column, s.how) for s in plan.step("vat").lineage.rows}
        assert (("orders", "amount", "filter") in rows) is decided, policy


def test_an_extracts_drop_rules_and_on_invalid_decide_rows_in_the_load_lineage(
    tmp_path: Path, env_dir: Path
) -> None:
    from etlc.dsl.lineage import output_lineage

    def decided(extract: dict[str, Any]) -> set[tuple[str, str, str]]:
        plan = check(tmp_path, env_dir, definition(extract=[extract])).plan
        (load,) = plan.by_role("load")
        return set(output_lineage(plan.steps, load.id).dataset)

    small = rules({"name": "small", "check": "amount < 900", "policy": "drop"})
    assert ("orders", "amount", "FILTER") in decided({**ORDERS, "expect": small})
    warned = rules({"name": "small", "check": "amount < 900", "policy": "warn"})
    assert ("orders", "amount", "FILTER") not in decided({**ORDERS, "expect": warned})
    assert decided(ORDERS) == set()
    # Under on_invalid, a record missing a required value is left out: that column decides.
    dropping = decided({**ORDERS, "on_invalid": "drop"})
    assert ("orders", "order_id", "FILTER") in dropping
    assert ("orders", "coupon", "FILTER") not in dropping  # optional: never left out


def test_parse_is_the_schemas_rule_name_and_no_expectations(tmp_path: Path, env_dir: Path) -> None:
    orders = {**ORDERS, "expect": rules({"name": "parse", "check": "amount > 0"})}
    refused = only(check(tmp_path, env_dir, definition(extract=[orders])), "E217")
    assert refused.param("rule") == "parse" and "cannot be parsed" in refused.message


HELD_LOAD = {
    "id": "rejected",
    "input": "paid",
    "quarantined": True,
    "type": "files",
    "path": "/rejected",
    "format": "parquet",
    "mode": "append",
}


def paid(policy: str = "quarantine") -> dict[str, Any]:
    return {
        "id": "paid",
        "type": "filter",
        "input": "orders",
        "condition": "status = 'PAID'",
        "expect": rules({"name": "known", "check": "coupon IN ('WELCOME')", "policy": policy}),
    }


def with_held_load(*loads: dict[str, Any], **extract: Any) -> dict[str, Any]:
    doc = transform(paid())
    doc["extract"] = [{**ORDERS, **extract}]
    doc["load"] = [*doc["load"], *(dict(load) for load in loads)]  # each test's own
    return doc


def test_a_quarantined_load_reads_its_inputs_records_set_aside_with_what_quarantine_adds(
    tmp_path: Path, env_dir: Path
) -> None:
    result = check(tmp_path, env_dir, with_held_load(HELD_LOAD))
    assert result.ok, result.diagnostics
    load = result.plan.step("rejected")
    assert load.quarantined and not result.plan.step("load_1_paid").quarantined
    columns = [(f.name, f.type.kind, f.type.nullable) for f in load.schema.fields]
    assert columns[:2] == [("order_id", "long", True), ("customer_id", "long", True)]
    assert columns[-3:] == [
        ("_etlc_rule", "string", False),
        ("_etlc_step", "string", False),
        ("_etlc_run_id", "string", False),
    ]
    assert "_etlc_corrupt" not in [c for c, _, _ in columns]  # a transform's were all parsed
    # Quarantine's own columns come from no column of `paid`.
    assert load.lineage.sources("_etlc_rule") == ()
    assert [s.dataset for s in load.lineage.sources("order_id")] == ["paid"]
    # The driver says so.
    from etlc.codegen.render import render_driver

    assert "quarantined=True" in render_driver(result.plan, tmp_path)


def test_a_quarantined_load_of_an_extract_under_on_invalid_keeps_the_raw_text(
    tmp_path: Path, env_dir: Path
) -> None:
    held = {**HELD_LOAD, "input": "orders", "id": "unparsed"}
    result = check(tmp_path, env_dir, with_held_load(held, on_invalid="quarantine"))
    assert result.ok, result.diagnostics
    names = [f.name for f in result.plan.step("unparsed").schema.fields]
    assert names[-4:] == ["_etlc_corrupt", "_etlc_rule", "_etlc_step", "_etlc_run_id"]


def test_a_quarantined_load_of_a_step_that_sets_nothing_aside_is_refused(
    tmp_path: Path, env_dir: Path
) -> None:
    doc = with_held_load(HELD_LOAD)
    doc["transform"] = [paid("drop")]
    refused = only(check(tmp_path, env_dir, doc), "E218")
    assert "no quarantine rule" in refused.message and refused.param("step") == "rejected"
    assert '"policy": "quarantine"' in refused.hint
    line = json.dumps(doc, indent=2).splitlines()[refused.span.line - 1]
    assert '"quarantined": true' in line
    # Without the flag it is an ordinary load of `paid`.
    doc["load"][-1]["quarantined"] = False
    assert check(tmp_path, env_dir, doc).ok


def test_a_quarantined_load_of_a_step_with_a_column_quarantine_adds_is_refused(
    tmp_path: Path, env_dir: Path
) -> None:
    doc = with_held_load(HELD_LOAD)
    own = {"id": "own", "type": "derive", "input": "orders", "columns": {"_etlc_step": "'x'"}}
    doc["transform"] = [own, {**paid(), "input": "own"}]
    refused = only(check(tmp_path, env_dir, doc), "E218")
    assert refused.param("column") == "_etlc_step" and "rename" in refused.hint
    assert refused.param("step") == "paid"  # at the step that sets records aside
    # So without a quarantined load, and for etlc's own marker column too.
    doc["load"] = doc["load"][:1]
    doc["transform"][0]["columns"] = {"_etlc_quarantine": "'x'"}
    assert only(check(tmp_path, env_dir, doc), "E218").param("column") == "_etlc_quarantine"


def test_a_quarantined_kafka_load_is_refused(tmp_path: Path, env_dir: Path) -> None:
    kafka = {"id": "rejected", "input": "paid", "quarantined": True, "type": "kafka"}
    doc = with_held_load({**kafka, "connection": "events", "topic": "rejects", "mode": "append"})
    refused = [d for d in check(tmp_path, env_dir, doc).diagnostics if d.code == "E218"]
    assert len(refused) == 1 and "Kafka" in refused[0].message, refused
