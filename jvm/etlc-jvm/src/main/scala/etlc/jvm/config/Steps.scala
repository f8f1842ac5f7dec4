package etlc.jvm.config

import java.nio.charset.StandardCharsets.UTF_8

import scala.collection.immutable.ListMap

/** What every step of a definition has, whatever its kind; the generated step classes
  * (`PipelineConfig.scala`, from `schemas/pipeline.schema.json`) implement it, and each one
  * that reads other steps' output lists them in `inputs`.
  */
trait Step {
  def id: String
  def `type`: String
  def inputs: Vector[String] = Vector.empty
}

/** A JVM step's own options (`options`, a JSON object the class reads through [[Node]], whose
  * errors carry the JSON path): mixed into the generated `JvmStep`.
  */
trait JvmOptions {
  def options: Option[Node]

  /** The option `key`, if the step sets it. */
  def option(key: String): Option[Node] = options.flatMap(_.members.get(key))

  /** The option `key`; its absence fails with the options' path. */
  def requiredOption(key: String): Node = option(key).getOrElse {
    val problem = s"missing required key ${Json.quote(key)}"
    options.fold(throw new ConfigException(JvmStepConfig.Source, "$.options", problem))(_.fail(problem))
  }
}

object JvmStepConfig {

  /** How messages name a step's configuration handed over by the driver (not a file). */
  val Source = "the step's configuration"

  /** The configuration the driver hands over: the step's JSON object, as in the definition. */
  def parse(json: String): JvmStep = JvmStep.read(Json.parse(json.getBytes(UTF_8), Source))

  /** The environment's variables the driver hands over, a JSON object of text. */
  def variables(json: String): ListMap[String, String] =
    Json.parse(json.getBytes(UTF_8), "the environment's variables").members.map { case (k, v) => k -> v.string }
}
