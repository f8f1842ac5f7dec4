"""etlc's Scala configuration classes, generated from its JSON Schemas.

``schemas/pipeline.schema.json`` and ``schemas/environment.schema.json`` are the one source of
every key: this module turns each object of them into a Scala case class and its reader, so a
key added to a schema is a field on the JVM side with no Scala edit. The JVM module's build
(``jvm/etlc-jvm/pom.xml``) runs it before compiling:

    python3 etlc/codegen/scala_config.py --schemas schemas --out <dir>

It imports the standard library only, so the build runs it with any Python 3.10 or later.

What a schema says and what it becomes:

- an object with ``x-etlc-class`` is a case class of that name; its properties are the fields
  (``max_retries`` is ``maxRetries``, ``$schema`` is ``schemaRef``: ``JsonNames``), in order;
- an object choosing its kind by one property (``allOf`` of ``if``/``then`` on ``type``,
  ``system`` or ``backend``) is a sealed trait, ``x-etlc-class`` naming it, over the classes
  its ``then`` branches name; it declares the fields all of them share;
- a property the object requires is a plain field; one with a ``default`` has that default;
  an array or map it may leave out is empty when absent; a class whose every field may be left
  out is its empty instance (unless ``x-etlc-option`` says that being given matters: an
  ``Option`` then); anything else optional is an ``Option``;
- ``string``, ``boolean``, ``number`` are ``String``, ``Boolean``, ``Double``; ``integer`` is an
  ``Int`` when the schema bounds it within one, a ``Long`` otherwise; a property of several
  JSON types is a ``Scalar``, kept as written; ``x-etlc-type`` names a hand-written type
  (``VaultRef``) and the reader of its companion; an object without properties is a ``Node``;
- an object of ``additionalProperties`` is a ``ListMap`` in document order; one of scalars
  (Spark settings, variables) holds their text, as the Python side makes it;
- the value rules of a property (``enum``, ``const``, ``pattern``, lengths, bounds, item
  counts) are checked as it is read, by ``SchemaCheck``, with the property's JSON path;
- a step's ``inputs`` are its properties naming another step (``$ref: #/$defs/id``), ``id``
  aside; ``x-etlc-default-id`` on a step family names a step that gives no ``id``
  (``load_{n}_{input}``: its position from 1 and its ``input``);
- ``x-etlc-with`` mixes hand-written traits into a class, ``x-etlc-extends`` a trait into a
  family, ``x-etlc-what`` names a family's choice in messages (``extract type``), and
  ``x-etlc-credential-names`` on a map of scalars refuses a literal under a credential's name.

The output is deterministic: the same schemas give the same files, byte for byte.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Schema = Mapping[str, Any]

# (schema file, Scala file, the object listing its classes by JSON pointer)
SCHEMAS = (
    ("pipeline.schema.json", "PipelineConfig.scala", "PipelineSchema"),
    ("environment.schema.json", "EnvironmentConfig.scala", "EnvironmentSchema"),
)
INT_RANGE = (-(2**31), 2**31 - 1)
# The keywords SchemaCheck checks on a value as it is read; `type` is the reader's own.
VALUE_RULES = (
    "enum",
    "const",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "uniqueItems",
)
# Scala 2.13's reserved words: a field of that name is written in backquotes.
RESERVED = frozenset(
    [
        "abstract",
        "case",
        "catch",
        "class",
        "def",
        "do",
        "else",
        "extends",
        "false",
        "final",
        "finally",
        "for",
        "forSome",
        "if",
        "implicit",
        "import",
        "lazy",
        "macro",
        "match",
        "new",
        "null",
        "object",
        "override",
        "package",
        "private",
        "protected",
        "return",
        "sealed",
        "super",
        "this",
        "throw",
        "trait",
        "true",
        "try",
        "type",
        "val",
        "var",
        "while",
        "with",
        "yield",
    ]
)
# Members every case class (or Step) already has: a field of that name would clash.
TAKEN = frozenset(
    [
        "inputs",
        "toString",
        "hashCode",
        "equals",
        "copy",
        "productArity",
        "productElement",
        "productPrefix",
        "productIterator",
        "productElementName",
        "productElementNames",
        "canEqual",
        "getClass",
    ]
)
# What the generator makes Scala of; HANDLED_ELSEWHERE are checked by the Python side alone
# (etlc lint, the runtime), which reads the same schema. Any other keyword is an error, so a
# new one is a decision, never silently unchecked on the JVM.
HANDLED = frozenset(VALUE_RULES) | {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "$ref",
    "default",
    "allOf",
    "anyOf",
    "if",
    "then",
    "$defs",
    "$schema",
    "$id",
    "title",
    "description",
    "examples",
}
HANDLED_ELSEWHERE = frozenset({"not", "propertyNames", "minProperties", "dependentSchemas"})
ID_REF = "#/$defs/id"


class SchemaError(Exception):
    """The schema says something this generator cannot turn into Scala."""


def scala_string(text: str) -> str:
    """A Scala string literal for ``text``: JSON's escapes are Scala's, all ASCII."""
    return json.dumps(text, ensure_ascii=True)


def field_name(key: str) -> str:
    """``JsonNames.of`` reversed: snake_case to camelCase, ``$schema`` to ``schemaRef``."""
    if key == "$schema":
        return "schemaRef"
    if not re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", key):
        raise SchemaError(f"property {key!r} has no Scala field name (snake_case expected)")
    head, *rest = key.split("_")
    name = head + "".join(part.capitalize() for part in rest)
    if name in TAKEN:
        raise SchemaError(
            f"property {key!r} would be Scala field `{name}`, a member every class has"
        )
    return f"`{name}`" if name in RESERVED else name


@dataclass
class Type:
    """A value's Scala type and how the ``Node`` written ``@`` becomes one."""

    scala: str
    read: str  # an expression of the node at "@"
    empty: str | None = None  # the value when absent, for collections


@dataclass
class Field:
    """One property of an object: its Scala field and how the object's ``Fields`` read it."""

    key: str
    name: str
    one: str  # how the Node at "@" becomes the value
    type: str  # the field's declared type, with its default
    read: str  # an expression of `f` (the object's Fields)
    is_input: bool = False


@dataclass
class CaseClass:
    name: str
    pointer: str
    doc: str
    fields: list[Field]
    parents: list[str] = field(default_factory=list)
    default_id: str | None = None  # the template of a step family's default id

    @property
    def all_optional(self) -> bool:
        return all(" = " in f.type for f in self.fields)


@dataclass
class Family:
    name: str
    pointer: str
    doc: str
    key: str
    what: str
    default: str | None
    kinds: list[tuple[str, str]]  # (value of the key, class)
    parent: str | None
    default_id: str | None


class Generator:
    """The classes of one schema, collected by walking it from its root."""

    def __init__(self, schema: Schema, bindings: str) -> None:
        self.schema = schema
        self.bindings = bindings
        self.classes: dict[str, CaseClass] = {}
        self.families: dict[str, Family] = {}
        self.bound: dict[str, list[str]] = {}  # pointer -> class names
        self.rules: list[str] = []  # the value rules' JSON, in the order first met

    # --- walking -------------------------------------------------------------------------

    def resolve(self, ref: str) -> tuple[str, Schema]:
        if not ref.startswith("#/$defs/"):
            raise SchemaError(f"only local $defs references are supported, not {ref}")
        name = ref.removeprefix("#/$defs/")
        try:
            return ref, self.schema["$defs"][name]
        except KeyError:
            raise SchemaError(f"{ref} is not defined") from None

    def flattened(self, node: Schema, pointer: str) -> tuple[Schema, str, str | None]:
        """``node`` with its ``$ref`` chain merged in (the referring side wins), the pointer
        of the innermost definition, and the first reference followed."""
        first = node.get("$ref")
        merged = dict(node)
        while "$ref" in merged:
            ref = merged.pop("$ref")
            pointer, target = self.resolve(ref)
            merged = {**target, **merged}
        return merged, pointer, first

    def bind(self, pointer: str, *names: str) -> None:
        bound = self.bound.setdefault(pointer, [])
        bound += [n for n in dict.fromkeys(names) if n not in bound]

    def object_type(self, node: Schema, pointer: str) -> Type:
        """The class or family ``node`` (carrying ``x-etlc-class``) is, generated once."""
        name = node["x-etlc-class"]
        if node.get("allOf") and all("$ref" in c.get("then", {}) for c in node["allOf"]):
            family = self.families.get(name) or self.family(node, pointer, name)
            self.bind(pointer, *(cls for _, cls in family.kinds))
            reader = f"{name}.read(@, i)" if family.default_id else f"{name}.read(@)"
            return Type(name, reader)
        if node.get("type") != "object":
            # A constraint on a class described elsewhere (`sasl_only`): bound, not generated.
            self.bind(pointer, name)
            return Type(name, f"{name}.read(@)")
        existing = self.classes.get(name)
        if existing is None:
            existing = self.case_class(node, pointer, name)
        elif [f.key for f in existing.fields] != list(node.get("properties", {})):
            raise SchemaError(f"{pointer}: {name} is also {existing.pointer}, with other keys")
        self.bind(pointer, name)
        return Type(name, f"{name}.read(@)")

    def family(self, node: Schema, pointer: str, name: str) -> Family:
        (key,) = node["properties"]
        family = Family(
            name=name,
            pointer=pointer,
            doc=node.get("description", ""),
            key=key,
            what=node.get("x-etlc-what", key),
            default=node["properties"][key].get("default"),
            kinds=[],
            parent=node.get("x-etlc-extends"),
            default_id=node.get("x-etlc-default-id"),
        )
        self.families[name] = family
        for i, clause in enumerate(node["allOf"]):
            value = clause["if"]["properties"][key]["const"]
            target, target_pointer, _ = self.flattened(clause["then"], f"{pointer}/allOf/{i}/then")
            kind = self.object_type(target, target_pointer)
            family.kinds.append((value, kind.scala))
            cls = self.classes[kind.scala]
            if name not in cls.parents:
                cls.parents.insert(0, name)
            if family.default_id and cls.default_id is None:
                cls.default_id = family.default_id
                (given,) = (f for f in cls.fields if f.key == "id")
                one = given.one.replace("@", "n")
                given.type, given.read = (
                    "String",
                    f'f.optional("id").map(n => {one}).getOrElse(defaultId)',
                )
        return family

    def case_class(self, node: Schema, pointer: str, name: str) -> CaseClass:
        self.known(node, pointer)
        cls = CaseClass(name, pointer, node.get("description", ""), [])
        self.classes[name] = cls  # before the fields: a class may hold itself
        required = set(node.get("required", ()))
        for key, prop in node.get("properties", {}).items():
            cls.fields.append(self.field(key, prop, f"{pointer}/properties/{key}", key in required))
        cls.parents += node.get("x-etlc-with", [])
        return cls

    # --- fields --------------------------------------------------------------------------

    def field(self, key: str, prop: Schema, pointer: str, required: bool) -> Field:
        flat, at, ref = self.flattened(prop, pointer)
        kind = self.type_of(flat, at)
        name = field_name(key)
        one = kind.read
        given = f'f.optional("{key}").map(n => {one.replace("@", "n")})'
        made = Field(key, name, one, f"Option[{kind.scala}] = None", given)
        made.is_input = ref == ID_REF and key != "id"
        default = flat.get("default", None if required else flat.get("const"))
        target = self.classes.get(kind.scala)
        family = self.families.get(kind.scala)
        if required:
            made.type, made.read = kind.scala, one.replace("@", f'f.required("{key}")')
        elif default is not None:
            literal = self.literal(default, kind.scala, pointer)
            made.type, made.read = f"{kind.scala} = {literal}", f"{given}.getOrElse({literal})"
        elif kind.empty is not None:
            made.type, made.read = (
                f"{kind.scala} = {kind.empty}",
                f"{given}.getOrElse({kind.empty})",
            )
        elif target is not None and target.all_optional and not flat.get("x-etlc-option"):
            empty = f"{kind.scala}()"
            made.type, made.read = f"{kind.scala} = {empty}", f"{given}.getOrElse({empty})"
        elif family is not None and family.default is not None:
            empty = f"{kind.scala}.default"
            made.type, made.read = f"{kind.scala} = {empty}", f"{given}.getOrElse({empty})"
        return made

    def literal(self, value: Any, scala: str, pointer: str) -> str:
        if scala == "String" and isinstance(value, str):
            return scala_string(value)
        if scala == "Boolean" and isinstance(value, bool):
            return "true" if value else "false"
        if scala in ("Int", "Long") and isinstance(value, int) and not isinstance(value, bool):
            return f"{value}L" if scala == "Long" else str(value)
        if scala == "Double" and isinstance(value, int | float) and not isinstance(value, bool):
            return repr(float(value))
        raise SchemaError(f"{pointer}: default {value!r} is not a {scala}")

    def checked(self, flat: Schema, read: str) -> str:
        """``read``, after the value rules of ``flat`` hold for ``n``."""
        rules = {k: flat[k] for k in VALUE_RULES if k in flat}
        if not rules:
            return read
        if "type" in flat:  # a value of another type is told so before any rule
            rules["type"] = flat["type"]
        text = json.dumps(rules, sort_keys=True, separators=(",", ":"))
        if text not in self.rules:
            self.rules.append(text)
        return read.replace("@", f"{self.bindings}.rule{self.rules.index(text)}.checked(@)", 1)

    @staticmethod
    def known(node: Schema, pointer: str) -> None:
        """Refuse a keyword this generator has not decided about (``x-etlc-*`` are its own)."""
        unknown = sorted(
            k
            for k in node
            if k not in HANDLED and k not in HANDLED_ELSEWHERE and not k.startswith("x-etlc-")
        )
        if unknown:
            raise SchemaError(f"{pointer}: no Scala reading for {', '.join(unknown)}")

    def type_of(self, flat: Schema, pointer: str) -> Type:
        self.known(flat, pointer)
        if "x-etlc-type" in flat:
            # A hand-written type's reader owns its rules (and words their messages).
            name = flat["x-etlc-type"]
            return Type(name, f"{flat.get('x-etlc-read', name + '.read')}(@)")
        if "x-etlc-class" in flat:
            return self.object_type(flat, pointer)
        types = flat.get("type")
        if types is None and ("enum" in flat or "const" in flat):
            values = flat.get("enum", [flat.get("const")])
            if not all(isinstance(v, str) for v in values):
                raise SchemaError(f"{pointer}: only enums of strings are supported")
            types = "string"
            flat = {**flat, "type": types}
        if isinstance(types, list):
            allowed = ", ".join(scala_string(t) for t in types)
            return Type("Scalar", self.checked(flat, f"Scalar.read(@, Seq({allowed}))"))
        simple = {"string": "string", "boolean": "boolean", "number": "double"}
        scala = {"string": "String", "boolean": "Boolean", "number": "Double"}
        if types in simple:
            return Type(scala[types], self.checked(flat, f"@.{simple[types]}"))
        if types == "integer":
            low, high = flat.get("minimum", -(2**63)), flat.get("maximum", 2**63 - 1)
            small = INT_RANGE[0] <= low and high <= INT_RANGE[1]
            return Type(
                "Int" if small else "Long", self.checked(flat, "@.int" if small else "@.long")
            )
        if types == "array":
            item, at, _ = self.flattened(flat["items"], f"{pointer}/items")
            inner = self.type_of(item, at)
            if "(@, i)" in inner.read:
                each = (
                    f"@.array.zipWithIndex.map {{ case (n, i) => {inner.read.replace('@', 'n')} }}"
                )
            else:
                each = f"@.array.map(n => {inner.read.replace('@', 'n')})"
            return Type(f"Vector[{inner.scala}]", self.checked(flat, each), "Vector.empty")
        if types == "object":
            return self.map_type(flat, pointer)
        raise SchemaError(f"{pointer}: no Scala type for {json.dumps(dict(flat))[:80]}")

    def map_type(self, flat: Schema, pointer: str) -> Type:
        values = flat.get("additionalProperties")
        if not isinstance(values, Mapping):
            if flat.get("properties"):
                raise SchemaError(f"{pointer}: an object with properties needs x-etlc-class")
            return Type("Node", "@.anyObject")
        item, at, _ = self.flattened(values, f"{pointer}/additionalProperties")
        if isinstance(item.get("type"), list) and "x-etlc-type" not in item:
            # Scalars as the text the Python side makes of them (Spark conf, variables).
            read = "Scalars.text(v)"
            scala = "String"
        else:
            inner = self.type_of(item, at)
            read = inner.read.replace("@", "v")
            scala = inner.scala
        members = "Credentials.checkNames(@)" if flat.get("x-etlc-credential-names") else "@"
        each = f"{members}.members.map {{ case (k, v) => k -> {read} }}"
        return Type(
            f"ListMap[String, {scala}]", self.checked(flat, each), f"ListMap.empty[String, {scala}]"
        )

    def run(self) -> None:
        self.object_type(self.schema, "#")
        # Named objects no property leads to (constraints such as `sasl_only`).
        for name, node in self.schema.get("$defs", {}).items():
            if "x-etlc-class" in node and f"#/$defs/{name}" not in self.bound:
                self.object_type(node, f"#/$defs/{name}")


# --- Scala source -------------------------------------------------------------------------


def scaladoc(text: str, indent: str = "") -> list[str]:
    """``text`` as a Scaladoc comment, wrapped; ``*/`` cannot end it early, nor ``/*`` open a
    nested comment (Scala's comments nest)."""
    words = text.replace("*/", "* /").replace("/*", "/ *").split()
    if not words:
        return []
    lines, line = [], ""
    for word in words:
        if line and len(indent) + 4 + len(line) + 1 + len(word) > 100:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    out = [f"{indent}/** {lines[0]}"] + [f"{indent}  * {rest}" for rest in lines[1:]]
    out[-1] += " */" if len(out[-1]) + 3 <= 100 else ""
    if not out[-1].endswith("*/"):
        out.append(f"{indent}  */")
    return out


def id_expression(template: str) -> str:
    """A default-id template (``load_{n}_{input}``) as a Scala expression of ``node`` and
    ``index``: ``{n}`` is the position from 1, ``{key}`` the text of the member ``key``."""
    parts: list[str] = []
    for i, piece in enumerate(re.split(r"\{(\w+)\}", template)):
        if i % 2 == 0:
            if piece:
                parts.append(scala_string(piece))
        elif piece == "n":
            parts.append("(index + 1).toString")
        else:
            parts.append(f"node.memberText({scala_string(piece)})")
    return " + ".join(parts) or '""'


def chained(f: Field, indent: str) -> list[str]:
    """``name = read`` for a constructor call: one line, or a long optional read broken
    before its ``.map`` and its ``.getOrElse``."""
    line = f"{indent}{f.name} = {f.read}"
    head = f'f.optional("{f.key}")'
    if len(line) <= 100 or not f.read.startswith(head):
        return [line]
    rest = f.read[len(head) :]
    cut = rest.rfind(".getOrElse(")
    parts = [rest[:cut], rest[cut:]] if cut > 0 else [rest]
    return [f"{indent}{f.name} = {head}"] + [f"{indent}  {part}" for part in parts]


def emit_class(cls: CaseClass, gen: Generator) -> Iterator[str]:
    yield from scaladoc(cls.doc)
    yield f"final case class {cls.name}("
    for i, f in enumerate(cls.fields):
        yield f"    {f.name}: {f.type}" + ("," if i < len(cls.fields) - 1 else "")
    parents = " with ".join(cls.parents)
    inputs = [f.name for f in cls.fields if f.is_input]
    body = " {" if inputs else ""
    yield f") extends {parents}{body}" if parents else f"){body}"
    if inputs:
        yield f"  override def inputs: Vector[String] = Vector({', '.join(inputs)})"
        yield "}"
    yield ""
    yield f"object {cls.name} {{"
    if cls.pointer == "#":
        yield f"  def load(file: java.nio.file.Path): {cls.name} = read(Json.read(file))"
        yield ""
    extra = ", defaultId: String" if cls.default_id else ""
    yield f"  def read(node: Node{extra}): {cls.name} = {{"
    yield f"    val f = node.fields[{cls.name}]"
    yield f"    {cls.name}("
    for i, f in enumerate(cls.fields):
        lines = chained(f, "      ")
        lines[-1] += "," if i < len(cls.fields) - 1 else ""
        yield from lines
    yield "    )"
    yield "  }"
    yield "}"


def shared_fields(family: Family, gen: Generator) -> list[Field]:
    """The fields every class of ``family`` has, under the same name and type."""
    kinds = [gen.classes[cls] for _, cls in family.kinds]
    first, *rest = kinds
    return [
        f
        for f in first.fields
        if all(
            any(
                g.key == f.key and g.type.split(" = ")[0] == f.type.split(" = ")[0]
                for g in k.fields
            )
            for k in rest
        )
    ]


def emit_family(family: Family, gen: Generator) -> Iterator[str]:
    yield from scaladoc(family.doc)
    parent = f" extends {family.parent}" if family.parent else ""
    yield f"sealed trait {family.name}{parent} {{"
    for f in shared_fields(family, gen):
        yield f"  def {f.name}: {f.type.split(' = ')[0]}"
    yield "}"
    yield ""
    values = ", ".join(scala_string(v) for v in dict.fromkeys(value for value, _ in family.kinds))
    choices = "types" if family.key == "type" else family.key + "s"
    yield f"object {family.name} {{"
    yield f"  val {choices}: Vector[String] = Vector({values})"
    yield ""
    if family.default is not None:
        (default_cls,) = {cls for value, cls in family.kinds if value == family.default}
        yield f"  val default: {family.name} = {default_cls}()"
        yield ""
    index = ", index: Int" if family.default_id else ""
    default = f"Some({scala_string(family.default)})" if family.default is not None else "None"
    yield f"  def read(node: Node{index}): {family.name} = {{"
    if family.default_id:
        yield f"    val defaultId = {id_expression(family.default_id)}"
    key, what = scala_string(family.key), scala_string(family.what)
    yield f"    node.choice({key}, {choices}, {what}, {default}) match {{"
    for value, cls in family.kinds:
        args = "node, defaultId" if family.default_id else "node"
        yield f"      case {scala_string(value)} => {cls}.read({args})"
    yield '      case other => throw new IllegalStateException(s"no class for $other")'
    yield "    }"
    yield "  }"
    yield "}"


def emit_bindings(gen: Generator, name: str, source: str) -> Iterator[str]:
    yield f"/** Which classes stand for each object of `{source}`, by the object's JSON"
    yield "  * pointer, and the value rules of its properties, checked as they are read."
    yield "  */"
    yield f"object {name} {{"
    yield "  val bindings: ListMap[String, Seq[Class[_]]] = ListMap("
    pointers = sorted(gen.bound)
    for i, pointer in enumerate(pointers):
        classes = ", ".join(f"classOf[{c}]" for c in gen.bound[pointer])
        yield f"    {scala_string(pointer)} -> Seq({classes})" + (
            "," if i < len(pointers) - 1 else ""
        )
    yield "  )"
    for i, rule in enumerate(gen.rules):
        yield ""
        yield f"  private[config] val rule{i}: SchemaRule = new SchemaRule({scala_string(rule)})"
    yield "}"


def generate(schema: Schema, source: str, bindings: str) -> str:
    """The Scala source of every class ``schema`` describes."""
    gen = Generator(schema, bindings)
    gen.run()
    out = [
        f"// Generated by etlc/codegen/scala_config.py from schemas/{source}.",
        "// Do not edit: change the schema, and the JVM module's build writes this file again.",
        "package etlc.jvm.config",
        "",
        "import scala.collection.immutable.ListMap",
        "",
    ]
    for family in gen.families.values():
        out += [*emit_family(family, gen), ""]
    for cls in gen.classes.values():
        out += [*emit_class(cls, gen), ""]
    out += list(emit_bindings(gen, bindings, f"schemas/{source}"))
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scala_config",
        description="Write etlc's Scala configuration classes from its JSON Schemas.",
    )
    parser.add_argument("--schemas", type=Path, required=True, help="the folder of the schemas")
    parser.add_argument(
        "--out", type=Path, required=True, help="the folder to write .scala files to"
    )
    args = parser.parse_args(argv)
    target = args.out / "etlc" / "jvm" / "config"
    target.mkdir(parents=True, exist_ok=True)
    for source, scala, bindings in SCHEMAS:
        try:
            schema = json.loads((args.schemas / source).read_text(encoding="utf-8"))
            text = generate(schema, source, bindings)
        except (OSError, ValueError, SchemaError, KeyError) as exc:
            print(f"scala_config: {args.schemas / source}: {exc}", file=sys.stderr)
            return 1
        path = target / scala
        # Unchanged output keeps its timestamp, so the build does not recompile it.
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
