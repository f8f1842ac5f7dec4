"""Test access to the local PostgreSQL and MariaDB started by `scripts/services.sh up`.

Credentials come from `.services/credentials.json`; the tests put them into a vault of their
own, exactly as an operator would, and the drivers read them from there.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
START_HINT = "start the services with `make services-up` (logs in .services/)"


def credentials() -> dict[str, Any]:
    path = Path(
        os.environ.get("ETLC_SERVICES_CREDENTIALS", ROOT / ".services" / "credentials.json")
    )
    if not path.is_file():
        pytest.fail(f"no credentials file at {path}: {START_HINT}", pytrace=False)
    return dict(json.loads(path.read_text(encoding="utf-8")))


@contextmanager
def postgres(creds: dict[str, Any]) -> Iterator[Any]:
    import psycopg

    pg = creds["postgres"]
    with psycopg.connect(
        host=pg["host"],
        port=int(pg["port"]),
        user=pg["user"],
        password=pg["password"],
        dbname=pg["database"],
        autocommit=True,
    ) as conn:
        yield conn


@contextmanager
def mysql(creds: dict[str, Any]) -> Iterator[Any]:
    import pymysql

    my = creds["mysql"]
    conn = pymysql.connect(
        host=my["host"],
        port=int(my["port"]),
        user=my["user"],
        password=my["password"],
        database=my["database"],
        autocommit=True,
    )
    try:
        yield conn
    finally:
        conn.close()


def seed_vault(path: Path, creds: dict[str, Any]) -> str:
    """A vault at ``path`` holding the services' secrets, as an operator would keep them
    (``services/<system>#<key>``); returns its master password."""
    from etlc.vault import FileVault, MasterKey, Reference, Secret
    from tests.leak_canary import FAST_KDF

    password = secrets.token_urlsafe(16)
    store = FileVault.create(path, MasterKey.from_password(password), FAST_KDF)
    entries = {
        "services/mysql#password": creds["mysql"]["password"],
        "services/postgres#password": creds["postgres"]["password"],
        "services/s3#access_key": creds["s3"]["access_key"],
        "services/s3#secret_key": creds["s3"]["secret_key"],
    }
    for name, value in entries.items():
        store.put(Reference.entry(name, str(path)), Secret(value))
    return password


# Spark settings of every test environment file: few shuffle partitions for small data, and no
# web UI (no test reads it; each driver would start a Jetty server for it).
TEST_SPARK_CONF = {"spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false"}


def env_file(
    path: Path,
    creds: dict[str, Any],
    vault: Path,
    variables: dict[str, str],
    spark: dict[str, str] | None = None,
    **settings: Any,
) -> Path:
    """An environment file with both database profiles, passwords read from ``vault``; its
    Spark settings are ``spark`` (default: TEST_SPARK_CONF)."""
    doc = {
        "variables": variables,
        "spark": dict(TEST_SPARK_CONF if spark is None else spark),
        "etlc": settings,
        "vault": {"backend": "file", "path": str(vault)},
        "connections": profiles(creds),
    }
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def pg_rows(creds: dict[str, Any], sql: str) -> list[tuple[Any, ...]]:
    with postgres(creds) as conn:
        return [tuple(r) for r in conn.execute(sql).fetchall()]


def my_rows(creds: dict[str, Any], sql: str) -> list[tuple[Any, ...]]:
    with mysql(creds) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return [tuple(r) for r in cur.fetchall()]


def my_execute(
    creds: dict[str, Any],
    statements: Sequence[str],
    rows: Sequence[tuple[Any, ...]] = (),
    insert: str = "",
) -> None:
    with mysql(creds) as conn, conn.cursor() as cur:
        for s in statements:
            cur.execute(s)
        if rows:
            cur.executemany(insert, rows)


def profiles(creds: dict[str, Any]) -> dict[str, Any]:
    """Connection profiles for an environment file, passwords as vault references."""
    pg, my = creds["postgres"], creds["mysql"]
    return {
        "crm": {
            "system": "mysql",
            "host": my["host"],
            "port": int(my["port"]),
            "database": my["database"],
            "user": my["user"],
            "password": "vault://services/mysql#password",
        },
        "warehouse": {
            "system": "postgres",
            "host": pg["host"],
            "port": int(pg["port"]),
            "database": pg["database"],
            "user": pg["user"],
            "password": "vault://services/postgres#password",
        },
    }
