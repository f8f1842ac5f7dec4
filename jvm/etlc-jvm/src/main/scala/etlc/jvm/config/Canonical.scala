package etlc.jvm.config

import com.fasterxml.jackson.databind.JsonNode
import com.fasterxml.jackson.databind.node.JsonNodeFactory

/** The configuration classes back as JSON, under the same names the files use: what the drift
  * test compares with the Python side's reading of the same file. Absent options are `null`.
  */
object Canonical {

  private val factory = JsonNodeFactory.instance

  def toJson(value: Any): JsonNode = value match {
    case null | None          => factory.nullNode
    case Some(inner)          => toJson(inner)
    case s: String            => factory.textNode(s)
    case b: Boolean           => factory.booleanNode(b)
    case i: Int               => factory.numberNode(i)
    case l: Long              => factory.numberNode(l)
    case d: Double            => factory.numberNode(d)
    case v: JsonScalar        => toJson(v.json)
    case n: Node              => n.json // a JVM step's options: kept as written
    case m: collection.Map[_, _] =>
      val obj = factory.objectNode
      m.foreach { case (k, v) => obj.set[JsonNode](k.toString, toJson(v)) }
      obj
    case s: Iterable[_] =>
      val arr = factory.arrayNode
      s.foreach(v => arr.add(toJson(v)))
      arr
    case p: Product =>
      val obj = factory.objectNode
      // JsonNames' field names, not productElementNames (Scala 2.13 only): the same order.
      JsonNames.fields(p.getClass).iterator.zip(p.productIterator).foreach { case (name, v) =>
        obj.set[JsonNode](name, toJson(v))
      }
      obj
    case other => throw new IllegalArgumentException(s"no JSON form for ${other.getClass.getName}")
  }

  def render(value: Any): String = Json.render(toJson(value))
}
