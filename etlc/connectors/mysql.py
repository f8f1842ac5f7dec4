"""MySQL and MariaDB (MariaDB Connector/J): reads through Spark's JDBC source; loads through a
staging table and one transaction, upserting with ``INSERT ... ON DUPLICATE KEY UPDATE``."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from etlc.connectors.jdbc import Dialect, JdbcExtractor, JdbcLoader

# MySQL reports the violated key only inside its message; take the name, never the values.
# Duplicate keys (both), a MariaDB CHECK ("CONSTRAINT `x` failed"), a MySQL 8 one ("Check
# constraint 'x' is violated").
_KEY_NAME = re.compile(r"for key '([^']+)'|CONSTRAINT `([^`]+)`|[Cc]heck constraint '([^']+)'")


class MySqlDialect(Dialect):
    system: ClassVar[str] = "mysql"
    driver: ClassVar[str] = "org.mariadb.jdbc.Driver"
    scheme: ClassVar[str] = "jdbc:mysql"
    catalog_is_schema: ClassVar[bool] = True
    case_insensitive_names: ClassVar[bool] = True
    long_text: ClassVar[str] = "LONGTEXT"  # TEXT stops at 64 KiB
    # An UPDATE counts the rows it matched, not those it changed: the positions'
    # compare-and-set reads that count (the driver's default, which a profile could turn off).
    fixed_properties: ClassVar[Mapping[str, str]] = {"useAffectedRows": "false"}
    # rewriteBatchedStatements: multi-row inserts for MySQL Connector/J (MariaDB's driver
    # batches by default). permitMysqlScheme lets MariaDB's driver accept a jdbc:mysql URL,
    # which is what makes Spark pick its MySQL dialect (backtick quoting, MySQL types).
    # allowLocalInfile: off on every connection (MariaDB Connector/J 3 turns it on by
    # default) but the bulk path's, which hands the driver the stream to send.
    batch_properties: ClassVar[Mapping[str, str]] = {
        "rewriteBatchedStatements": "true",
        "permitMysqlScheme": "true",
        "allowLocalInfile": "false",
    }

    bulk_properties: ClassVar[Mapping[str, str]] = {"allowLocalInfile": "true"}
    bulk_check: ClassVar[str | None] = "SELECT @@GLOBAL.local_infile"

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
        updates = [n for n in names if n not in keys] or list(keys)
        # The target's columns are qualified: the SELECT's staging table has the same names,
        # and MySQL refuses an unqualified one there as ambiguous.
        table = self.quote(target)

        def current(n: str) -> str:
            return f"{table}.{self.quote(n)}"

        if sequence_by is None:
            assignments = [f"{current(n)} = VALUES({self.quote(n)})" for n in updates]
        else:
            # MySQL assigns left to right, each seeing the ones before: the sequence column
            # goes last, so every other column compares against the target's old sequence.
            seq = current(sequence_by)
            newer = f"(VALUES({self.quote(sequence_by)}) >= {seq} OR {seq} IS NULL)"
            assignments = [
                f"{current(n)} = IF({newer}, VALUES({self.quote(n)}), {current(n)})"
                for n in updates
                if n != sequence_by
            ]
            assignments.append(f"{seq} = IF({newer}, VALUES({self.quote(sequence_by)}), {seq})")
        insert = self.insert_select(target, staging, names, where)
        return f"{insert} ON DUPLICATE KEY UPDATE {', '.join(assignments)}"

    def constraint(self, error: Any) -> str:
        try:
            match = _KEY_NAME.search(str(error.getMessage()))
        except Exception:
            return ""
        return next((g for g in match.groups() if g), "") if match else ""


class MySqlExtractor(JdbcExtractor):
    dialect: ClassVar[Dialect] = MySqlDialect()


class MySqlLoader(JdbcLoader):
    dialect: ClassVar[Dialect] = MySqlDialect()
