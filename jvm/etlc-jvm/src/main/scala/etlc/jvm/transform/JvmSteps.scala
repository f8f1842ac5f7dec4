package etlc.jvm.transform

import scala.util.control.NonFatal

import org.apache.spark.sql.DataFrame

import etlc.jvm.config.{ConfigException, Json, JvmStep, JvmStepConfig, SchemaCheck}

/** The entry point the generated Python driver calls through py4j for a `jvm` step: it loads
  * the class, reads the step's configuration (as the definition wrote it, as JSON), checks the
  * options against the schema the class declares, and applies it. Only the plan crosses py4j.
  */
object JvmSteps {

  def apply(input: DataFrame, className: String, stepJson: String): DataFrame = apply(input, className, stepJson, "{}")

  /** The same with the environment's variables (a JSON object of text) handed to the class. */
  def apply(input: DataFrame, className: String, stepJson: String, variablesJson: String): DataFrame = {
    val (step, variables) =
      try { (JvmStepConfig.parse(stepJson), JvmStepConfig.variables(variablesJson)) }
      catch { case e: ConfigException => throw new JvmStepException(s"${e.path}: ${e.problem}", e) }
    val transform = instantiate(className)
    checkOptions(transform, step)
    try transform(input, step, variables)
    catch { case e: ConfigException => throw new JvmStepException(s"${e.path}: ${e.problem}", e) }
  }

  /** The options schema `className` declares, or null: for `StepSchemas` and tests. */
  def optionsSchema(className: String): String = instantiate(className).optionsSchema.orNull

  def instantiate(className: String): Transform = {
    val cls =
      try Class.forName(className, true, loader)
      catch {
        case _: ClassNotFoundException =>
          throw new JvmStepException(
            s"class not found on the JVM's classpath; ship its jar (ETLC_EXTRA_JARS=<jar> for the submit command)"
          )
        case e: LinkageError => throw new JvmStepException(s"class cannot be loaded: $e", e)
      }
    if (!classOf[Transform].isAssignableFrom(cls))
      throw new JvmStepException(s"does not implement ${classOf[Transform].getName}")
    val constructor =
      try cls.getConstructor()
      catch {
        case _: NoSuchMethodException =>
          throw new JvmStepException("has no public constructor without arguments")
      }
    try constructor.newInstance().asInstanceOf[Transform]
    catch { case NonFatal(e) => throw new JvmStepException(s"cannot be created: ${Option(e.getCause).getOrElse(e)}", e) }
  }

  private def checkOptions(transform: Transform, step: JvmStep): Unit =
    transform.optionsSchema.foreach { text =>
      val schema =
        try Json.parseText(text)
        catch { case NonFatal(e) => throw new JvmStepException(s"its options schema is not JSON: $e", e) }
      val unsupported = SchemaCheck.unsupported(schema)
      if (unsupported.nonEmpty)
        throw new JvmStepException(
          s"its options schema uses ${unsupported.mkString(", ")}, which the JVM's options check does not support"
        )
      val options = step.options.getOrElse(Json.parse("{}".getBytes("UTF-8"), JvmStepConfig.Source))
      try SchemaCheck.check(schema, options)
      catch { case e: ConfigException => throw new JvmStepException(s"${optionsPath(e.path)}: ${e.problem}", e) }
    }

  // Parsed on its own, an empty options object's path is `$`; it stands at `$.options`.
  private def optionsPath(path: String): String = if (path == "$") "$.options" else path

  // Jars given to spark-submit with --jars are on the context class loader, not this one's.
  private def loader: ClassLoader =
    Option(Thread.currentThread.getContextClassLoader).getOrElse(getClass.getClassLoader)
}
