package etlc.jvm.transform

/** Prints the options schema a JVM step class declares, for `schemas/jvm/<class>.json` (what
  * `etlc lint` checks a step's options against):
  *
  * {{{
  * java -cp "my-steps.jar:jars/etlc-jvm-0.1.0.jar:$SPARK_CLASSPATH" etlc.jvm.transform.StepSchemas \
  *     com.example.steps.Dedupe > schemas/jvm/com.example.steps.Dedupe.json
  * }}}
  * where `SPARK_CLASSPATH` is pyspark's `jars` folder with a wildcard (`.../pyspark/jars/` and `*`).
  */
object StepSchemas {

  def main(args: Array[String]): Unit = args match {
    case Array(className) =>
      try
        Option(JvmSteps.optionsSchema(className)) match {
          case Some(schema) => println(schema.stripTrailing)
          case None =>
            System.err.println(s"$className declares no options schema")
            sys.exit(1)
        }
      catch {
        case e: JvmStepException =>
          System.err.println(s"$className: ${e.getMessage}")
          sys.exit(1)
      }
    case _ =>
      System.err.println("usage: StepSchemas <fully qualified class name>")
      sys.exit(2)
  }
}
