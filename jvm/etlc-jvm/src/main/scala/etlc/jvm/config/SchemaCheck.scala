package etlc.jvm.config

import scala.jdk.CollectionConverters._

import com.fasterxml.jackson.databind.JsonNode

/** Checks a JSON value against a JSON Schema: the subset of it a step's options schema needs
  * (below), failing with the value's JSON path like every configuration error. A schema using
  * anything else is refused outright rather than half-checked; the compiler (`etlc lint`)
  * checks the same schema with a complete JSON Schema validator. The generated configuration
  * classes check each property's value rules with it too ([[SchemaRule]]).
  */
object SchemaCheck {

  // Words that describe without constraining: nothing to check.
  private val Annotations =
    Set("$schema", "$id", "$comment", "title", "description", "default", "examples", "etlc.column")
  private val Keywords = Set(
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "uniqueItems",
    "enum",
    "const",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum"
  )

  /** The keywords of `schema` (and its subschemas) this check does not implement. */
  def unsupported(schema: JsonNode): Vector[String] = {
    val own = schema.properties.asScala.iterator.map(_.getKey).filterNot(k => Keywords(k) || Annotations(k)).toVector
    val nested = subschemas(schema).flatMap(unsupported)
    (own ++ nested).distinct.sorted
  }

  private def subschemas(schema: JsonNode): Vector[JsonNode] = {
    val props = Option(schema.get("properties")).toVector.flatMap(_.properties.asScala.iterator.map(_.getValue))
    val more = Vector("items", "additionalProperties").flatMap(k => Option(schema.get(k))).filter(_.isObject)
    props ++ more
  }

  def check(schema: JsonNode, value: Node): Unit = {
    val json = value.json
    Option(schema.get("type")).foreach { t =>
      val allowed = if (t.isArray) t.elements.asScala.map(_.asText).toVector else Vector(t.asText)
      if (!allowed.exists(isType(json, _))) value.fail(s"expected ${allowed.mkString(" or ")}, got ${value.kind}")
    }
    Option(schema.get("enum")).foreach { e =>
      if (!e.elements.asScala.contains(json)) value.fail(s"expected one of ${Json.render(e)}")
    }
    Option(schema.get("const")).foreach(c => if (c != json) value.fail(s"expected ${Json.render(c)}"))
    if (json.isTextual) checkString(schema, value, json.textValue)
    if (json.isNumber) checkNumber(schema, value, BigDecimal(json.decimalValue))
    if (json.isArray) checkArray(schema, value)
    if (json.isObject) checkObject(schema, value)
  }

  private def isType(json: JsonNode, name: String): Boolean = name match {
    case "object"  => json.isObject
    case "array"   => json.isArray
    case "string"  => json.isTextual
    case "boolean" => json.isBoolean
    case "null"    => json.isNull
    case "number"  => json.isNumber
    case "integer" => json.isIntegralNumber || (json.isNumber && json.decimalValue.stripTrailingZeros.scale <= 0)
    case _         => false
  }

  private def checkString(schema: JsonNode, value: Node, text: String): Unit = {
    val length = text.codePointCount(0, text.length)
    int(schema, "minLength").foreach(n => if (length < n) value.fail(s"must have at least $n character(s)"))
    int(schema, "maxLength").foreach(n => if (length > n) value.fail(s"must have at most $n character(s)"))
    Option(schema.get("pattern")).foreach { p =>
      if (p.asText.r.findFirstIn(text).isEmpty) value.fail(s"must match the pattern ${Json.quote(p.asText)}")
    }
  }

  private def checkNumber(schema: JsonNode, value: Node, n: BigDecimal): Unit = {
    Option(schema.get("minimum")).foreach(m => if (n < BigDecimal(m.decimalValue)) value.fail(s"must be at least $m"))
    Option(schema.get("maximum")).foreach(m => if (n > BigDecimal(m.decimalValue)) value.fail(s"must be at most $m"))
  }

  private def checkArray(schema: JsonNode, value: Node): Unit = {
    val items = value.array
    int(schema, "minItems").foreach(n => if (items.size < n) value.fail(s"must have at least $n item(s)"))
    int(schema, "maxItems").foreach(n => if (items.size > n) value.fail(s"must have at most $n item(s)"))
    if (Option(schema.get("uniqueItems")).exists(_.asBoolean) && items.map(_.json).distinct.size != items.size)
      value.fail("must not repeat an item")
    Option(schema.get("items")).foreach(itemSchema => items.foreach(check(itemSchema, _)))
  }

  private def checkObject(schema: JsonNode, value: Node): Unit = {
    val members = value.members
    Option(schema.get("required")).foreach(_.elements.asScala.map(_.asText).foreach { key =>
      if (!members.contains(key)) value.fail(s"missing required key ${Json.quote(key)}")
    })
    val props = Option(schema.get("properties"))
    val extra = Option(schema.get("additionalProperties"))
    members.foreach { case (key, member) =>
      props.flatMap(p => Option(p.get(key))) match {
        case Some(sub) => check(sub, member)
        case None =>
          extra match {
            case Some(e) if e.isBoolean && !e.booleanValue =>
              val known = props.map(_.properties.asScala.iterator.map(_.getKey).mkString(", ")).getOrElse("")
              value.fail(s"unknown key ${Json.quote(key)} (known: $known)")
            case Some(e) if e.isObject => check(e, member)
            case _                     => ()
          }
      }
    }
  }

  private def int(schema: JsonNode, key: String): Option[Int] = Option(schema.get(key)).map(_.asInt)
}
