"""The demo: generate orders and customers, run ``orders_by_country``, check the result.

The data is generated here with a fixed seed, and the expected result is computed here in
plain Python, independently of Spark, so the demo proves the whole path end to end.
"""

from __future__ import annotations

import csv
import json
import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

COUNTRIES = ("DE", "FR", "NL", "PL", "SE", "ES", "IT", "PT")
STATUSES = ("NEW", "PAID", "SHIPPED", "CANCELLED")
SEGMENTS = ("CONSUMER", "BUSINESS")
ORDER_HEADER = ("order_id", "customer_id", "amount", "status", "ordered_at", "coupon")
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Order:
    order_id: int
    customer_id: int
    amount: Decimal
    status: str
    ordered_at: datetime
    coupon: str | None


@dataclass(frozen=True)
class Customer:
    customer_id: int
    name: str
    country: str
    segment: str


@dataclass(frozen=True)
class DemoData:
    orders: list[Order]
    customers: list[Customer]


def generate(orders: int = 100_000, customers: int = 2_000, seed: int = 42) -> DemoData:
    rng = random.Random(seed)
    people = [
        Customer(i, f"customer {i}", rng.choice(COUNTRIES), rng.choice(SEGMENTS))
        for i in range(1, customers + 1)
    ]
    # About 2% of orders reference customers that do not exist (for the anti-join example).
    rows = [
        Order(
            order_id=i,
            customer_id=rng.randint(1, int(customers * 1.02)),
            amount=Decimal(rng.randint(100, 100_000)) * CENT,
            status=rng.choices(STATUSES, weights=(2, 5, 4, 1))[0],
            ordered_at=START + timedelta(seconds=rng.randint(0, 7 * 86_400 - 1)),
            coupon=rng.choice((None, None, None, "WELCOME", "SPRING")),
        )
        for i in range(1, orders + 1)
    ]
    return DemoData(rows, people)


def write(data: DemoData, directory: Path, files: int = 4) -> None:
    """Orders as ``files`` CSV files with a header; customers as JSON lines."""
    orders_dir = directory / "orders"
    orders_dir.mkdir(parents=True, exist_ok=True)
    for old in orders_dir.glob("*.csv"):
        old.unlink()
    for part in range(files):
        with (orders_dir / f"part-{part:03d}.csv").open("w", newline="", encoding="utf-8") as fh:
            out = csv.writer(fh)
            out.writerow(ORDER_HEADER)
            for o in data.orders[part::files]:
                out.writerow(
                    (
                        o.order_id,
                        o.customer_id,
                        f"{o.amount:.2f}",
                        o.status,
                        o.ordered_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        o.coupon or "",
                    )
                )
    with (directory / "customers.json").open("w", encoding="utf-8") as fh:
        for c in data.customers:
            fh.write(json.dumps(vars(c)) + "\n")


def expected_by_country(data: DemoData) -> dict[str, dict[str, Decimal | int]]:
    """What ``orders_by_country`` must produce, computed without Spark."""
    country = {c.customer_id: c.country for c in data.customers}
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    with_vat: dict[str, Decimal] = defaultdict(Decimal)
    orders: dict[str, int] = defaultdict(int)
    buyers: dict[str, set[int]] = defaultdict(set)
    for o in data.orders:
        if o.status == "CANCELLED" or o.customer_id not in country:
            continue
        key = country[o.customer_id]
        revenue[key] += o.amount
        with_vat[key] += (o.amount * Decimal("1.2")).quantize(CENT, rounding=ROUND_HALF_UP)
        orders[key] += 1
        buyers[key].add(o.customer_id)
    return {
        k: {
            "revenue": revenue[k],
            "revenue_with_vat": with_vat[k],
            "orders": orders[k],
            "customers": len(buyers[k]),
        }
        for k in sorted(revenue)
    }


def read_by_country(directory: Path) -> dict[str, dict[str, Decimal | int]]:
    """Read the demo's CSV output back."""
    parts = sorted(directory.glob("part-*.csv"))
    if not parts:
        raise FileNotFoundError(f"no output part files in {directory}")
    result: dict[str, dict[str, Decimal | int]] = {}
    for part in parts:
        with part.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                result[row["country"]] = {
                    "revenue": Decimal(row["revenue"]),
                    "revenue_with_vat": Decimal(row["revenue_with_vat"]),
                    "orders": int(row["orders"]),
                    "customers": int(row["customers"]),
                }
    return dict(sorted(result.items()))
