"""PostgreSQL: reads through Spark's JDBC source; loads through a staging table and one
transaction, upserting with ``INSERT ... ON CONFLICT (keys) DO UPDATE``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from etlc.connectors.jdbc import Dialect, JdbcExtractor, JdbcLoader

_TARGET = '"etlc_target"'  # the upsert target's alias, for the sequence condition


class PostgresDialect(Dialect):
    system: ClassVar[str] = "postgres"
    driver: ClassVar[str] = "org.postgresql.Driver"
    scheme: ClassVar[str] = "jdbc:postgresql"
    batch_properties: ClassVar[Mapping[str, str]] = {"reWriteBatchedInserts": "true"}

    def upsert(
        self,
        target: str,
        staging: str,
        names: Sequence[str],
        keys: Sequence[str],
        where: str,
        *,
        sequence_by: str | None = None,
    ) -> str:
        updates = [n for n in names if n not in keys]
        if not updates:
            action = "DO NOTHING"
        else:
            action = "DO UPDATE SET " + ", ".join(
                f"{self.quote(n)} = EXCLUDED.{self.quote(n)}" for n in updates
            )
            if sequence_by is not None:
                seq = self.quote(sequence_by)
                action += f" WHERE {_TARGET}.{seq} IS NULL OR {_TARGET}.{seq} <= EXCLUDED.{seq}"
        cols = self.columns(names)
        return (
            f"INSERT INTO {self.quote(target)} AS {_TARGET} ({cols}) SELECT {cols} "
            f"FROM {staging}{where} ON CONFLICT ({self.columns(keys)}) {action}"
        )

    def constraint(self, error: Any) -> str:
        try:
            message = error.getServerErrorMessage()
            if message is None:
                return ""
            if message.getConstraint():
                return str(message.getConstraint())
            # A NOT NULL violation has no constraint name; the column identifies it.
            return f"not null: {message.getColumn()}" if message.getColumn() else ""
        except Exception:  # not a PSQLException, or no detail from the server
            return ""


class PostgresExtractor(JdbcExtractor):
    dialect: ClassVar[Dialect] = PostgresDialect()


class PostgresLoader(JdbcLoader):
    dialect: ClassVar[Dialect] = PostgresDialect()
