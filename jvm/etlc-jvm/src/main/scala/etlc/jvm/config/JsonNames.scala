package etlc.jvm.config

import java.lang.reflect.Modifier
import java.util.Locale

/** The JSON name of every field of the configuration classes: the Scala field in snake_case
  * (`maxRetries` is `max_retries`), except `schemaRef`, which is the editors' `$schema`.
  *
  * Decoding (the keys an object accepts), the canonical dump and the drift test all take names
  * from here, so a field cannot be read under one name and dumped or checked under another.
  * The classes are plain case classes: fields are their constructor parameters, nothing else.
  */
object JsonNames {

  private val Renamed = Map("schemaRef" -> "$schema")

  def of(field: String): String =
    Renamed.getOrElse(field, field.replaceAll("([A-Z])", "_$1").toLowerCase(Locale.ROOT))

  /** The JSON names of `cls`'s fields, in declaration order. */
  def fields(cls: Class[_]): Vector[String] = cache.get(cls)

  private val cache = new ClassValue[Vector[String]] {
    override def computeValue(cls: Class[_]): Vector[String] =
      cls.getDeclaredFields.toVector
        .filterNot(f => Modifier.isStatic(f.getModifiers) || f.isSynthetic || f.getName.contains("$"))
        .map(f => of(f.getName))
  }
}

/** A value whose JSON form is a scalar rather than an object of its fields. */
trait JsonScalar {
  def json: Any
}
