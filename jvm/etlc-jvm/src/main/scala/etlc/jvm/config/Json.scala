package etlc.jvm.config

import java.io.{IOException, StringWriter}
import java.nio.file.{Files, NoSuchFileException, Path}

import scala.collection.immutable.ListMap
import scala.jdk.CollectionConverters._
import scala.reflect.ClassTag

import com.fasterxml.jackson.core.{
  JsonFactory,
  JsonFactoryBuilder,
  JsonGenerator,
  JsonParseException,
  JsonParser,
  JsonProcessingException,
  JsonToken,
  StreamReadFeature
}
import com.fasterxml.jackson.core.io.JsonStringEncoder
import com.fasterxml.jackson.databind.{JsonNode, ObjectMapper}
import com.fasterxml.jackson.databind.json.JsonMapper
import com.fasterxml.jackson.databind.node.{JsonNodeFactory, JsonNodeType}

/** A configuration file the JVM side cannot use: the file, the JSON path and what is wrong,
  * e.g. `pipelines/x.json: $.load[0].mode: expected string, got number`. A message never holds
  * a value read from the file, so a misplaced secret cannot leak through it.
  */
final class ConfigException(val file: String, val path: String, val problem: String)
    extends RuntimeException(if (path.isEmpty) s"$file: $problem" else s"$file: $path: $problem")

/** Where a value sits in its document, written as the messages show it: `$.load[0].mode`;
  * keys that are not identifiers are quoted: `$.spark["spark.sql.shuffle.partitions"]`.
  */
final case class JsonPath(segments: Vector[Either[String, Int]]) {
  def /(key: String): JsonPath = JsonPath(segments :+ Left(key))
  def at(index: Int): JsonPath = JsonPath(segments :+ Right(index))

  override def toString: String = segments.foldLeft("$") {
    case (out, Right(i))                                 => s"$out[$i]"
    case (out, Left(k)) if JsonPath.Identifier.pattern.matcher(k).matches() => s"$out.$k"
    case (out, Left(k))                                  => out + "[" + Json.quote(k) + "]"
  }
}

object JsonPath {
  val Root: JsonPath = JsonPath(Vector.empty)
  private val Identifier = "[A-Za-z_][A-Za-z0-9_]*".r
}

/** A JSON value and where it is; every read checks the JSON type and fails with the path. */
final class Node private[config] (val file: String, val path: JsonPath, private[config] val json: JsonNode) {

  def fail(problem: String): Nothing = throw new ConfigException(file, path.toString, problem)

  def kind: String = Json.kind(json)

  private def expected(what: String): Nothing = fail(s"expected $what, got $kind")

  def string: String = if (json.isTextual) json.textValue else expected("string")

  def boolean: Boolean = if (json.isBoolean) json.booleanValue else expected("boolean")

  def int: Int = {
    val n = integral("integer")
    if (n.isValidInt) n.toInt else fail("integer out of range")
  }

  def long: Long = {
    val n = integral("integer")
    if (n.isValidLong) n.toLong else fail("integer out of range")
  }

  def double: Double = if (json.isNumber) json.doubleValue else expected("number")

  /** JSON Schema's integer: a number without a fractional part (`5.0` is one too). */
  private def integral(what: String): BigInt =
    if (json.isIntegralNumber) BigInt(json.bigIntegerValue)
    else if (json.isNumber && json.decimalValue.stripTrailingZeros.scale <= 0)
      BigInt(json.decimalValue.toBigIntegerExact)
    else expected(what)

  def isString: Boolean = json.isTextual

  /** This node, which must be an object whatever its keys (a JVM step's options). */
  def anyObject: Node = if (json.isObject) this else expected("object")

  /** The value as compact JSON text. */
  def text: String = Json.render(json)

  def array: Vector[Node] =
    if (json.isArray) json.elements.asScala.zipWithIndex.map { case (v, i) => child(path.at(i), v) }.toVector
    else expected("array")

  /** The object's members in document order, whatever their keys (a map such as `spark`). */
  def members: ListMap[String, Node] =
    if (json.isObject) ListMap(json.properties.asScala.toSeq.map(e => e.getKey -> child(path / e.getKey, e.getValue)): _*)
    else expected("object")

  /** The object as the JSON form of case class `A`: a key that is not one of `A`'s fields
    * (see [[JsonNames]]) is rejected here, before any field is read.
    */
  def fields[A](implicit tag: ClassTag[A]): Fields = {
    val known = JsonNames.fields(tag.runtimeClass)
    val present = members
    present.keys.find(k => !known.contains(k)).foreach { key =>
      fail(s"unknown key ${Json.quote(key)} (known: ${known.mkString(", ")})")
    }
    new Fields(this, known.toSet, present)
  }

  /** A string holding a value of a closed set (a step type, a connection system). The message
    * names the choices, never the value: a value pasted in the wrong place may be a secret.
    */
  def oneOf(choices: Seq[String], what: String): String = {
    val value = string
    if (choices.contains(value)) value
    else fail(s"not a known $what (known: ${choices.mkString(", ")})")
  }

  /** The member `key` that chooses an object's class (a step's `type`, a profile's `system`):
    * one of `choices`, or `default` when the object leaves it out.
    */
  def choice(key: String, choices: Seq[String], what: String, default: Option[String]): String =
    members.get(key) match {
      case Some(given) => given.oneOf(choices, what)
      case None        => default.getOrElse(fail(s"missing required key ${Json.quote(key)}"))
    }

  /** The member `key` if it is a string, else empty (a default id's part). */
  def memberText(key: String): String = members.get(key).filter(_.isString).map(_.string).getOrElse("")

  private def child(at: JsonPath, value: JsonNode): Node = new Node(file, at, value)
}

/** The members of one object, read by name; `known` are the JSON names of the target class. */
final class Fields private[config] (val node: Node, known: Set[String], present: ListMap[String, Node]) {

  private def checked(key: String): String = {
    // Reading a key that is not a field of the class is a bug in the decoder, not bad input.
    require(known.contains(key), s"`$key` is not a field of the class decoded at ${node.path}")
    key
  }

  def optional(key: String): Option[Node] = present.get(checked(key))

  def required(key: String): Node =
    present.getOrElse(checked(key), node.fail(s"missing required key ${Json.quote(key)}"))

  def has(key: String): Boolean = present.contains(checked(key))

  def string(key: String): String = required(key).string
  def optString(key: String): Option[String] = optional(key).map(_.string)
  def optInt(key: String): Option[Int] = optional(key).map(_.int)
  def optLong(key: String): Option[Long] = optional(key).map(_.long)
  def optDouble(key: String): Option[Double] = optional(key).map(_.double)
  def optBoolean(key: String): Option[Boolean] = optional(key).map(_.boolean)

  /** A list of strings (column names); absent is empty, as on the Python side. */
  def strings(key: String): Vector[String] = optional(key).map(_.array.map(_.string)).getOrElse(Vector.empty)

  /** An object of strings in document order (named expressions). */
  def stringMap(key: String): ListMap[String, String] =
    required(key).members.map { case (k, v) => k -> v.string }
}

object Json {

  // Documents are read with jackson-core's streaming parser into databind's tree nodes, never
  // through an ObjectMapper: a driver reads its configuration cold, and a mapper's first
  // readTree costs about 250 ms there (its deserializers), the parser's first use about 10 ms.
  private val factory: JsonFactory = new JsonFactoryBuilder()
    // The Python side rejects a repeated key (E004); so does this one.
    .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
    .build()
  private val nodes = JsonNodeFactory.instance

  // Only the drift tool's pretty printing needs one.
  private lazy val mapper: ObjectMapper = JsonMapper.builder().build()

  /** The document in `file`, as a [[Node]] at `$`. */
  def read(file: Path): Node = {
    val name = file.toString
    val bytes =
      try Files.readAllBytes(file)
      catch {
        case _: NoSuchFileException => throw new ConfigException(name, "", "file not found")
        case e: IOException         => throw new ConfigException(name, "", s"cannot read: ${e.getClass.getSimpleName}")
      }
    parse(bytes, name)
  }

  /** A document's bytes (UTF-8, a BOM allowed), named `file` in messages. */
  def parse(bytes: Array[Byte], file: String): Node = {
    val json =
      try tree(factory.createParser(bytes))
      catch { case e: JsonProcessingException => throw malformed(file, e) }
    if (json == null) throw new ConfigException(file, "", "the file is empty")
    new Node(file, JsonPath.Root, json)
  }

  /** A JSON text (a schema's rules) as a tree; a malformed one is a JsonProcessingException. */
  def parseText(text: String): JsonNode = tree(factory.createParser(text))

  /** The one value in `parser`'s input (null when it holds none); anything after it is an error. */
  private def tree(parser: JsonParser): JsonNode =
    try {
      val root = Option(parser.nextToken()).map(_ => value(parser)).orNull
      if (root != null && parser.nextToken() != null)
        throw new JsonParseException(parser, "trailing content after the document")
      root
    } finally parser.close()

  // Recursion is bounded: the parser refuses nesting deeper than its read constraints allow.
  private def value(parser: JsonParser): JsonNode = parser.currentToken() match {
    case JsonToken.START_OBJECT =>
      val obj = nodes.objectNode()
      while (parser.nextToken() == JsonToken.FIELD_NAME) {
        val key = parser.currentName()
        parser.nextToken()
        obj.set[JsonNode](key, value(parser))
      }
      obj
    case JsonToken.START_ARRAY =>
      val arr = nodes.arrayNode()
      while (parser.nextToken() != JsonToken.END_ARRAY) arr.add(value(parser))
      arr
    case JsonToken.VALUE_STRING => nodes.textNode(parser.getText)
    case JsonToken.VALUE_NUMBER_INT =>
      parser.getNumberType match {
        case JsonParser.NumberType.INT  => nodes.numberNode(parser.getIntValue)
        case JsonParser.NumberType.LONG => nodes.numberNode(parser.getLongValue)
        case _                          => nodes.numberNode(parser.getBigIntegerValue)
      }
    case JsonToken.VALUE_NUMBER_FLOAT => nodes.numberNode(parser.getDoubleValue)
    case JsonToken.VALUE_TRUE         => nodes.booleanNode(true)
    case JsonToken.VALUE_FALSE        => nodes.booleanNode(false)
    case JsonToken.VALUE_NULL         => nodes.nullNode()
    case other                        => throw new JsonParseException(parser, s"unexpected $other")
  }

  /** A tree as compact JSON text. */
  def render(json: JsonNode): String = {
    val out = new StringWriter
    val generator = factory.createGenerator(out)
    try write(generator, json)
    finally generator.close()
    out.toString
  }

  private def write(g: JsonGenerator, json: JsonNode): Unit = json.getNodeType match {
    case JsonNodeType.OBJECT =>
      g.writeStartObject()
      json.properties.asScala.foreach { e => g.writeFieldName(e.getKey); write(g, e.getValue) }
      g.writeEndObject()
    case JsonNodeType.ARRAY =>
      g.writeStartArray()
      json.elements.asScala.foreach(write(g, _))
      g.writeEndArray()
    case JsonNodeType.STRING  => g.writeString(json.textValue)
    case JsonNodeType.BOOLEAN => g.writeBoolean(json.booleanValue)
    case JsonNodeType.NUMBER =>
      if (json.isIntegralNumber) g.writeNumber(json.bigIntegerValue) else g.writeNumber(json.doubleValue)
    case _ => g.writeNull()
  }

  private def malformed(file: String, e: JsonProcessingException): ConfigException = {
    val at = Option(e.getLocation).map(l => s"${l.getLineNr}:${l.getColumnNr}: ").getOrElse("")
    new ConfigException(file, "", s"${at}malformed JSON: ${e.getOriginalMessage.takeWhile(_ != '\n')}")
  }

  def quote(text: String): String = "\"" + new String(JsonStringEncoder.getInstance.quoteAsString(text)) + "\""

  def kind(json: JsonNode): String = json.getNodeType match {
    case JsonNodeType.OBJECT  => "object"
    case JsonNodeType.ARRAY   => "array"
    case JsonNodeType.STRING  => "string"
    case JsonNodeType.NUMBER  => "number"
    case JsonNodeType.BOOLEAN => "boolean"
    case JsonNodeType.NULL    => "null"
    case _                    => "a non-JSON value"
  }

  def writer: ObjectMapper = mapper
}
