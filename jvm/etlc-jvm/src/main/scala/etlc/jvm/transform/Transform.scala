package etlc.jvm.transform

import java.io.IOException
import java.nio.charset.StandardCharsets.UTF_8

import scala.collection.immutable.ListMap

import org.apache.spark.sql.DataFrame

import etlc.jvm.config.JvmStep

/** A transform step implemented on the JVM (`"type": "jvm"` in a definition). Like etlc's
  * Python transforms it is a pure function of its input: it builds a plan (no I/O, no actions
  * such as `collect` or `count`, no temp views, no session configuration), and Spark runs it.
  *
  * An implementation is a class with a public constructor without arguments.
  */
trait Transform {

  /** The output: `input` transformed as `step` (its typed configuration, `options` included)
    * says. A problem with the options is a [[JvmStepException]] (or the
    * `etlc.jvm.config.ConfigException` that reading a [[etlc.jvm.config.Node]] throws).
    */
  def apply(input: DataFrame, step: JvmStep): DataFrame

  /** The same, for a class that also reads the environment file's `variables` (text, as the
    * driver's environment holds them; a vault reference stays a reference, never its secret).
    * The driver calls this one; by default the step alone decides.
    */
  def apply(input: DataFrame, step: JvmStep, variables: ListMap[String, String]): DataFrame = apply(input, step)

  /** A JSON Schema of the step's `options`, checked before [[apply]] (see
    * `etlc.jvm.config.SchemaCheck` for the keywords it may use). `etlc lint` checks the same
    * schema from `schemas/jvm/<class>.json` without a JVM: ship it in the jar under
    * `etlc-steps/<class>.json` and read it with [[Transform.declared]], so the two are one file.
    */
  def optionsSchema: Option[String] = None
}

object Transform {

  /** Where in a jar the options schema of a step class is: `etlc-steps/<class name>.json`. */
  def resource(cls: Class[_]): String = s"etlc-steps/${cls.getName}.json"

  /** The options schema `cls` ships as a resource (see [[resource]]), if any. */
  def declared(cls: Class[_]): Option[String] =
    Option(cls.getClassLoader.getResourceAsStream(resource(cls))).map { in =>
      try new String(in.readAllBytes(), UTF_8)
      catch { case e: IOException => throw new JvmStepException(s"cannot read ${resource(cls)}: $e") }
      finally in.close()
    }
}

/** A JVM step that cannot run as configured: its class cannot be had, or its options are
  * wrong. The driver turns it into one configuration error naming the step (not retried).
  */
final class JvmStepException(message: String, cause: Throwable = null) extends RuntimeException(message, cause)
