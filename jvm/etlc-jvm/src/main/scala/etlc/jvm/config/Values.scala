package etlc.jvm.config

import com.fasterxml.jackson.databind.JsonNode

/** The value types the generated configuration classes (`PipelineConfig.scala` and
  * `EnvironmentConfig.scala`, written from the schemas by `etlc/codegen/scala_config.py`) use
  * where a schema's JSON types alone do not say enough: credentials, scalars of several JSON
  * types, and the schema's value rules.
  */

/** A `vault://<path>#<key>` reference: the JVM side carries it, never the secret it names. */
final case class VaultRef(reference: String) extends JsonScalar {
  def json: Any = reference
  override def toString: String = reference
}

object VaultRef {
  // The shape `etlc lint` (E502) and the vault accept.
  private val Shape = "vault://[A-Za-z0-9_.\\-/]+#[A-Za-z0-9_.\\-]+".r
  private val MaxLength = 256

  def looksLike(text: String): Boolean = text.startsWith("vault://")

  /** A user name or a reference to one (a Kafka profile's `username`), as text. */
  def orText(node: Node): String = if (looksLike(node.string)) read(node).reference else node.string

  def read(node: Node): VaultRef = {
    if (!node.isString) node.fail(s"expected a vault reference (vault://<path>#<key>), got ${node.kind}")
    val text = node.string
    // Neither message echoes the text: a literal here is most likely the secret itself.
    if (!looksLike(text))
      node.fail("holds a literal credential; store it with `etlc vault put <path>#<key>` and write vault://<path>#<key>")
    if (text.length > MaxLength || !Shape.pattern.matcher(text).matches())
      node.fail("malformed vault reference: write vault://<path>#<key>")
    VaultRef(text)
  }
}

private[config] object Credentials {
  // environment.py's CREDENTIAL_NAME: names under which only a vault reference may stand.
  private val Name = "(?i).*(pass(word|wd)?|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credentials?)$".r

  def isCredentialName(name: String): Boolean = Name.pattern.matcher(name).matches()

  /** A variable holding a reference must hold a well-formed one, and one named like a
    * credential must hold a reference.
    */
  def check(name: String, value: Node): Unit =
    if (value.isString && VaultRef.looksLike(value.string)) VaultRef.read(value)
    else if (isCredentialName(name)) VaultRef.read(value)

  /** `node`, an object of variables, once every member passed [[check]]. */
  def checkNames(node: Node): Node = {
    node.members.foreach { case (name, value) => check(name, value) }
    node
  }
}

/** JSON scalars as the text the Python side makes of them (`str(value)`, booleans lower case). */
private[config] object Scalars {

  def text(node: Node): String = {
    val json = node.json
    if (json.isTextual) json.textValue
    else if (json.isBoolean) json.booleanValue.toString
    // As written: `5` is an int to Python, `5.0` a float, whatever their values.
    else if (json.isIntegralNumber) json.bigIntegerValue.toString
    else if (json.isNumber) pythonFloat(json.doubleValue)
    else node.fail(s"expected string, number or boolean, got ${node.kind}")
  }

  /** Python's `repr(float)`: shortest digits, fixed notation for exponents -4..15. */
  private[config] def pythonFloat(d: Double): String =
    if (d.isNaN) "nan"
    else if (d.isInfinite) (if (d > 0) "inf" else "-inf")
    else if (d == 0) (if (1 / d < 0) "-0.0" else "0.0")
    else {
      val decimal = new java.math.BigDecimal(java.lang.Double.toString(d)).stripTrailingZeros
      val digits = decimal.unscaledValue.abs.toString
      val exponent = digits.length - 1 - decimal.scale
      val sign = if (d < 0) "-" else ""
      if (exponent >= -4 && exponent < 16) {
        val plain = decimal.abs.toPlainString
        sign + (if (plain.contains('.')) plain else plain + ".0")
      } else {
        val mantissa = if (digits.length == 1) digits else s"${digits.head}.${digits.tail}"
        f"$sign${mantissa}e${if (exponent < 0) "-" else "+"}${math.abs(exponent)}%02d"
      }
    }
}

/** A value the schema allows in several JSON types (a port as `5432` or `"5432"`), kept as
  * written: a `String`, `Long`, `Double` or `Boolean`.
  */
final case class Scalar(value: Any) extends JsonScalar {
  def json: Any = value

  /** The value as the text the Python side makes of it. */
  def text: String = value match {
    case d: Double => Scalars.pythonFloat(d)
    case other     => other.toString
  }
}

object Scalar {

  /** The value of `node`, whose JSON type must be one of `types` (JSON Schema's names). */
  def read(node: Node, types: Seq[String]): Scalar = {
    val json = node.json
    val kind =
      if (json.isTextual) "string"
      else if (json.isBoolean) "boolean"
      else if (json.isIntegralNumber && types.contains("integer")) "integer"
      else if (json.isNumber) (if (types.contains("number")) "number" else "integer")
      else node.kind
    if (!types.contains(kind)) node.fail(s"expected ${types.mkString(" or ")}, got ${node.kind}")
    Scalar(kind match {
      case "string"  => node.string
      case "boolean" => node.boolean
      case "integer" => node.long
      case _         => node.double
    })
  }
}

/** The value rules of one property of a schema (`enum`, `pattern`, bounds...), which the
  * generated readers check as they read it: a failure names the JSON path, never the value.
  */
final class SchemaRule(rules: String) {
  private val schema: JsonNode = Json.parseText(rules)

  /** `node`, once it keeps the rules. */
  def checked(node: Node): Node = {
    SchemaCheck.check(schema, node)
    node
  }
}
