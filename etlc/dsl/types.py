"""The checker's type system: Avro record schemas and the column types derived from them.

Every dataset in a plan has a :class:`RecordSchema`. Declared schemas are parsed from ``.avsc``
files; the checker derives the others. From a schema the compiler lowers what the runtime needs
(the Avro JSON, a Spark DDL string, validation predicates), so the runtime never parses Avro.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from etlc.dsl.sql_text import sql_identifier

NUMERIC_RANK = {"int": 1, "long": 2, "decimal": 3, "float": 4, "double": 5}
PRIMITIVES = ("boolean", "int", "long", "float", "double", "string", "bytes")
# Avro's name rule, always applied with fullmatch (`$` would accept a trailing newline). Every
# name and enum symbol of a schema passes it, so the SQL, Python and DDL the compiler builds
# from them never hold a quote, a backslash or a line break.
_AVRO_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Spark's (and Avro's Java) decimal bounds: precision 1..38, 0 <= scale <= precision.
MAX_DECIMAL_PRECISION = 38
# Bounds on what one schema lowers into validation rules (one per field, one IN list per
# enum), so that checking them stays well inside lint's time bound. Real schemas are far below.
MAX_FIELDS = 4_096
MAX_ENUM_SYMBOLS = 1_000
MAX_NAME_CHARS = 255


class AvroSchemaError(ValueError):
    """An ``.avsc`` document that etlc cannot use; ``path`` is a JSON path inside it."""

    def __init__(self, message: str, path: str = "$") -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class DataType:
    """A column type. ``kind`` is one of boolean, int, long, float, double, decimal, string,
    bytes, date, timestamp, null; enums are strings with ``symbols``."""

    kind: str
    nullable: bool = True
    precision: int = 0
    scale: int = 0
    symbols: tuple[str, ...] = ()
    logical: str = ""

    @property
    def is_numeric(self) -> bool:
        return self.kind in NUMERIC_RANK

    @property
    def is_integral(self) -> bool:
        return self.kind in ("int", "long")

    @property
    def is_temporal(self) -> bool:
        return self.kind in ("date", "timestamp")

    @property
    def is_enum(self) -> bool:
        return bool(self.symbols)

    def with_nullable(self, nullable: bool) -> DataType:
        return replace(self, nullable=nullable)

    def describe(self) -> str:
        if self.kind == "decimal":
            base = f"decimal({self.precision},{self.scale})"
        elif self.symbols:
            base = "enum"
        else:
            base = self.kind
        return base if not self.nullable else f"{base}?"

    def spark_sql(self) -> str:
        if self.kind == "decimal":
            return f"DECIMAL({self.precision},{self.scale})"
        return _SPARK_SQL[self.kind]

    def avro(self) -> Any:
        base: Any
        if self.kind == "decimal":
            base = {
                "type": "bytes",
                "logicalType": "decimal",
                "precision": self.precision,
                "scale": self.scale,
            }
        elif self.kind == "date":
            base = {"type": "int", "logicalType": "date"}
        elif self.kind == "timestamp":
            base = {"type": "long", "logicalType": self.logical or "timestamp-micros"}
        elif self.kind == "null":
            return "null"
        else:
            base = self.kind
        return ["null", base] if self.nullable else base


_SPARK_SQL = {
    "boolean": "BOOLEAN",
    "int": "INT",
    "long": "BIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "string": "STRING",
    "bytes": "BINARY",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "null": "VOID",
}

BOOLEAN = DataType("boolean", nullable=False)
LONG = DataType("long", nullable=False)
DOUBLE = DataType("double")
STRING = DataType("string")


@dataclass(frozen=True)
class Field:
    name: str
    type: DataType
    doc: str = ""


@dataclass(frozen=True)
class RecordSchema:
    """An Avro record with flat fields. ``rules`` are declared record checks
    (``name -> boolean expression``) from the ``etlc.rules`` attribute."""

    name: str
    fields: tuple[Field, ...]
    namespace: str = ""
    rules: tuple[tuple[str, str], ...] = ()

    @property
    def full_name(self) -> str:
        return f"{self.namespace}.{self.name}" if self.namespace else self.name

    def field(self, name: str) -> Field | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def columns(self) -> dict[str, DataType]:
        return {f.name: f.type for f in self.fields}

    def __iter__(self) -> Iterator[Field]:
        return iter(self.fields)

    def to_avro(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "record", "name": self.name}
        if self.namespace:
            out["namespace"] = self.namespace
        out["fields"] = [_field_json(f) for f in self.fields]
        return out

    def spark_ddl(self) -> str:
        """The read schema for Spark; every column nullable so bad records reach validation."""
        return ", ".join(f"{sql_identifier(f.name)} {f.type.spark_sql()}" for f in self.fields)


def _field_json(f: Field) -> dict[str, Any]:
    out: dict[str, Any] = {"name": f.name, "type": f.type.avro()}
    if f.type.symbols:
        enum = {"type": "enum", "name": f"{f.name}_enum", "symbols": list(f.type.symbols)}
        out["type"] = ["null", enum] if f.type.nullable else enum
    if f.type.nullable:
        out["default"] = None
    if f.doc:
        out["doc"] = f.doc
    return out


def derived_record(name: str, columns: Mapping[str, DataType], namespace: str) -> RecordSchema:
    return RecordSchema(
        name=_avro_safe(name),
        namespace=namespace,
        fields=tuple(Field(n, t) for n, t in columns.items()),
    )


def _avro_safe(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return cleaned if _AVRO_NAME.fullmatch(cleaned) else f"_{cleaned}"


def is_avro_name(text: object) -> bool:
    """Whether ``text`` is an Avro name: ``[A-Za-z_][A-Za-z0-9_]*``, nothing before or after
    (and at most MAX_NAME_CHARS long)."""
    return (
        isinstance(text, str)
        and len(text) <= MAX_NAME_CHARS
        and _AVRO_NAME.fullmatch(text) is not None
    )


# --- parsing .avsc ---------------------------------------------------------------------


def parse_avro_schema(doc: Any) -> RecordSchema:
    """Parse an ``.avsc`` document (already JSON-decoded) into a :class:`RecordSchema`.

    Every name (record, namespace parts, fields, enums, enum symbols, rule names) must follow
    Avro's name rule; anything else is an :class:`AvroSchemaError` naming where it is.
    """
    if not isinstance(doc, dict) or doc.get("type") != "record":
        raise AvroSchemaError("the top-level schema must be an Avro record", "$.type")
    name, namespace = _full_name(doc, "$", "a record")
    _doc_text(doc, "$")
    raw_fields = doc.get("fields")
    if not isinstance(raw_fields, list) or not raw_fields:
        raise AvroSchemaError("a record needs a non-empty `fields` list", "$.fields")
    if len(raw_fields) > MAX_FIELDS:
        raise AvroSchemaError(f"a record may have at most {MAX_FIELDS} fields", "$.fields")
    fields: list[Field] = []
    seen: dict[str, str] = {}  # lower case -> as written: Spark matches columns by either
    for i, raw in enumerate(raw_fields):
        path = f"$.fields[{i}]"
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            raise AvroSchemaError("each field needs a `name`", path)
        fname = raw["name"]
        if not is_avro_name(fname):
            raise AvroSchemaError(f"{fname!r} is not a valid Avro field name", path + ".name")
        if fname.lower() in seen:
            other = seen[fname.lower()]
            twice = "is declared twice" if other == fname else f"and `{other}` differ only in case"
            raise AvroSchemaError(f"field `{fname}` {twice}", path + ".name")
        seen[fname.lower()] = fname
        ftype = _parse_type(raw.get("type"), path + ".type")
        if "default" in raw:
            _check_default(raw["default"], raw.get("type"), ftype, path + ".default")
        fields.append(Field(fname, ftype, _doc_text(raw, path)))
    rules = doc.get("etlc.rules", {})
    if not isinstance(rules, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in rules.items()
    ):
        raise AvroSchemaError("`etlc.rules` must map rule names to expressions", "$.etlc.rules")
    for rule in rules:
        if not is_avro_name(rule):
            raise AvroSchemaError(
                f"rule name {rule!r} must be a name like `amount_not_negative`", "$.etlc.rules"
            )
    return RecordSchema(name, tuple(fields), namespace, tuple(rules.items()))


def _full_name(t: dict[str, Any], path: str, what: str) -> tuple[str, str]:
    """(name, namespace) of a named type; a dotted name carries its namespace."""
    name = t.get("name")
    if not isinstance(name, str):
        raise AvroSchemaError(f"{what} needs a `name`", path + ".name")
    namespace = t.get("namespace", "")
    if namespace is None:
        namespace = ""
    if "." in name:
        namespace, name = name.rsplit(".", 1)
    if not is_avro_name(name):
        raise AvroSchemaError(f"{name!r} is not a valid Avro name", path + ".name")
    if not isinstance(namespace, str) or (
        namespace and not all(is_avro_name(part) for part in namespace.split("."))
    ):
        raise AvroSchemaError(
            f"{namespace!r} is not a valid Avro namespace (names joined by dots)",
            path + ".namespace",
        )
    return name, namespace


def _doc_text(t: dict[str, Any], path: str) -> str:
    doc = t.get("doc", "")
    if not isinstance(doc, str):
        raise AvroSchemaError("`doc` must be a string", path + ".doc")
    return doc


def _parse_type(t: Any, path: str) -> DataType:
    if isinstance(t, list):
        branches = [b for b in t if b != "null"]
        if len(branches) != 1 or len(t) > 2:
            raise AvroSchemaError("only unions of `null` and one other type are supported", path)
        return _parse_type(branches[0], path).with_nullable(True)
    if isinstance(t, str):
        if t in PRIMITIVES:
            return DataType(t, nullable=False)
        if t == "null":
            return DataType("null", nullable=True)
        raise AvroSchemaError(f"unsupported Avro type {t!r}", path)
    if isinstance(t, dict):
        logical = t.get("logicalType")
        base = t.get("type")
        if base == "enum":
            return _enum(t, path)
        if logical == "date" and base == "int":
            return DataType("date", nullable=False)
        if logical in ("timestamp-millis", "timestamp-micros") and base == "long":
            return DataType("timestamp", nullable=False, logical=str(logical))
        if logical == "decimal" and base in ("bytes", "fixed"):
            if base == "fixed":
                _full_name(t, path, "a fixed type")
            return _decimal(t, path)
        if isinstance(base, str) and base in PRIMITIVES:
            return DataType(base, nullable=False)
        raise AvroSchemaError(
            f"unsupported Avro type {base!r}"
            + (f" with logicalType {logical!r}" if logical else "")
            + " (records, arrays and maps are not supported as column types yet)",
            path,
        )
    raise AvroSchemaError("a field type must be a name, a union or an object", path)


_INT_RANGES = {"int": 2**31, "date": 2**31, "long": 2**63, "timestamp": 2**63}


def _default_fits(default: Any, t: DataType) -> bool:
    if t.symbols:
        return isinstance(default, str) and default in t.symbols
    if t.kind == "boolean":
        return isinstance(default, bool)
    if t.kind in _INT_RANGES:
        bound = _INT_RANGES[t.kind]
        return (
            isinstance(default, int) and not isinstance(default, bool) and -bound <= default < bound
        )
    if t.kind in ("float", "double"):
        return isinstance(default, int | float) and not isinstance(default, bool)
    if t.kind in ("string", "bytes", "decimal"):
        return isinstance(default, str)
    return default is None


def _check_default(default: Any, raw: Any, parsed: DataType, path: str) -> None:
    """Avro's rule: a field's default is a value of its type (of a union's first type). The
    message names the type, never the value."""
    first_is_null = isinstance(raw, list) and bool(raw) and raw[0] == "null"
    if first_is_null and default is not None:
        raise AvroSchemaError(
            "the default of a union starting with `null` must be null (Avro takes a union's "
            "default from its first type)",
            path,
        )
    if not first_is_null and not _default_fits(default, parsed.with_nullable(False)):
        raise AvroSchemaError(
            f"the default is not of type {parsed.with_nullable(False).describe()}", path
        )


def _enum(t: dict[str, Any], path: str) -> DataType:
    _full_name(t, path, "an enum")
    symbols = t.get("symbols")
    if not isinstance(symbols, list) or not symbols:
        raise AvroSchemaError("an enum needs a non-empty `symbols` list", path + ".symbols")
    if len(symbols) > MAX_ENUM_SYMBOLS:
        raise AvroSchemaError(
            f"an enum may have at most {MAX_ENUM_SYMBOLS} symbols", path + ".symbols"
        )
    seen: set[str] = set()
    for i, symbol in enumerate(symbols):
        where = f"{path}.symbols[{i}]"
        if not is_avro_name(symbol):
            raise AvroSchemaError(
                f"enum symbol {symbol!r} is not an Avro name (letters, digits, `_`)", where
            )
        if symbol in seen:
            raise AvroSchemaError(f"enum symbol `{symbol}` is listed twice", where)
        seen.add(symbol)
    default = t.get("default")
    if default is not None and default not in seen:
        raise AvroSchemaError(f"enum default {default!r} is not one of its symbols", path)
    return DataType("string", nullable=False, symbols=tuple(symbols))


def _decimal(t: dict[str, Any], path: str) -> DataType:
    precision, scale = t.get("precision"), t.get("scale", 0)
    for key, value in (("precision", precision), ("scale", scale)):
        # bool is an int to Python, and 12.0 is not an integer to Avro.
        if not isinstance(value, int) or isinstance(value, bool):
            raise AvroSchemaError(
                f"a decimal needs an integer `{key}`, got {value!r}", f"{path}.{key}"
            )
    assert isinstance(precision, int) and isinstance(scale, int)
    if not 1 <= precision <= MAX_DECIMAL_PRECISION:
        raise AvroSchemaError(
            f"decimal precision {precision} is outside 1..{MAX_DECIMAL_PRECISION} (Spark's range)",
            path + ".precision",
        )
    if not 0 <= scale <= precision:
        raise AvroSchemaError(
            f"decimal scale {scale} is outside 0..{precision} (its precision)", path + ".scale"
        )
    return DataType("decimal", nullable=False, precision=precision, scale=scale)


# --- type algebra used by the checker ---------------------------------------------------


def common_type(a: DataType, b: DataType) -> DataType | None:
    """The type both sides widen to (for comparisons, joins, CASE, COALESCE), or None."""
    nullable = a.nullable or b.nullable
    if a.kind == "null":
        return b.with_nullable(True)
    if b.kind == "null":
        return a.with_nullable(True)
    if a.kind == b.kind and a.kind != "decimal":
        symbols = a.symbols if a.symbols == b.symbols else ()
        return DataType(a.kind, nullable, symbols=symbols, logical=a.logical)
    if a.is_numeric and b.is_numeric:
        if "double" in (a.kind, b.kind) or "float" in (a.kind, b.kind):
            return DataType("double", nullable)
        if "decimal" in (a.kind, b.kind):
            # Spark's widening: integers act as decimal(10,0) / decimal(20,0).
            (p1, s1), (p2, s2) = _as_decimal(a), _as_decimal(b)
            scale = max(s1, s2)
            precision = min(38, max(p1 - s1, p2 - s2) + scale)
            return DataType("decimal", nullable, precision=precision, scale=scale)
        return DataType("long" if "long" in (a.kind, b.kind) else "int", nullable)
    if {a.kind, b.kind} == {"date", "timestamp"}:
        return DataType("timestamp", nullable)
    return None


def _as_decimal(t: DataType) -> tuple[int, int]:
    if t.kind == "decimal":
        return (t.precision, t.scale)
    return (10, 0) if t.kind == "int" else (20, 0)


def admits(out: DataType, source: DataType | None) -> bool:
    """Whether every value of ``source`` is a value of ``out`` (so it needs no re-check)."""
    if source is None:
        return False
    same = (out.kind, out.precision, out.scale, out.logical) == (
        source.kind,
        source.precision,
        source.scale,
        source.logical,
    )
    symbols = not out.symbols or (bool(source.symbols) and set(source.symbols) <= set(out.symbols))
    return same and symbols and (out.nullable or not source.nullable)
