"""The demo's data generator and its independent expected-result computation."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pytest

from etlc import demo


def test_generation_is_deterministic() -> None:
    assert demo.generate(orders=50, customers=5, seed=1) == demo.generate(
        orders=50, customers=5, seed=1
    )
    assert demo.generate(orders=50, customers=5, seed=1) != demo.generate(
        orders=50, customers=5, seed=2
    )


def test_write_splits_orders_and_writes_customers(tmp_path: Path) -> None:
    data = demo.generate(orders=10, customers=3)
    demo.write(data, tmp_path, files=3)
    parts = sorted((tmp_path / "orders").glob("*.csv"))
    assert len(parts) == 3
    rows = [r for p in parts for r in csv.DictReader(p.open())]
    assert sorted(int(r["order_id"]) for r in rows) == list(range(1, 11))
    assert rows[0].keys() == set(demo.ORDER_HEADER)
    customers = [
        json.loads(line) for line in (tmp_path / "customers.json").read_text().splitlines()
    ]
    assert [c["customer_id"] for c in customers] == [1, 2, 3]


def test_expected_result_and_reading_it_back(tmp_path: Path) -> None:
    data = demo.DemoData(
        orders=[
            demo.Order(1, 1, Decimal("10.00"), "PAID", demo.START, None),
            demo.Order(2, 1, Decimal("0.05"), "NEW", demo.START, None),
            demo.Order(3, 2, Decimal("5.00"), "CANCELLED", demo.START, None),
            demo.Order(4, 9, Decimal("7.00"), "PAID", demo.START, None),
        ],
        customers=[
            demo.Customer(1, "a", "DE", "CONSUMER"),
            demo.Customer(2, "b", "FR", "BUSINESS"),
        ],
    )
    expected = demo.expected_by_country(data)
    # 0.05 * 1.2 = 0.060 -> 0.06; only DE has live orders with known customers.
    assert expected == {
        "DE": {
            "revenue": Decimal("10.05"),
            "revenue_with_vat": Decimal("12.06"),
            "orders": 2,
            "customers": 1,
        }
    }
    out = tmp_path / "out"
    out.mkdir()
    (out / "part-00000.csv").write_text(
        "country,revenue,revenue_with_vat,orders,customers\nDE,10.05,12.06,2,1\n"
    )
    assert demo.read_by_country(out) == expected
    with pytest.raises(FileNotFoundError):
        demo.read_by_country(tmp_path)
